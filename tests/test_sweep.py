"""Sweeps: many (variant, seed) runs from one load of the cache; one failure costs only itself."""
from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

import pipeline.fit.run
import pipeline.fit.sweeps as sweep_module
from cli import app
from pipeline.fit import FitConfig
from pipeline.fit.sweeps import GROUPS, PAPER, expand_variants, parse_seeds, sweep
from pipeline.synthetic import make_synthetic_cache
from sgmft_cache import SgmftError

pytestmark = pytest.mark.usefixtures("one_thread")

@pytest.fixture(scope="module")
def small_cache(tmp_path_factory):
    path = tmp_path_factory.mktemp("sweep") / "feats.h5"
    make_synthetic_cache(path, sizes={"train": 84, "test": 28}, dim=16, seed=2)
    return path


QUICK = ["--epochs", "1", "--lr", "1e-3", "--heads", "4", "--ffn-hidden", "16", "-q"]


def test_variant_lists_and_groups():
    assert expand_variants("text-only, sgmft,text-only") == ["text-only", "sgmft"]
    assert expand_variants("paper") == list(PAPER) and len(PAPER) == 8  # every row of Tables 2-4
    assert expand_variants("all") == list(GROUPS["all"]) and "logreg-probe" in GROUPS["all"]
    assert expand_variants("baselines,sgmft")[-1] == "sgmft"
    with pytest.raises(SgmftError, match="unknown variant 'nope'.*paper"):
        expand_variants("sgmft,nope")


def test_seed_lists():
    assert parse_seeds("0,1,2") == [0, 1, 2]
    assert parse_seeds("3-5, 1, 4") == [3, 4, 5, 1]
    for bad in ("a", "1.5", "", "-2"):
        with pytest.raises(SgmftError, match="--seeds"):
            parse_seeds(bad)


def test_sweep_loads_the_cache_once_and_writes_one_dir_per_run(small_cache, tmp_path, monkeypatch):
    loads = []
    real = sweep_module.load_cached_splits
    monkeypatch.setattr(sweep_module, "load_cached_splits", lambda path, *rest: loads.append(path) or real(path, *rest))
    monkeypatch.setattr(pipeline.fit.run, "load_cached_splits", lambda path, *rest: pytest.fail("fit reloaded the cache"))
    base = FitConfig(cache=str(small_cache), epochs=1, lr=1e-3, heads=4, ffn_hidden=16, quiet=True,
                     out=str(tmp_path / "sweep"))
    runs = sweep(base, ["text-only", "logreg-probe"], [0, 1])
    assert loads == [str(small_cache)]
    assert [(r.variant, r.seed) for r in runs] == [("text-only", 0), ("text-only", 1), ("logreg-probe", 0),
                                                   ("logreg-probe", 1)]
    assert sorted(p.name for p in (tmp_path / "sweep").iterdir()) == [
        "logreg-probe-seed0", "logreg-probe-seed1", "text-only-seed0", "text-only-seed1"]
    for r in runs:
        m = json.loads((r.run_dir / "metrics.json").read_text())
        assert (m["variant"], m["seed"]) == (r.variant, r.seed) and r.error is None


def test_a_failing_variant_is_reported_and_the_others_finish(small_cache, tmp_path, monkeypatch):
    real_fit = sweep_module.fit

    def flaky(cfg, splits):
        if cfg.variant == "image-only":
            raise RuntimeError("CUDA out of memory\nsecond line")
        return real_fit(cfg, splits)

    monkeypatch.setattr(sweep_module, "fit", flaky)
    result = CliRunner().invoke(app, ["fit", "--cache", str(small_cache), "--variants", "text-only,image-only,clip-only",
                                      "--out", str(tmp_path / "s"), *QUICK])
    assert result.exit_code == 1, result.output
    assert "FAILED image-only seed 0: RuntimeError: CUDA out of memory" in result.stderr
    assert "1 of 3 runs failed: image-only seed 0" in result.stderr
    done = {p.name for p in (tmp_path / "s").iterdir() if (p / "metrics.json").exists()}
    assert done == {"text-only-seed0", "clip-only-seed0"}
    assert "text-only seed 0: test accuracy" in result.stdout and "clip-only seed 0: test accuracy" in result.stdout


def test_cli_seeds_with_a_single_variant(small_cache, tmp_path):
    result = CliRunner().invoke(app, ["fit", "--cache", str(small_cache), "--variant", "text-only", "--seeds", "0-1",
                                      "--out", str(tmp_path / "s"), *QUICK])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (tmp_path / "s").iterdir()) == ["text-only-seed0", "text-only-seed1"]


def test_cli_refuses_variant_and_variants_together_and_unknown_names(small_cache):
    r = CliRunner().invoke(app, ["fit", "--cache", str(small_cache), "--variant", "sgmft", "--variants", "paper"])
    assert r.exit_code == 2 and "not both" in r.stderr
    r = CliRunner().invoke(app, ["fit", "--cache", str(small_cache), "--variants", "sgmft,typo"])
    assert r.exit_code == 2 and "unknown variant 'typo'" in r.stderr and len(r.stderr.strip().splitlines()) == 1
