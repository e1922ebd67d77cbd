"""Wiring of the head: each fusion module of Tables 2-3 reads the streams it should, the classifier, the forward pass.

References are written from the modules' own weights with plain attention (no shortcut), over sequences of
more than one position so that queries matter; a second check perturbs one input stream and looks at which
outputs move.
"""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from pipeline.head import HeadConfig, SGMFTHead
from pipeline.head.attention import use_one_key_shortcut
from pipeline.head.classifier import classifier
from pipeline.head.fusion import FUSIONS, build_fusion

B, D, H, HID, L = 3, 8, 2, 12, 2
pytestmark = pytest.mark.usefixtures("one_thread", "double_precision")



def lin(layer, x):
    return x @ layer.weight.T + (layer.bias if layer.bias is not None else 0)


def ln(norm, x):
    return F.layer_norm(x, (x.shape[-1],), norm.weight, norm.bias, norm.eps)


def attention(mha, x, ctx):
    """MultiHead(x W^Q, ctx W^K, ctx W^V) W^O with an explicit softmax per head."""
    q, k, v = lin(mha.q, x), lin(mha.k, ctx), lin(mha.v, ctx)
    d = D // H
    outs = []
    for h in range(H):
        s = slice(h * d, (h + 1) * d)
        w = torch.softmax(q[..., s] @ k[..., s].transpose(1, 2) / math.sqrt(d), dim=-1)
        outs.append(w @ v[..., s])
    return lin(mha.out, torch.cat(outs, dim=-1))


def sublayer(sub, x, ctx):
    return ln(sub.norm, x + attention(sub.attn, x, ctx))


def ffn(f, x):
    return ln(f.norm, lin(f.w2, torch.relu(lin(f.w1, x))) + x)


def co_layer(layer, x, other):
    return ffn(layer.ffn, sublayer(layer.cross_attn, sublayer(layer.self_attn, x, x), other))


def fusion(name, layers=2):
    return use_one_key_shortcut(build_fusion(name, D, H, HID, layers), False).eval()


def streams(lt=L, li=L):
    return torch.randn(B, lt, D), torch.randn(B, li, D)


def test_the_registry_holds_the_paper_rows_and_the_baselines():
    assert {"sfm", "co-attention", "asym-co-attention", "merge-attention", "sum", "concat", "text",
            "image"} <= set(FUSIONS)
    with pytest.raises(ValueError, match="unknown fusion 'nope'"):
        build_fusion("nope", D, H, HID, 2)


def test_sfm_cross_attends_both_ways_over_sequences():
    m = fusion("sfm")
    text, image = streams()
    t, i = text, image
    for t2i, i2t in zip(m.text_to_image, m.image_to_text):
        t, i = sublayer(t2i, t, i), sublayer(i2t, i, t)
    torch.testing.assert_close(m(text, image), (t + i).mean(dim=1))
    assert len(m.text_to_image) == len(m.image_to_text) == 2 and m.out_dim == D
    assert len(fusion("sfm", layers=3).text_to_image) == 3


def test_co_attention_each_stream_self_attends_then_attends_to_the_other():
    m = fusion("co-attention")
    text, image = streams()
    t, i = text, image
    for lt, li in zip(m.text_layers, m.image_layers):
        t, i = co_layer(lt, t, i), co_layer(li, i, t)  # both read the previous layer
    torch.testing.assert_close(m(text, image), (t + i).mean(dim=1))
    assert len(m.text_layers) == 2 and m.out_dim == D


def test_asymmetric_co_attention_only_text_queries_the_unchanged_image():
    m = fusion("asym-co-attention")
    text, image = streams(2, 3)
    t = text
    for layer in m.text_layers:
        t = co_layer(layer, t, image)  # image features pass unchanged into every layer
    torch.testing.assert_close(m(text, image), t.mean(dim=1))
    assert len(m.text_layers) == 2 and m.out_dim == D


def test_merge_attention_self_attends_over_the_concatenated_streams():
    m = fusion("merge-attention")
    text, image = streams(2, 3)
    x = torch.cat([text, image], dim=1)
    for attn, f in zip(m.attn, m.ffn):
        x = ffn(f, sublayer(attn, x, x))
    torch.testing.assert_close(m(text, image), x[:, :2].mean(dim=1) + x[:, 2:].mean(dim=1))
    assert len(m.attn) == len(m.ffn) == 2 and m.out_dim == D


