"""`sgmft fit`: what a run leaves behind, determinism, that fusion pays, and clear errors on bad input."""
from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from cli import app
from pipeline.fit import FitConfig, fit, load_cached_splits, load_checkpoint
from pipeline.synthetic import make_synthetic_cache
from sgmft_cache import CacheMeta, write_split

QUICK = dict(epochs=4, lr=1e-3, ffn_hidden=32, heads=4, quiet=True)


def run(cache: Path, out: Path, **kw):
    return fit(FitConfig(cache=str(cache), out=str(out), **{**QUICK, **kw}))


def test_run_directory_holds_what_users_read(synthetic_cache, tmp_path):
    result = run(synthetic_cache, tmp_path / "run")
    d = result.run_dir
    assert {p.name for p in d.iterdir()} >= {"config.json", "epochs.csv", "checkpoint.pt", "metrics.json",
                                              "predictions.csv", "test_outputs.npz"}
    m = json.loads((d / "metrics.json").read_text())
    assert 0.0 <= m["test_accuracy"] <= 1.0 and 0.0 <= m["val_accuracy"] <= 1.0
    assert m["variant"] == "sgmft" and m["seed"] == 0 and m["cache_fingerprint"].startswith("synthetic")
    assert (m["train_size"], m["val_size"], m["test_size"]) == (378, 42, 140)  # 10 % of 420, stratified
    with (d / "predictions.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == ["id", "label", "pred"] and len(rows) == 140
    assert np.mean([r["label"] == r["pred"] for r in rows]) == pytest.approx(m["test_accuracy"])
    epochs = list(csv.DictReader((d / "epochs.csv").open()))
    assert [int(e["epoch"]) for e in epochs] == [1, 2, 3, 4]
    assert max(float(e["val_accuracy"]) for e in epochs) == pytest.approx(m["val_accuracy"])
    cfg = json.loads((d / "config.json").read_text())
    assert cfg["fit"]["lr"] == 1e-3 and cfg["head"]["fusion"] == "sfm"


def test_checkpoint_loads_on_its_own_and_reproduces_test_predictions(synthetic_cache, tmp_path):
    result = run(synthetic_cache, tmp_path / "run", variant="co-attention")
    head, info = load_checkpoint(result.run_dir)
    assert info["labels"] == list(result.metrics["labels"]) and info["variant"] == "co-attention"
    test = load_cached_splits(str(synthetic_cache)).test
    with torch.no_grad():
        pred = head(test.text, test.image).argmax(1).numpy()
    saved = np.load(result.run_dir / "test_outputs.npz")
    assert (pred == saved["pred"]).all() and saved["fusion"].shape == (140, 32)
    np.testing.assert_allclose(saved["probs"].sum(1), 1.0, rtol=1e-5)


def test_same_seed_same_numbers(synthetic_cache, tmp_path):
    a, b = run(synthetic_cache, tmp_path / "a", seed=5), run(synthetic_cache, tmp_path / "b", seed=5)
    own = lambda m: {k: v for k, v in m.items() if k != "run_id"}  # noqa: E731 - each run has its own id
    assert own(a.metrics) == own(b.metrics) and a.metrics["run_id"] != b.metrics["run_id"]
    assert (a.run_dir / "predictions.csv").read_text() == (b.run_dir / "predictions.csv").read_text()
    cols = lambda d: [{k: v for k, v in r.items() if k != "seconds"} for r in csv.DictReader((d / "epochs.csv").open())]  # noqa: E731
    assert cols(a.run_dir) == cols(b.run_dir)


def test_fusion_beats_either_modality_alone(synthetic_cache, tmp_path):
    """Class c = (c // 2 in the text, c % 2 in the image): neither modality alone can reach it."""
    acc = {v: run(synthetic_cache, tmp_path / v, variant=v, epochs=6).metrics["test_accuracy"]
           for v in ("sgmft", "text-only", "image-only")}
    assert acc["text-only"] < 0.7 and acc["image-only"] < 0.45  # the design's ceilings are 4/7 and 2/7
    assert acc["sgmft"] > max(acc["text-only"], acc["image-only"]) + 0.25, acc


def test_cache_val_split_is_used_when_present(tmp_path):
    cache = tmp_path / "feats.h5"
    make_synthetic_cache(cache, sizes={"train": 140, "val": 35, "test": 35}, dim=16)
    m = run(cache, tmp_path / "run", ffn_hidden=16).metrics
    assert m["val_source"] == "the cache's val split" and (m["train_size"], m["val_size"]) == (140, 35)


def test_unlabelled_rows_are_not_trained_or_scored(tmp_path):
    cache = tmp_path / "feats.h5"
    meta = CacheMeta("synthetic", 8, ("a", "b"), "fp")
    rng = np.random.default_rng(0)
    for split, n in (("train", 40), ("test", 10)):
        label = np.arange(n) % 2
        label[:3] = -1
        write_split(cache, split, meta, ids=[f"{split}{i}" for i in range(n)], text=rng.standard_normal((n, 8)),
                    image=rng.standard_normal((n, 8)), label=label)
    m = run(cache, tmp_path / "run", ffn_hidden=8).metrics
    assert m["train_size"] + m["val_size"] == 37 and m["test_size"] == 7


# ---- bad input: one clear line naming the file, exit code != 0, no traceback ----

def _cache_with(tmp_path, damage=None, train_labels=None) -> Path:
    cache = tmp_path / "feats.h5"
    make_synthetic_cache(cache, sizes={"train": 40, "test": 14}, dim=8)
    if train_labels is not None:
        with h5py.File(cache, "a") as f:
            f["train/label"][...] = train_labels
    if damage:
        with h5py.File(cache, "a") as f:
            damage(f)
    return cache


BAD = {
    "missing file": (lambda p: p / "nope.h5", "no such file"),
    "not hdf5": (lambda p: (p / "x.h5").write_text("id,text\n") and p / "x.h5", "not an HDF5 file"),
    "missing split": (lambda p: _cache_with(p, lambda f: f.__delitem__("test")), "split 'test' is missing"),
    "missing dataset": (lambda p: _cache_with(p, lambda f: f["train"].__delitem__("text")), "/train/text is missing"),
    "row counts": (lambda p: _cache_with(p, lambda f: (f["test"].__delitem__("label"),
                   f["test"].create_dataset("label", data=np.zeros(3, np.int64)))), "row counts differ"),
    "nan features": (lambda p: _cache_with(p, lambda f: f["train/image"].__setitem__((4, 2), np.nan)), "NaN or Inf"),
    "one class": (lambda p: _cache_with(p, train_labels=np.zeros(40, np.int64)), "only 1 class|1 class"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_cache_gives_one_clear_line(tmp_path, case):
    make, message = BAD[case]
    cache = make(tmp_path)
    result = CliRunner().invoke(app, ["fit", "--cache", str(cache), "--epochs", "1", "-q"])
    assert result.exit_code == 2, result.output
    err = result.stderr.strip()
    assert len(err.splitlines()) == 1 and err.startswith("error: ") and str(cache) in err, err
    assert __import__("re").search(message, err), err
    assert "Traceback" not in result.output


def test_unknown_variant_and_device_are_refused(synthetic_cache):
    r = CliRunner().invoke(app, ["fit", "--cache", str(synthetic_cache), "--variant", "nope", "-q"])
    assert r.exit_code == 2 and "unknown variant 'nope'" in r.stderr and "sgmft" in r.stderr
    r = CliRunner().invoke(app, ["fit", "--cache", str(synthetic_cache), "--device", "tpu9", "-q"])
    assert r.exit_code == 2 and "--device tpu9" in r.stderr


def test_console_script_prints_no_traceback(tmp_path):
    """The real `sgmft` process, not the test runner: one line on stderr, exit code 2."""
    sgmft = Path(sys.executable).with_name("sgmft")
    proc = subprocess.run([str(sgmft), "fit", "--cache", str(tmp_path / "missing.h5")], capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [f"error: {tmp_path / 'missing.h5'}: no such file "
                                                "(make one with `sgmft extract`, or pass --cache)"]
