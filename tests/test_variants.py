"""Every named variant builds, trains through `fit`, and differs from the full model the way its name says."""
from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import torch

from pipeline.fit import FitConfig, fit, load_cached_splits
from pipeline.fit.probe import C_GRID
from pipeline.fit.sweeps import all_variant_names
from pipeline.head import HeadConfig, SGMFTHead, variant_config
from pipeline.head.ffn import FeedForward, SimilarityFeedForward
from pipeline.head.fusion import AsymmetricCoAttention, CoAttention, MergeAttention, SimilarityFusion
from pipeline.head.diagnostics import POSTS
from pipeline.head.polymerizer import LearnedScale
from pipeline.rundir import RunDir
from pipeline.synthetic import make_synthetic_cache

pytestmark = pytest.mark.usefixtures("one_thread")

D = 16


@pytest.fixture(scope="module")
def tiny_cache(tmp_path_factory):
    path = tmp_path_factory.mktemp("variants") / "feats.h5"
    make_synthetic_cache(path, sizes={"train": 84, "test": 28}, dim=D, noise=0.6, seed=1)
    return path


@pytest.fixture(scope="module")
def splits(one_thread, tiny_cache):
    return load_cached_splits(str(tiny_cache))


def build(variant: str) -> SGMFTHead:
    torch.manual_seed(0)
    return SGMFTHead(variant_config(variant, HeadConfig(embed_dim=D, num_classes=7, heads=4, ffn_hidden=D)))


def params(variant: str) -> set[str]:
    """Parameter names, less the placeholders of missing modalities (`inputs.`), which every variant has."""
    return {name for name, _ in build(variant).named_parameters() if not name.startswith("inputs.")}


def modules(variant: str) -> set[str]:
    """Top-level parts that hold parameters: 'sim.attention', 'sim.ffn_text', 'fusion', 'classifier'."""
    return {".".join(n.split(".")[:2]) if n.startswith("sim.") else n.split(".")[0] for n in params(variant)}


FULL = "sgmft"
PROBE = "logreg-probe"


@pytest.mark.parametrize("variant", all_variant_names())
def test_each_variant_trains_through_fit_and_leaves_a_run(tiny_cache, splits, tmp_path, variant):
    cfg = FitConfig(cache=str(tiny_cache), variant=variant, epochs=1, lr=1e-3, heads=4, ffn_hidden=D,
                    out=str(tmp_path / variant), quiet=True)
    result = fit(cfg, splits)
    m = json.loads((result.run_dir / "metrics.json").read_text())
    assert m["variant"] == variant and 0.0 <= m["test_accuracy"] <= 1.0 and m["test_size"] == 28
    saved = np.load(result.run_dir / "test_outputs.npz")
    np.testing.assert_allclose(saved["probs"].sum(1), 1.0, rtol=1e-5)
    assert np.isfinite(saved["fusion"]).all()
    guidance = RunDir(result.run_dir).read_guidance()  # the similarity diagnostics of every head run
    if variant == PROBE:
        assert guidance is None
    else:
        assert guidance.sim == variant_config(variant, HeadConfig()).sim and guidance.split == "val"
        assert guidance.posts == (min(m["val_size"], POSTS) if guidance.sim else 0)


def test_every_variant_has_a_structure_test():
    assert set(STRUCTURE) == set(all_variant_names()) - {PROBE}  # every variant but the probe is a head


def test_full_model_has_sim_with_text_wise_ffn_and_sfm():
    head = build(FULL)
    assert isinstance(head.fusion, SimilarityFusion)
    assert isinstance(head.sim.ffn_text, SimilarityFeedForward) and isinstance(head.sim.ffn_image, FeedForward)
    assert head.sim.gate == "softmax"
    assert head.classifier[0].in_features == D and sum(isinstance(m, torch.nn.Linear) for m in head.classifier) == 5


def _clip_only():
    head = build("clip-only")
    assert head.sim is None and not list(head.fusion.parameters())  # no SIM, no SFM: features summed
    assert modules("clip-only") == {"classifier"}
    assert {n for n in params(FULL) if n.startswith("classifier")} == params("clip-only")  # the same five layers


