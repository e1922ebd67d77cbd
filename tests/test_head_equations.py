"""Equation-level checks of the head (SPEC §4) against plain, independent computations."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from pipeline.head import HeadConfig, SGMFTHead
from pipeline.head.attention import MultiHeadAttention, attend, use_one_key_shortcut
from pipeline.head.ffn import SimilarityFeedForward
from pipeline.head.fusion import SimilarityFusion
from pipeline.head.interpolation import InterpolationAttention
from pipeline.head.polymerizer import element_similarity, interpolate, interpolate_reference, modality_similarity
from pipeline.head.sim import SimilarityInteraction

B, D, H = 3, 16, 4
pytestmark = pytest.mark.usefixtures("double_precision")



def ref_attention(q, k, v, heads):
    """softmax(QKᵀ/sqrt(d)) V per head, with loops over heads and an explicit softmax."""
    d = q.shape[-1] // heads
    outs = []
    for h in range(heads):
        qh, kh, vh = (x[..., h * d:(h + 1) * d] for x in (q, k, v))
        scores = torch.einsum("bid,bjd->bij", qh, kh) / math.sqrt(d)
        weights = scores.exp() / scores.exp().sum(-1, keepdim=True)
        outs.append(weights @ vh)
    return torch.cat(outs, dim=-1)


def lin(layer, x):
    return x @ layer.weight.T + (layer.bias if layer.bias is not None else 0)


def test_attend_is_multi_head_scaled_dot_product():
    q, k, v = torch.randn(B, 5, D), torch.randn(B, 7, D), torch.randn(B, 7, D)
    torch.testing.assert_close(attend(q, k, v, H), ref_attention(q, k, v, H))


@pytest.mark.parametrize("lq", [1, 4])
def test_single_key_fast_path_equals_general_attention(lq):
    fast, slow = MultiHeadAttention(D, H), use_one_key_shortcut(MultiHeadAttention(D, H), False)
    slow.load_state_dict(fast.state_dict())
    query, kv = torch.randn(B, lq, D), torch.randn(B, 1, D)
    expected = lin(slow.out, ref_attention(lin(slow.q, query), lin(slow.k, kv), lin(slow.v, kv), H))
    torch.testing.assert_close(slow(query, kv), expected)
    torch.testing.assert_close(fast(query, kv), expected)


def test_polymerizer_p_m_and_p_e():
    t, v = torch.randn(B, D), torch.randn(B, D)
    p_m = modality_similarity(t, v)  # (1, 3)
    torch.testing.assert_close(p_m, (t * v).exp() / (t * v).exp().sum(-1, keepdim=True))
    p_e = element_similarity(t, v)  # (2, 4-5)
    i, j = 5, 11
    row = torch.tensor([[t[b, i] * v[b, jj] for jj in range(D)] for b in range(B)])
    torch.testing.assert_close(p_e[:, i, j], row.exp()[:, j] / row.exp().sum(-1))
    torch.testing.assert_close(p_e.sum(-1), torch.ones(B, D))
    torch.testing.assert_close(modality_similarity(t, v, "sigmoid"), torch.sigmoid(t * v))


def test_memory_efficient_x_inter_equals_materialised_p_e():
    t, v, x = (torch.randn(B, D, requires_grad=True) for _ in range(3))
    fast, ref = interpolate(t, v, x), interpolate_reference(t, v, x)  # (14)
    torch.testing.assert_close(fast, ref)
    torch.testing.assert_close(ref[:, 2], (element_similarity(t, v)[:, 2, :] * x).sum(-1))
    g_fast = torch.autograd.grad(fast.square().sum(), (t, v, x))
    g_ref = torch.autograd.grad(ref.square().sum(), (t, v, x))
    for a, b in zip(g_fast, g_ref):
        torch.testing.assert_close(a, b)


def test_temperature_scales_both_similarities():
    t, v, tau = torch.randn(B, D), torch.randn(B, D), torch.tensor(3.7)
    s_m = tau * t * v  # (1), times τ_m
    torch.testing.assert_close(modality_similarity(t, v, scale=tau), s_m.exp() / s_m.exp().sum(-1, keepdim=True))
    torch.testing.assert_close(modality_similarity(t, v, "sigmoid", tau), torch.sigmoid(s_m))
    i = 4
    row = tau * t[:, i, None] * v  # S^e_i times τ_e  (B, D)
    torch.testing.assert_close(element_similarity(t, v, tau)[:, i], row.exp() / row.exp().sum(-1, keepdim=True))


def test_memory_efficient_x_inter_equals_materialised_p_e_with_a_temperature():
    """τ rides on the query of the fused head-size-1 attention: value and every gradient, τ's own included."""
    t, v, x = (torch.randn(B, D, requires_grad=True) for _ in range(3))
    log_tau = torch.tensor(math.log(D), requires_grad=True)  # the learned variants' initial τ = D
    fast, ref = interpolate(t, v, x, log_tau.exp()), interpolate_reference(t, v, x, log_tau.exp())
    torch.testing.assert_close(fast, ref)
    assert not torch.allclose(fast, interpolate(t, v, x), atol=1e-3)  # τ = D really changes X_inter
    g_fast = torch.autograd.grad(fast.square().sum(), (t, v, x, log_tau))
    g_ref = torch.autograd.grad(ref.square().sum(), (t, v, x, log_tau))
    for a, b in zip(g_fast, g_ref):
        torch.testing.assert_close(a, b)
    assert g_fast[-1].abs() > 0


