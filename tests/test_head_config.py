"""HeadConfig's refusals: a checkpoint's config is checked before any weight is allocated, at its exact bounds."""
from __future__ import annotations

import pytest

from pipeline.head import HeadConfig
from pipeline.head.config import MAX_LAYERS, MAX_WEIGHTS, MAX_WIDTH

SMALL = dict(embed_dim=16, heads=2, ffn_hidden=8, classifier_hidden=(8,))
WIDTHS = ("embed_dim", "num_classes", "heads", "ffn_hidden", "fusion_layers")


def refusal(**kw) -> str:
    with pytest.raises(ValueError) as e:
        HeadConfig(**{**SMALL, **kw})
    return str(e.value)


@pytest.mark.parametrize("name", WIDTHS)
@pytest.mark.parametrize("value", [0, -3, MAX_WIDTH + 1, True, 2.5, "8"])
def test_every_width_out_of_bounds_is_refused_by_name(name, value):
    assert refusal(**{name: value}) == f"head config {name}={value!r}: must be an integer in 1..{MAX_WIDTH}"


@pytest.mark.parametrize("value", [0, MAX_WIDTH + 1, False])
def test_a_classifier_width_out_of_bounds_is_refused_by_its_position(value):
    message = refusal(classifier_hidden=(8, value, 4))
    assert message == f"head config classifier_hidden[1]={value!r}: must be an integer in 1..{MAX_WIDTH}"


def test_widths_at_their_bounds_are_accepted():
    HeadConfig(**{**SMALL, "num_classes": MAX_WIDTH, "classifier_hidden": (1, MAX_WIDTH)})
    HeadConfig(embed_dim=1, heads=1, ffn_hidden=1, num_classes=1, fusion_layers=1, classifier_hidden=(1,))


def test_layers_beyond_the_bound_are_refused_each_on_its_own():
    HeadConfig(**{**SMALL, "fusion_layers": MAX_LAYERS, "classifier_hidden": (4,) * MAX_LAYERS})
    assert refusal(fusion_layers=MAX_LAYERS + 1) == f"head config has more than {MAX_LAYERS} layers"
    assert refusal(classifier_hidden=(4,) * (MAX_LAYERS + 1)) == f"head config has more than {MAX_LAYERS} layers"


@pytest.mark.parametrize("dropout", [1, 1.5, -0.1, "0.1", None])
def test_a_dropout_outside_0_1_is_refused(dropout):
    assert refusal(dropout=dropout) == f"head config dropout={dropout!r}: must lie in [0, 1)"


def test_dropouts_inside_0_1_are_accepted():
    for dropout in (0, 0.0, 0.5, 0.999):
        assert HeadConfig(**SMALL, dropout=dropout).dropout == dropout


def weights(embed_dim: int, fusion_layers: int, ffn_hidden: int, classifier_hidden: tuple[int, ...]) -> int:
    """The estimate HeadConfig bounds: two streams of (fusion layers + the SIM's ~2) attention+FFN layers of
    4·D² + 2·D·d_h weights each, plus the classifier's widest layer from both halves of M_fuse."""
    layers = fusion_layers + 2
    return 2 * layers * embed_dim * (4 * embed_dim + 2 * ffn_hidden) + embed_dim * max(classifier_hidden, default=1) * 2


def test_the_weight_bound_is_exact_at_its_edge():
    """D = 1280, one fusion layer, d_h = 62544, no hidden classifier layer: exactly MAX_WEIGHTS by the estimate."""
    edge = dict(embed_dim=1280, heads=8, fusion_layers=1, ffn_hidden=62544, classifier_hidden=())
    assert weights(1280, 1, 62544, ()) == MAX_WEIGHTS
    HeadConfig(**edge)  # at the bound: accepted
    with pytest.raises(ValueError, match=r"would need about 1e\+09 weights \(more than 1e\+09\)"):
        HeadConfig(**{**edge, "ffn_hidden": 62545})


@pytest.mark.parametrize("config, expected", [
    (dict(embed_dim=8192, fusion_layers=2, ffn_hidden=4096, classifier_hidden=(512, 64)), "2.7e+09"),
    (dict(embed_dim=16384, fusion_layers=1, ffn_hidden=16, classifier_hidden=(65536,)), "8.6e+09"),
    (dict(embed_dim=4096, fusion_layers=8, ffn_hidden=65536, classifier_hidden=(16,)), "1.2e+10"),
])
def test_the_refusal_names_the_estimated_weights(config, expected):
    assert f"{weights(**config):.2g}" == expected
    assert refusal(heads=8, **config) == f"head config would need about {expected} weights (more than 1e+09)"


def test_the_papers_head_is_well_inside_the_bound():
    cfg = HeadConfig()
    assert weights(cfg.embed_dim, cfg.fusion_layers, cfg.ffn_hidden, cfg.classifier_hidden) < MAX_WEIGHTS / 10
