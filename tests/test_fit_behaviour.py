"""What fit actually does: the checkpoint chosen on validation, the optimiser built, the batch order, the files."""
from __future__ import annotations

import csv
from dataclasses import replace

import numpy as np
import pytest
import torch

from pipeline.fit import FitConfig, fit, load_cached_splits, load_checkpoint
from pipeline.fit import head_trainer as head_trainer_module
from pipeline.fit.data import prepare
from pipeline.fit.head_trainer import HeadTrainer
from pipeline.fit.probe import ProbeTrainer, probe_features
from pipeline.head import HeadConfig, SGMFTHead
from pipeline.rundir import EPOCH_FIELDS, RunDir
from pipeline.synthetic import make_synthetic_cache

SMALL = dict(ffn_hidden=16, heads=2, quiet=True)


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    """train 140 (7 steps of the paper's batch 20), its own val 30 and test 40, D = 16."""
    path = tmp_path_factory.mktemp("behaviour") / "feats.h5"
    make_synthetic_cache(path, sizes={"train": 140, "val": 28, "test": 42}, dim=16, noise=0.6, seed=1)
    return path


def test_epochs_csv_names_the_train_figures_running(cache, tmp_path, one_thread):
    result = fit(FitConfig(cache=str(cache), out=str(tmp_path / "r"), epochs=2, lr=1e-3, **SMALL))
    rows = list(csv.DictReader((result.run_dir / "epochs.csv").open()))
    assert list(rows[0]) == list(EPOCH_FIELDS)
    assert list(EPOCH_FIELDS[1:3]) == ["running_train_loss", "running_train_accuracy"]
    assert [int(r["epoch"]) for r in rows] == [1, 2]
    table = RunDir(result.run_dir).read_epochs()
    assert list(table.columns) == list(EPOCH_FIELDS)


def test_epochs_csv_of_older_runs_reads_under_the_new_names(tmp_path):
    (tmp_path / "epochs.csv").write_text("epoch,train_loss,train_accuracy,val_loss,val_accuracy,seconds\n"
                                         "1,2.0,0.25,1.5,0.5,0.1\n")
    table = RunDir(tmp_path).read_epochs()
    assert table["running_train_accuracy"].tolist() == [0.25] and table["running_train_loss"].tolist() == [2.0]


def test_probe_refuses_an_unknown_input_norm_as_the_head_does(cache):
    split = load_cached_splits(str(cache)).test
    with pytest.raises(ValueError) as head_error:
        SGMFTHead(HeadConfig(embed_dim=16, heads=2, input_norm="L2"))
    with pytest.raises(ValueError) as probe_error:
        probe_features(split, "L2")
    assert str(probe_error.value) == str(head_error.value)
    raw = probe_features(split, "none")
    np.testing.assert_allclose(raw[:, :16], split.text.numpy(), rtol=1e-6)
    unit = probe_features(split, "l2")
    np.testing.assert_allclose(np.linalg.norm(unit[:, :16], axis=1), 1, rtol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(unit[:, 16:], axis=1), 1, rtol=1e-6)
    np.testing.assert_allclose(unit[:, 16:] * np.linalg.norm(split.image.numpy(), axis=1, keepdims=True),
                               split.image.numpy(), rtol=1e-5)


def test_a_saved_probe_with_an_unknown_input_norm_is_refused(cache, tmp_path):
    result = fit(FitConfig(cache=str(cache), out=str(tmp_path / "p"), variant="logreg-probe", quiet=True))
    run = RunDir(result.run_dir)
    with np.load(run.file("probe.npz")) as z:
        saved = {k: z[k] for k in z.files}
    np.savez(run.file("probe.npz"), **{**saved, "input_norm": "unit"})
    scores = ProbeTrainer.scorer(run)
    with pytest.raises(ValueError, match="unknown input_norm 'unit'"):
        scores(load_cached_splits(str(cache)).test)
