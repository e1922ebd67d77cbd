"""The probe's C choice against scikit-learn fitted here, and each trainer's saved scorer reproducing its run's test outputs."""
from __future__ import annotations

import csv

import numpy as np
import pytest
import torch

from pipeline.fit import FitConfig, fit, load_cached_splits, load_checkpoint
from pipeline.fit.probe import C_GRID, probe_features
from pipeline.fit.run import load_scorer
from pipeline.metrics import softmax
from pipeline.rundir import RunDir
from pipeline.synthetic import make_synthetic_cache
from sgmft_cache import CacheMeta, write_split

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    path = tmp_path_factory.mktemp("probe") / "feats.h5"
    make_synthetic_cache(path, sizes={"train": 84, "val": 28, "test": 35}, dim=8, noise=1.2, seed=4)
    return path


def test_probe_keeps_the_c_with_the_best_validation_accuracy(cache, tmp_path):
    from sklearn.linear_model import LogisticRegression

    result = fit(FitConfig(cache=str(cache), out=str(tmp_path / "p"), variant="logreg-probe", quiet=True))
    splits = load_cached_splits(str(cache))
    x = {s: probe_features(getattr(splits, s), "l2") for s in ("train", "val", "test")}
    y = {s: getattr(splits, s).label.numpy() for s in ("train", "val", "test")}
    rows = list(csv.DictReader((result.run_dir / "c_search.csv").open()))
    assert [float(r["C"]) for r in rows] == list(C_GRID)
    val = []
    for c, row in zip(C_GRID, rows):
        model = LogisticRegression(C=c, max_iter=2000).fit(x["train"], y["train"])
        assert float(row["train_accuracy"]) == pytest.approx(model.score(x["train"], y["train"]), abs=1e-6)
        assert float(row["val_accuracy"]) == pytest.approx(model.score(x["val"], y["val"]), abs=1e-6)
        val.append(model.score(x["val"], y["val"]))
    best = C_GRID[int(np.argmax(val))]  # the first (smallest C) of equal bests
    m = result.metrics
    assert m["probe_C"] == best and m["val_accuracy"] == pytest.approx(max(val)) and m["chosen"] == f"C={best:g}"
    assert m["best_epoch"] is None and m["epochs"] == 0
    chosen = LogisticRegression(C=best, max_iter=2000).fit(x["train"], y["train"])
    out = RunDir(result.run_dir).read_outputs()
    np.testing.assert_allclose(out["probs"], chosen.predict_proba(x["test"]), atol=1e-5)
    np.testing.assert_allclose(out["fusion"], x["test"], atol=1e-6)  # the probe's "M_fuse" is its input
    with np.load(result.run_dir / "probe.npz") as z:
        assert str(z["input_norm"]) == "l2" and float(z["C"]) == best and list(z["labels"]) == list(m["labels"])
        np.testing.assert_allclose(z["coef"], chosen.coef_, rtol=1e-4, atol=1e-6)
    config = RunDir(result.run_dir).read_config()
    assert config.trainer["C_grid"] == list(C_GRID) and config.trainer["input_norm"] == "l2"
    # its saved scorer gives the same probabilities on the test posts
    scores = load_scorer(result.run_dir, torch.device("cpu"))(splits.test)
    np.testing.assert_allclose(softmax(scores), out["probs"], atol=1e-5)


def test_probe_scorer_of_two_classes_and_of_a_class_absent_from_train(tmp_path):
    path = tmp_path / "feats.h5"
    rng = np.random.default_rng(0)
    meta = CacheMeta("synthetic", 4, ("a", "b", "c"), "fp")
    for split, labels in (("train", [0, 2] * 10), ("val", [0, 2] * 4), ("test", [0, 1, 2, 2])):
        n = len(labels)
        text = rng.standard_normal((n, 4)) + np.asarray(labels)[:, None]
        write_split(path, split, meta, ids=[f"{split}{i}" for i in range(n)], text=text,
                    image=rng.standard_normal((n, 4)), label=labels)
    with pytest.warns(UserWarning, match="have no training post"):
        result = fit(FitConfig(cache=str(path), out=str(tmp_path / "p"), variant="logreg-probe", quiet=True))
    scores = load_scorer(result.run_dir, torch.device("cpu"))(load_cached_splits(str(path)).test)
    assert scores.shape == (4, 3) and np.isneginf(scores[:, 1]).all()  # never seen in train: probability 0
    np.testing.assert_allclose(softmax(scores), RunDir(result.run_dir).read_outputs()["probs"], atol=1e-5)


def test_head_scorer_and_checkpoint_reproduce_the_runs_test_outputs(cache, tmp_path):
    result = fit(FitConfig(cache=str(cache), out=str(tmp_path / "h"), epochs=2, lr=1e-3, heads=2, ffn_hidden=8,
                           quiet=True))
    test = load_cached_splits(str(cache)).test
    logits = load_scorer(result.run_dir, torch.device("cpu"))(test)
    out = RunDir(result.run_dir).read_outputs()
    assert logits.shape == (35, 7)
    np.testing.assert_allclose(softmax(logits), out["probs"], atol=1e-5)
    head, info = load_checkpoint(result.run_dir)
    assert {"labels", "cache_fingerprint", "encoder", "variant", "seed", "epoch", "fit_config",
            "extraction"} <= set(info) and not {"state_dict", "head_config"} & set(info)
    assert info["epoch"] == result.metrics["best_epoch"] and info["labels"] == list(result.metrics["labels"])
    assert not head.training and head.cfg.heads == 2
