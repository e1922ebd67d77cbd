"""The similarity diagnostics on heads built so that the answer is known (pipeline/head/diagnostics.py)."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from pipeline.head import HeadConfig, SGMFTHead, measure_guidance, variant_config
from pipeline.head.diagnostics import gradient_ratios, p_e_spread, p_m_spread, peak, relative_entropy, swap_ratios
from pipeline.head.sim import SimilarityInteraction
from pipeline.rundir import Guidance, RunDir

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture
def double():
    torch.manual_seed(0)
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(torch.float32)


def unit(n: int, d: int) -> torch.Tensor:
    return F.normalize(torch.randn(n, d), dim=-1)


def test_relative_entropy_and_peak_of_known_distributions():
    d, k = 64, 4
    uniform, one_hot, k_hot = torch.ones(d), torch.eye(d)[3], torch.cat([torch.ones(k), torch.zeros(d - k)])
    assert relative_entropy(uniform).item() == pytest.approx(1.0) and peak(uniform).item() == pytest.approx(1.0)
    assert relative_entropy(one_hot).item() == pytest.approx(0.0) and peak(one_hot).item() == pytest.approx(d)
    assert relative_entropy(k_hot).item() == pytest.approx(math.log(k) / math.log(d))
    assert peak(0.5 * k_hot).item() == pytest.approx(d / k)  # a gate is read as its shares


def test_paper_similarities_are_flat_on_l2_features_at_d_1024():
    """The issue's measurement: l2-normalised D = 1024 features make P^m and every row of P^e uniform."""
    sim = SimilarityInteraction(1024, 8, 16)
    t, v = unit(16, 1024), unit(16, 1024)
    m, e = p_m_spread(sim, t, v), p_e_spread(sim, t[:4], v[:4])
    assert m["p_m_entropy"] > 0.9999 and m["p_m_peak"] < 1.05 and m["p_m_mean"] == pytest.approx(1 / 1024)
    assert e["p_e_entropy"] > 0.9999 and e["p_e_peak"] < 1.02


def test_a_learned_temperature_starts_not_flat_at_d_1024():
    sim = SimilarityInteraction(1024, 8, 16, scale_m="learned", scale_e="learned")  # τ = D
    t, v = unit(16, 1024), unit(16, 1024)
    m, e = p_m_spread(sim, t, v), p_e_spread(sim, t[:4], v[:4])
    assert m["p_m_entropy"] < 0.9 and m["p_m_peak"] > 50  # measured: 0.77 and 173 (polymerizer.similarity_scale)
    assert e["p_e_entropy"] < 0.97 and e["p_e_peak"] > 10  # measured: 0.93 and 24


def test_sharp_by_construction_gives_the_exact_entropy_and_peak(double):
    """t = c on K channels, v = c on k channels, 0 elsewhere, c² = 100: P^m is uniform over the k·K overlap,
    a row i of P^e is uniform over v's k channels where t_i = c, and uniform over all D where t_i = 0."""
    d, k, big_k, c = 64, 4, 8, 10.0
    sim = SimilarityInteraction(d, 4, 16)
    t = torch.zeros(2, d)
    t[:, :big_k] = c
    v = torch.zeros(2, d)
    v[:, :k] = c  # the k channels lie inside t's K
    m, e = p_m_spread(sim, t, v), p_e_spread(sim, t, v)
    assert m["p_m_entropy"] == pytest.approx(math.log(k) / math.log(d), abs=1e-9)
    assert m["p_m_peak"] == pytest.approx(d / k, rel=1e-9)
    sharp_rows = big_k / d
    assert e["p_e_entropy"] == pytest.approx(sharp_rows * math.log(k) / math.log(d) + (1 - sharp_rows), abs=1e-9)
    assert e["p_e_peak"] == pytest.approx(sharp_rows * d / k + (1 - sharp_rows), rel=1e-9)


def deaf(sim: SimilarityInteraction) -> SimilarityInteraction:
    """CA and SA given the same weights (eq. 12's blend then ignores P^m) and W3 = 0 (X_inter does not reach
    the FFN): neither modality's SIM output can depend on the other."""
    a = sim.attention
    with torch.no_grad():
        a.ca_text.load_state_dict(a.sa_text.state_dict())
        a.ca_image.load_state_dict(a.sa_image.state_dict())
        sim.ffn_text.w3.weight.zero_()
    return sim