def test_learned_temperatures_start_at_d_and_reach_the_softmaxes():
    sim = SimilarityInteraction(D, H, D, scale_m="learned", scale_e="learned")
    assert float(sim.tau_m().detach()) == pytest.approx(D) == float(sim.tau_e().detach())
    t, v = torch.randn(B, D), torch.randn(B, D)
    torch.testing.assert_close(sim.p_m(t, v), modality_similarity(D * t, v))
    torch.testing.assert_close(sim.p_e(t, v), element_similarity(D * t, v))
    plain = SimilarityInteraction(D, H, D)
    assert not list(plain.tau_m.parameters()) and plain.tau_e() == 1.0  # the paper: no temperature
    with pytest.raises(ValueError, match="similarity scale"):
        SimilarityInteraction(D, H, D, scale_m="fixed")


def test_x_inter_is_stable_for_large_similarities():
    t, v, x = 30 * torch.randn(B, D), 30 * torch.randn(B, D), torch.randn(B, D)
    out = interpolate(t.float(), v.float(), x.float())
    assert torch.isfinite(out).all()
    torch.testing.assert_close(out.double(), interpolate_reference(t, v, x), atol=1e-4, rtol=1e-4)


def ref_interpolation(m: InterpolationAttention, t, v, p_m):
    """Eqs. 6-13 written out: explicit Q/K/V of both modalities, SA and CA, blend by P^m, residual, LN."""
    q_t, k_t, v_t = lin(m.text.q, t), lin(m.text.k, t), lin(m.text.v, t)  # (6)
    q_i, k_i, v_i = lin(m.image.q, v), lin(m.image.k, v), lin(m.image.v, v)  # (7)
    sa_image = lin(m.sa_image, ref_attention(q_i, k_i, v_i, H))  # (8, 10)
    ca_image = lin(m.ca_image, ref_attention(q_t, k_i, v_i, H))  # (9, 11)
    sa_text = lin(m.sa_text, ref_attention(q_t, k_t, v_t, H))
    ca_text = lin(m.ca_text, ref_attention(q_i, k_t, v_t, H))
    pm = p_m[:, None]
    x_image = ca_image * pm + sa_image * (1 - pm)  # (12)
    x_text = ca_text * pm + sa_text * (1 - pm)
    ln = lambda x, norm: F.layer_norm(x, (D,), norm.weight, norm.bias, norm.eps)  # noqa: E731
    return ln(x_text + t, m.norm_text), ln(x_image + v, m.norm_image)  # (13)


@pytest.mark.parametrize("length", [1, 3])
@pytest.mark.parametrize("fast", [True, False])
def test_interpolation_attention_follows_eqs_6_to_13(length, fast):
    m = use_one_key_shortcut(InterpolationAttention(D, H), fast)
    t, v = torch.randn(B, length, D), torch.randn(B, length, D)
    p_m = torch.rand(B, D)
    got_text, got_image = m(t, v, p_m)
    exp_text, exp_image = ref_interpolation(m, t, v, p_m)
    torch.testing.assert_close(got_text, exp_text)
    torch.testing.assert_close(got_image, exp_image)


def test_p_m_weights_cross_attention_against_self_attention():
    """With P^m = 1 only CA passes, with P^m = 0 only SA: eq. 12 is a per-channel blend, not a sum."""
    m = InterpolationAttention(D, H)
    t, v = torch.randn(B, 1, D), torch.randn(B, 1, D)
    only_ca, _ = m(t, v, torch.ones(B, D))
    only_sa, _ = m(t, v, torch.zeros(B, D))
    ln = lambda x: F.layer_norm(x, (D,), m.norm_text.weight, m.norm_text.bias, m.norm_text.eps)  # noqa: E731
    torch.testing.assert_close(only_ca, ln(lin(m.ca_text, lin(m.text.v, t)) + t))
    torch.testing.assert_close(only_sa, ln(lin(m.sa_text, lin(m.text.v, t)) + t))


