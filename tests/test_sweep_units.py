"""pipeline.fit.sweeps without training: names and seeds parsed, every (variant, seed) run once, failures kept apart."""
from __future__ import annotations

from pathlib import Path

import pytest

from pipeline import variants
from pipeline.fit import sweeps
from pipeline.fit.config import FitConfig
from sgmft_cache import SgmftError


def test_expand_variants_keeps_order_expands_groups_and_drops_duplicates():
    assert sweeps.expand_variants("text-only, sgmft,text-only,,") == ["text-only", "sgmft"]
    assert sweeps.expand_variants("sgmft,,text-only") == ["sgmft", "text-only"]  # an empty item is skipped
    paper = list(variants.group(variants.PAPER))
    assert sweeps.expand_variants("paper") == paper and sweeps.expand_variants(f"{paper[1]},paper")[0] == paper[1]
    with pytest.raises(SgmftError) as error:
        sweeps.expand_variants("sgmft,nope")
    names, groups = ", ".join(variants.names()), ", ".join(sweeps.GROUPS)
    assert str(error.value) == f"unknown variant 'nope'; choose from {names} or a group: {groups}"
    with pytest.raises(SgmftError) as error:
        sweeps.expand_variants(" , ")
    assert str(error.value) == "--variants names no variant"


def test_parse_seeds_takes_lists_and_inclusive_ranges():
    assert sweeps.parse_seeds("0,1,2") == [0, 1, 2]
    assert sweeps.parse_seeds("3-5, 1, 4") == [3, 4, 5, 1]
    assert sweeps.parse_seeds("7") == [7] and sweeps.parse_seeds("10-12") == [10, 11, 12]
    for bad in ("a", "1-", "-1", "1.5", "1-2-3"):
        with pytest.raises(SgmftError, match=f"--seeds '{bad}': give integers like 0,1,2 or a range 0-4"):
            sweeps.parse_seeds(bad)
    with pytest.raises(SgmftError, match="--seeds ',' names no seed"):
        sweeps.parse_seeds(",")


def test_sweep_fits_every_variant_and_seed_once_on_one_load_and_keeps_going(monkeypatch, tmp_path):
    loads, fits = [], []
    monkeypatch.setattr(sweeps, "load_cached_splits", lambda path, *rest: loads.append(path) or "SPLITS")

    class Result:
        def __init__(self, cfg):
            self.run_dir, self.metrics = Path(cfg.out), {"variant": cfg.variant, "seed": cfg.seed}

    def fit(cfg, splits):
        assert splits == "SPLITS"
        fits.append((cfg.variant, cfg.seed, cfg.out, cfg.lr))
        if cfg.variant == "text-only" and cfg.seed == 1:
            raise ValueError("broken\nsecond line")
        return Result(cfg)

    monkeypatch.setattr(sweeps, "fit", fit)
    seen = []
    base = FitConfig(cache="c.h5", out=str(tmp_path), lr=0.5, quiet=True)
    done = sweeps.sweep(base, ["sgmft", "text-only"], [0, 1], on_run=seen.append)
    assert loads == ["c.h5"] and seen == done
    assert [(v, s) for v, s, _, _ in fits] == [("sgmft", 0), ("sgmft", 1), ("text-only", 0), ("text-only", 1)]
    assert fits[1][2] == str(tmp_path / "sgmft-seed1") and {lr for *_, lr in fits} == {0.5}
    failed = done[3]
    assert failed.metrics is None and failed.run_dir == tmp_path / "text-only-seed1"
    assert failed.error.startswith("ValueError: broken (at test_sweep_units.py:")
    assert all(r.error is None and r.metrics["seed"] == r.seed for r in done[:3])
    assert [(r.variant, r.seed) for r in done] == [("sgmft", 0), ("sgmft", 1), ("text-only", 0), ("text-only", 1)]
    assert done[0].run_dir == tmp_path / "sgmft-seed0"
    no_out = sweeps.sweep(FitConfig(cache="c.h5", quiet=True), ["sgmft"], [0])
    assert fits[-1][2] is None and no_out[0].run_dir is None  # fit's default folder (a stand-in fit: None)


def test_one_line_of_a_user_error_has_no_source_location():
    try:
        raise SgmftError("cache.h5: no train split\nmore")
    except SgmftError as e:
        assert sweeps._one_line(e) == "SgmftError: cache.h5: no train split"
    assert sweeps._one_line(KeyError()) == "KeyError: "


def test_describe_names_the_summary_metrics_and_the_choice():
    m = {"variant": "sgmft", "seed": 2, "test_accuracy": 0.5, "test_macro_f1": 0.25, "test_loss": 9.0,
         "val_accuracy": 0.75, "chosen": "epoch 3"}
    assert sweeps.describe(m) == "sgmft seed 2: test accuracy 0.5000, macro-F1 0.2500 (val 0.7500 at epoch 3)"