def test_dependence_is_zero_where_the_other_modality_cannot_reach(double):
    sim = deaf(SimilarityInteraction(32, 4, 32, scale_m="learned", scale_e="learned"))
    t, v = unit(12, 32), unit(12, 32)
    assert max(gradient_ratios(sim, t, v)) < 1e-10
    assert max(swap_ratios(sim, t, v)) < 1e-10


def test_dependence_appears_when_the_similarities_are_sharp(double):
    """The same head with its P^m blend and X_inter connected: at τ = 1 (the paper, l2 features) the
    cross-modal dependence is tiny; at τ = D it is of order one."""
    t, v = unit(12, 32), unit(12, 32)
    torch.manual_seed(1)
    flat = SimilarityInteraction(32, 4, 32)
    torch.manual_seed(1)
    sharp = SimilarityInteraction(32, 4, 32, scale_m="learned", scale_e="learned")
    flat_ratios = (*gradient_ratios(flat, t, v), *swap_ratios(flat, t, v))
    sharp_ratios = (*gradient_ratios(sharp, t, v), *swap_ratios(sharp, t, v))
    assert max(flat_ratios) < 0.02
    assert min(sharp_ratios) > 5 * max(flat_ratios) and min(sharp_ratios) > 0.02


def test_gradient_ratio_estimates_the_jacobian_ratio(double):
    """With many probes the Hutchinson estimate meets ‖J_v‖_F·‖v‖ / ‖J_t‖_F·‖t‖ from the exact Jacobians."""
    sim = SimilarityInteraction(8, 2, 8, scale_m="learned", scale_e="learned")
    t, v = 3 * torch.randn(5, 8), torch.randn(5, 8)  # different scales: the norms must weigh in
    exact = {}
    for k, name in enumerate(("text", "image")):
        sq_t = sq_v = 0.0
        for b in range(5):
            j_t, j_v = torch.autograd.functional.jacobian(lambda x, y: sim(x[None], y[None])[k][0, 0], (t[b], v[b]))
            sq_t += j_t.square().sum() * t[b].square().sum()
            sq_v += j_v.square().sum() * v[b].square().sum()
        exact[name] = math.sqrt(sq_v / sq_t) if name == "text" else math.sqrt(sq_t / sq_v)
    text_on_image, image_on_text = gradient_ratios(sim, t, v, probes=400)
    assert text_on_image == pytest.approx(exact["text"], rel=0.1)
    assert image_on_text == pytest.approx(exact["image"], rel=0.1)


def test_measure_guidance_of_a_head_and_of_one_without_sim(tmp_path):
    cfg = HeadConfig(embed_dim=16, num_classes=3, heads=4, ffn_hidden=16)
    head = SGMFTHead(variant_config("sgmft-tau", cfg)).train()
    text, image = torch.randn(40, 16), torch.randn(40, 16)
    g = measure_guidance(head, 5 * text, image, split="val", posts=10)
    assert head.training  # left as it was found
    assert g.sim and g.posts == 10 and g.dim == 16 and g.tau_m == pytest.approx(16) and g.gate == "softmax"
    assert g.p_m_mean == pytest.approx(1 / 16)
    same = p_m_spread(head.sim, F.normalize(text[:10], dim=-1), F.normalize(image[:10], dim=-1))
    assert g.p_m_entropy == pytest.approx(same["p_m_entropy"])  # measured on the features as the head sees them
    none = measure_guidance(SGMFTHead(variant_config("clip-only", cfg)), text, image)
    assert not none.sim and none.posts == 0 and math.isnan(none.p_m_entropy) and math.isnan(none.tau_m)
    run = RunDir(tmp_path)
    assert run.read_guidance() is None
    for record in (g, none):
        run.write_guidance(record)
        back = run.read_guidance()
        assert back.to_json() == record.to_json() and isinstance(back, Guidance)
    assert "NaN" not in (tmp_path / "guidance.json").read_text()  # plain JSON: no SIM is null