def _sfm_only():
    head = build("sfm-only")
    assert head.sim is None and isinstance(head.fusion, SimilarityFusion)
    assert params("sfm-only") == {n for n in params(FULL) if not n.startswith("sim.")}


def _sim_only():
    head = build("sim-only")
    assert head.sim is not None and not list(head.fusion.parameters())  # SFM gone, F^S summed
    assert params("sim-only") == {n for n in params(FULL) if not n.startswith("fusion.")}


def _asym_co_attention():
    head = build("asym-co-attention")
    assert isinstance(head.fusion, AsymmetricCoAttention) and head.sim is not None
    names = {n for n, _ in head.fusion.named_parameters()}
    assert names and all(n.startswith("text_layers.") for n in names)  # only text queries: no image-side layers
    assert any(".cross_attn." in n for n in names)


def _merge_attention():
    head = build("merge-attention")
    assert isinstance(head.fusion, MergeAttention)
    seen = []
    head.fusion.attn[0].register_forward_hook(lambda mod, args, out: seen.append(args[0].shape))
    head(torch.randn(3, D), torch.randn(3, D))
    assert seen == [torch.Size([3, 2, D])]  # self-attention over the 2-token [text; image] sequence


def _co_attention():
    head = build("co-attention")
    assert isinstance(head.fusion, CoAttention)
    assert len(head.fusion.text_layers) == len(head.fusion.image_layers) == 2  # both streams query each other


def _image_wise_ffn():
    head = build("image-wise-ffn")
    assert isinstance(head.sim.ffn_image, SimilarityFeedForward) and isinstance(head.sim.ffn_text, FeedForward)
    assert params("image-wise-ffn") - params(FULL) == {"sim.ffn_image.w3.weight"}
    assert params(FULL) - params("image-wise-ffn") == {"sim.ffn_text.w3.weight"}


def _ignores(variant: str, changed: str):
    head = build(variant).eval()
    t, v = torch.randn(5, D), torch.randn(5, D)
    other = (torch.randn(5, D), v) if changed == "text" else (t, torch.randn(5, D))
    torch.testing.assert_close(head(t, v), head(*other))
    assert head.sim is None and modules(variant) == {"classifier"}


def _concat_mlp():
    head = build("concat-mlp")
    assert head.sim is None and head.classifier[0].in_features == 2 * D
    assert head.fuse(torch.randn(4, D), torch.randn(4, D)).shape == (4, 2 * D)


def _sigmoid_gate():
    head = build("sigmoid-gate")
    assert head.sim.gate == "sigmoid" and params("sigmoid-gate") == params(FULL)


def _temperatures(variant: str, on: set[str], gate: str = "softmax"):
    """The full model plus one learnable log τ for each similarity in `on` ("m", "e"), starting at τ = D."""
    head = build(variant)
    assert head.sim.gate == gate
    for which in ("m", "e"):
        tau = getattr(head.sim, f"tau_{which}")
        assert isinstance(tau, LearnedScale) == (which in on)
        if which in on:
            assert float(tau().detach()) == pytest.approx(D)
    assert params(variant) - params(FULL) == {f"sim.tau_{which}.log_scale" for which in on}
    assert params(FULL) <= params(variant)


def _raw():
    head = build("sgmft-raw").eval()
    assert head.cfg.input_norm == "none" and params("sgmft-raw") == params(FULL)
    t, v = torch.randn(4, D), torch.randn(4, D)
    assert not torch.allclose(head(t, v), head(7 * t, v))  # the raw scale reaches the head


def _image_set(variant: str, pool: str):
    """The full model's parameters; it reads every real image of a post (the first-image model reads one)."""
    head, full = build(variant).eval(), build(FULL).eval()
    assert head.cfg.images == pool and params(variant) == params(FULL)
    full.load_state_dict(head.state_dict())
    t, images = torch.randn(4, D), torch.randn(4, 3, D)
    mask = torch.tensor([[True, True, True], [True, True, False], [True, False, False], [True, True, True]])
    other = images.clone()
    other[:, 1:] = torch.randn(4, 2, D)  # only the second and third images change
    moved = (head(t, images[:, 0], images=images, image_mask=mask) - head(t, other[:, 0], images=other,
                                                                         image_mask=mask)).abs().amax(1)
    assert (moved[[0, 1, 3]] > 1e-4).all() and moved[2] < 1e-6  # post 2 has one image: its padding is ignored
    torch.testing.assert_close(full(t, images[:, 0], images=images, image_mask=mask),
                               full(t, other[:, 0], images=other, image_mask=mask))  # the paper's: first image only