def test_similarity_ffn_follows_eqs_14_to_16():
    ffn = SimilarityFeedForward(D, 2 * D)
    x, t, v, other = (torch.randn(B, D) for _ in range(4))
    x_inter = torch.einsum("bij,bj->bi", element_similarity(t, v), other)  # (14)
    hidden = torch.relu(lin(ffn.w1, x) + lin(ffn.w3, x_inter))  # (15)
    expected = F.layer_norm(lin(ffn.w2, hidden) + x, (D,), ffn.norm.weight, ffn.norm.bias, ffn.norm.eps)  # (16)
    torch.testing.assert_close(ffn(x, t, v, other), expected)
    assert ffn.w3.bias is None  # eq. 15 has one bias b1 for the sum


@pytest.mark.parametrize("scale", ["none", "learned"])
@pytest.mark.parametrize("guide", ["text", "image"])
def test_similarity_interaction_wires_p_e_to_the_guided_modality(guide, scale):
    sim = SimilarityInteraction(D, H, D, guide=guide, scale_m=scale, scale_e=scale)
    tau = D if scale == "learned" else 1.0
    t, v = torch.randn(B, D), torch.randn(B, D)
    f_text, f_image = sim(t, v)
    x_text, x_image = sim.attention(t[:, None], v[:, None], modality_similarity(t, v, scale=tau))
    x_text, x_image = x_text[:, 0], x_image[:, 0]
    if guide == "text":  # P^e_ij = softmax_j(τ t_i v_j) mixes X_image^C into the text FFN
        exp_text, exp_image = sim.ffn_text(x_text, t, v, x_image, tau), sim.ffn_image(x_image)
        assert isinstance(sim.ffn_text, SimilarityFeedForward) and not isinstance(sim.ffn_image, SimilarityFeedForward)
        torch.testing.assert_close(sim.p_e(t, v), element_similarity(t, v, tau))
    else:  # Table 4, image-wise: softmax_j(τ v_i t_j) mixes X_text^C into the image FFN
        exp_text, exp_image = sim.ffn_text(x_text), sim.ffn_image(x_image, v, t, x_text, tau)
        torch.testing.assert_close(sim.p_e(t, v), element_similarity(v, t, tau))
        assert isinstance(sim.ffn_image, SimilarityFeedForward) and not isinstance(sim.ffn_text, SimilarityFeedForward)
    torch.testing.assert_close(f_text[:, 0], exp_text)
    torch.testing.assert_close(f_image[:, 0], exp_image)


def test_sfm_is_two_symmetric_cross_attention_layers_then_sum():
    sfm = use_one_key_shortcut(SimilarityFusion(D, H, D, layers=2), False)
    text, image = torch.randn(B, 1, D), torch.randn(B, 1, D)

    def layer(sub, x, ctx):
        a = sub.attn
        y = lin(a.out, ref_attention(lin(a.q, x), lin(a.k, ctx), lin(a.v, ctx), H))
        return F.layer_norm(x + y, (D,), sub.norm.weight, sub.norm.bias, sub.norm.eps)

    t1, i1 = layer(sfm.text_to_image[0], text, image), layer(sfm.image_to_text[0], image, text)
    t2, i2 = layer(sfm.text_to_image[1], t1, i1), layer(sfm.image_to_text[1], i1, t1)
    torch.testing.assert_close(sfm(text, image), (t2 + i2)[:, 0])  # (17)


def test_whole_head_fast_path_equals_general_path_in_value_and_gradient():
    cfg = HeadConfig(embed_dim=D, num_classes=5, heads=H, ffn_hidden=D)
    fast, slow = SGMFTHead(cfg), SGMFTHead(HeadConfig(**{**cfg.to_dict(), "fast_path": False}))
    slow.load_state_dict(fast.state_dict())
    t, v, y = torch.randn(B, D), torch.randn(B, D), torch.tensor([0, 3, 4])
    masks = dict(has_text=torch.tensor([True, False, True]), has_image=torch.tensor([True, True, False]))
    out_fast, out_slow = fast(t, v, **masks), slow(t, v, **masks)  # the placeholders get gradients too
    torch.testing.assert_close(out_fast, out_slow)
    F.cross_entropy(out_fast, y).backward()
    F.cross_entropy(out_slow, y).backward()
    slow_params = dict(slow.named_parameters())
    for name, p in fast.named_parameters():
        if p.grad is None:  # Q/K of one-key attention are skipped: their true gradient is exactly 0
            assert name.rsplit(".", 2)[-2] in ("q", "k"), name
            assert slow_params[name].grad.abs().max() < 1e-15, name  # rounding noise only
        else:
            torch.testing.assert_close(p.grad, slow_params[name].grad)


def test_classifier_is_five_fully_connected_layers():
    head = SGMFTHead(HeadConfig(embed_dim=D, num_classes=7, heads=H, ffn_hidden=D))
    linears = [m for m in head.classifier if isinstance(m, torch.nn.Linear)]
    assert len(linears) == 5 and linears[0].in_features == D and linears[-1].out_features == 7