def test_parameter_free_fusions():
    text, image = streams()
    torch.testing.assert_close(fusion("sum")(text, image), (text + image).mean(dim=1))
    torch.testing.assert_close(fusion("concat")(text, image), torch.cat([text, image], -1).mean(dim=1))
    torch.testing.assert_close(fusion("text")(text, image), text.mean(dim=1))
    torch.testing.assert_close(fusion("image")(text, image), image.mean(dim=1))
    assert (fusion("concat").out_dim, fusion("sum").out_dim, fusion("text").out_dim) == (2 * D, D, D)


# which outputs move when one stream is perturbed: (text moves it, image moves it)
READS = {"sfm": (True, True), "co-attention": (True, True), "asym-co-attention": (True, True),
         "merge-attention": (True, True), "sum": (True, True), "text": (True, False), "image": (False, True)}


@pytest.mark.parametrize("name", list(READS))
def test_each_fusion_reads_the_streams_it_should(name):
    m = fusion(name)
    text, image = streams(1, 1)  # the head's own shape: one position per modality
    base = m(text, image)
    moved = (not torch.allclose(m(text + torch.randn_like(text), image), base),
             not torch.allclose(m(text, image + torch.randn_like(image)), base))
    assert moved == READS[name]


def test_concat_keeps_text_in_the_first_half_and_image_in_the_second():
    m = fusion("concat")
    text, image = streams(1, 1)
    base, other = m(text, image), m(text, image + 1)
    torch.testing.assert_close(other[:, :D], base[:, :D])
    assert not torch.allclose(other[:, D:], base[:, D:])