def _mean_images():
    _image_set("sgmft-mean-images", "mean")
    head, full = build("sgmft-mean-images").eval(), build(FULL).eval()
    full.load_state_dict(head.state_dict())
    t, images = torch.randn(3, D), torch.randn(3, 2, D)
    unit = torch.nn.functional.normalize
    mean = unit(images, dim=-1).mean(1)  # the mean of the images on the unit sphere
    torch.testing.assert_close(head(t, images[:, 0], images=images), full(t, mean))


def _attend_images():
    _image_set("sgmft-images", "attend")
    head = build("sgmft-images")
    seen = []
    head.fusion.text_to_image[0].register_forward_hook(lambda mod, args, out: seen.append(args[1].shape))
    head(torch.randn(2, D), torch.randn(2, D), images=torch.randn(2, 4, D), image_mask=torch.ones(2, 4, dtype=torch.bool))
    assert seen == [torch.Size([2, 4, D])]  # the SFM's text attends over the four images, a real sequence


STRUCTURE = {
    "sgmft-images": _attend_images,
    "sgmft-mean-images": _mean_images,
    FULL: test_full_model_has_sim_with_text_wise_ffn_and_sfm,
    "clip-only": _clip_only,
    "sfm-only": _sfm_only,
    "sim-only": _sim_only,
    "asym-co-attention": _asym_co_attention,
    "merge-attention": _merge_attention,
    "co-attention": _co_attention,
    "image-wise-ffn": _image_wise_ffn,
    "text-only": lambda: _ignores("text-only", "image"),
    "image-only": lambda: _ignores("image-only", "text"),
    "concat-mlp": _concat_mlp,
    "sigmoid-gate": _sigmoid_gate,
    "sgmft-tau": lambda: _temperatures("sgmft-tau", {"m", "e"}),
    "sgmft-tau-m": lambda: _temperatures("sgmft-tau-m", {"m"}),
    "sgmft-tau-e": lambda: _temperatures("sgmft-tau-e", {"e"}),
    "sigmoid-gate-tau": lambda: _temperatures("sigmoid-gate-tau", {"m", "e"}, gate="sigmoid"),
    "sgmft-raw": _raw,
}


@pytest.mark.parametrize("variant", [v for v in STRUCTURE if v != FULL])
def test_variant_differs_from_full_model_as_named(variant):
    STRUCTURE[variant]()


def test_probe_keeps_the_run_contract(tiny_cache, splits, tmp_path):
    head_run = fit(FitConfig(cache=str(tiny_cache), epochs=1, heads=4, ffn_hidden=D, out=str(tmp_path / "h"),
                             quiet=True), splits)
    probe = fit(FitConfig(cache=str(tiny_cache), variant=PROBE, out=str(tmp_path / "p"), quiet=True), splits)
    assert set(head_run.metrics) <= set(probe.metrics)
    m = json.loads((probe.run_dir / "metrics.json").read_text())
    assert m["variant"] == PROBE and m["probe_C"] in C_GRID and m["encoder"] == "synthetic" and m["encoder_note"]
    rows = list(csv.DictReader((probe.run_dir / "predictions.csv").open()))
    assert len(rows) == 28 and np.mean([r["label"] == r["pred"] for r in rows]) == pytest.approx(m["test_accuracy"])
    saved = np.load(probe.run_dir / "test_outputs.npz")
    assert saved["fusion"].shape == (28, 2 * D)  # M_fuse of the probe = [text; image]
    np.testing.assert_allclose(np.linalg.norm(saved["fusion"][:, :D], axis=1), 1.0, rtol=1e-5)
    np.testing.assert_allclose(saved["probs"].sum(1), 1.0, rtol=1e-5)
    search = list(csv.DictReader((probe.run_dir / "c_search.csv").open()))
    assert max(float(r["val_accuracy"]) for r in search) == pytest.approx(m["val_accuracy"])
    assert m["test_accuracy"] > 0.9  # the split signal is linearly separable in [text; image]