def test_classifier_is_linear_relu_layers_ending_in_raw_logits():
    mc = classifier(6, (5, 4), 3)
    x = torch.randn(B, 6)
    linears = [m for m in mc if isinstance(m, torch.nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(6, 5), (5, 4), (4, 3)]
    expected = lin(linears[2], torch.relu(lin(linears[1], torch.relu(lin(linears[0], x)))))
    torch.testing.assert_close(mc(x), expected)  # no ReLU (nor softmax) after the last layer
    assert not any(isinstance(m, torch.nn.Dropout) for m in mc)


def test_classifier_dropout_between_hidden_layers_only_in_training():
    mc = classifier(6, (5, 4), 3, dropout=0.5)
    drops = [m for m in mc if isinstance(m, torch.nn.Dropout)]
    assert len(drops) == 2 and all(d.p == 0.5 for d in drops)
    x = torch.randn(64, 6)
    mc.eval()
    torch.testing.assert_close(mc(x), mc(x))
    mc.train()
    assert not torch.allclose(mc(x), mc(x))


def head(**kw):
    cfg = HeadConfig(embed_dim=D, num_classes=5, heads=H, ffn_hidden=HID, classifier_hidden=(7, 6), **kw)
    return SGMFTHead(cfg).eval()


def test_head_is_sim_then_fusion_then_classifier_on_l2_normalised_features():
    m = head()
    t, v = torch.randn(B, D), torch.randn(B, D)
    tn, vn = t / t.norm(dim=1, keepdim=True), v / v.norm(dim=1, keepdim=True)
    text, image = m.sim(tn, vn)
    fused = m.fusion(text, image)
    torch.testing.assert_close(m.fuse(t, v), fused)
    torch.testing.assert_close(m(t, v), m.classifier(fused))
    assert m.classifier[0].in_features == D and m.classifier[-1].out_features == 5


def test_head_without_sim_fuses_the_features_themselves_and_raw_when_asked():
    m = head(sim=False, fusion="concat", input_norm="none")
    assert m.sim is None and m.classifier[0].in_features == 2 * D
    t, v = torch.randn(B, D), torch.randn(B, D)
    torch.testing.assert_close(m.fuse(t, v), torch.cat([t, v], dim=1))
    torch.testing.assert_close(m(t, v), m.classifier(torch.cat([t, v], dim=1)))
    l2 = head(sim=False, fusion="sum")
    torch.testing.assert_close(l2.fuse(3 * t, v), F.normalize(t, dim=1) + F.normalize(v, dim=1))


def test_head_passes_its_config_to_the_sim_and_the_fusion():
    m = head(gate="sigmoid", ffn_guide="image", scale_m="learned", fusion="co-attention", fusion_layers=3)
    assert (m.sim.gate, m.sim.guide) == ("sigmoid", "image")
    assert float(m.sim.tau_m().detach()) == pytest.approx(D) and m.sim.tau_e() == 1.0
    assert len(m.fusion.text_layers) == 3
    assert m.sim.attention.heads == H and m.fusion.text_layers[0].self_attn.attn.heads == H
    assert m.sim.ffn_text.w1.out_features == HID and m.fusion.text_layers[0].ffn.w1.out_features == HID


def test_fast_path_setting_reaches_every_attention():
    slow, fast = head(fast_path=False, fusion="co-attention"), head(fusion="co-attention")
    assert not slow.sim.attention.one_key_shortcut and not slow.fusion.text_layers[0].self_attn.attn.one_key_shortcut
    assert fast.sim.attention.one_key_shortcut and fast.fusion.image_layers[1].cross_attn.attn.one_key_shortcut


@pytest.mark.parametrize("name", ["sfm", "co-attention", "merge-attention"])
def test_the_one_key_shortcut_is_taken_only_over_one_key(name):
    """Over two positions the fast path must attend as the general path does (the shortcut is exact for one key)."""
    fast = build_fusion(name, D, H, HID, 2).eval()
    slow = use_one_key_shortcut(build_fusion(name, D, H, HID, 2), False).eval()
    slow.load_state_dict(fast.state_dict())
    text, image = streams()
    torch.testing.assert_close(fast(text, image), slow(text, image))


def test_config_round_trips_through_its_saved_dict():
    cfg = HeadConfig(embed_dim=D, heads=H, classifier_hidden=(9, 7), fusion="co-attention", dropout=0.1)
    saved = {**cfg.to_dict(), "classifier_hidden": [9, 7]}  # as JSON gives it back
    assert HeadConfig.from_dict(saved) == cfg
    assert HeadConfig.from_dict({"embed_dim": D}).classifier_hidden == HeadConfig.classifier_hidden
    assert saved["classifier_hidden"] == [9, 7]  # the caller's dict is left alone


def test_head_passes_dropout_and_both_temperatures():
    m = head(dropout=0.25, scale_e="learned")
    assert [d.p for d in m.classifier if isinstance(d, torch.nn.Dropout)] == [0.25, 0.25]
    assert float(m.sim.tau_e().detach()) == pytest.approx(D) and m.sim.tau_m() == 1.0


def test_bad_settings_are_refused_with_what_to_use():
    from pipeline.head.attention import MultiHeadAttention
    from pipeline.head.interpolation import InterpolationAttention
    from pipeline.head.polymerizer import modality_similarity, similarity_scale
    from pipeline.head.sim import SimilarityInteraction
    from pipeline.head.variants import variant_config

    cases = [
        (lambda: MultiHeadAttention(6, 4), "embed_dim 6 is not divisible by 4 heads"),
        (lambda: InterpolationAttention(6, 4), "embed_dim 6 is not divisible by 4 heads"),
        (lambda: head(input_norm="L2"), "unknown input_norm 'L2'; use one of l2, none"),
        (lambda: modality_similarity(torch.ones(1, 2), torch.ones(1, 2), "relu"), "unknown gate 'relu'; use 'softmax'"),
        (lambda: similarity_scale("fixed", D), "unknown similarity scale 'fixed'; use one of none, learned"),
        (lambda: SimilarityInteraction(D, H, HID, guide="both"), "unknown FFN guide 'both'; use 'text' or 'image'"),
        (lambda: build_fusion("nope", D, H, HID, 2), "choose from sfm, "),
    ]
    for make, message in cases:
        with pytest.raises(ValueError) as error:
            make()
        assert message in str(error.value)
    with pytest.raises(KeyError, match="no-such-variant"):
        variant_config("no-such-variant", HeadConfig())


def test_guidance_record_names_what_was_measured_and_does_not_depend_on_the_global_seed():
    from pipeline.head import measure_guidance

    torch.set_default_dtype(torch.float32)
    m = head(scale_m="learned", gate="sigmoid")
    text, image = torch.randn(12, D), torch.randn(12, D)
    torch.manual_seed(1)
    g = measure_guidance(m, text, image, split="test", posts=6)
    torch.manual_seed(2)
    again = measure_guidance(m, text, image, split="test", posts=6)
    assert g.to_json() == again.to_json()
    assert (g.split, g.posts, g.dim, g.gate, g.tau_m, g.tau_e) == ("test", 6, D, "sigmoid", pytest.approx(D), 1.0)
    numbers = (g.text_on_image_grad, g.image_on_text_grad, g.text_on_image_swap, g.image_on_text_swap)
    assert all(isinstance(x, float) and math.isfinite(x) and x > 0 for x in numbers)
    assert measure_guidance(m, text, image).split == "val"
    none = measure_guidance(head(sim=False, fusion="sum", gate="sigmoid"), text, image, split="train")
    assert (none.split, none.dim, none.gate) == ("train", D, "sigmoid")
