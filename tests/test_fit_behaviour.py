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
REAL_TRAIN_EPOCH = head_trainer_module.train_epoch
pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    """train 140 (7 steps of the paper's batch 20), its own val 30 and test 40, D = 16."""
    path = tmp_path_factory.mktemp("behaviour") / "feats.h5"
    make_synthetic_cache(path, sizes={"train": 140, "val": 28, "test": 42}, dim=16, noise=0.6, seed=1)
    return path


def test_epochs_csv_names_the_train_figures_running(cache, tmp_path):
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


def scripted_evaluate(monkeypatch, val_size: int, val_script: list[float], test_script: list[float]):
    """fit's evaluate, with the accuracy of the n-th val (test) evaluation replaced by val_script[n]
    (test_script[n]); records a copy of the head's weights at each val evaluation."""
    real = head_trainer_module.evaluate
    calls = {"val": 0, "test": 0}
    states = []

    def evaluate(head, data, *args, **kw):
        ev = real(head, data, *args, **kw)
        split = "val" if len(data) == val_size else "test"
        script = val_script if split == "val" else test_script
        n = calls[split]
        calls[split] += 1
        if split == "val":
            states.append({k: v.clone() for k, v in head.state_dict().items()})
        return replace(ev, accuracy=script[n]) if n < len(script) else ev

    monkeypatch.setattr(head_trainer_module, "evaluate", evaluate)
    return states


def test_checkpoint_is_the_best_validation_epoch_not_the_last_nor_the_best_on_test(cache, tmp_path, monkeypatch):
    """Val peaks (first) at epoch 2, test would peak at epoch 4: the checkpoint must be epoch 2's weights."""
    states = scripted_evaluate(monkeypatch, 28, [0.2, 0.9, 0.9, 0.4], [0.1, 0.2, 0.3, 0.95])
    result = fit(FitConfig(cache=str(cache), out=str(tmp_path / "r"), epochs=4, lr=1e-3, **SMALL))
    m = result.metrics
    assert m["best_epoch"] == 2 and m["val_accuracy"] == 0.9 and m["epochs"] == 4
    head, info = load_checkpoint(result.run_dir)
    assert info["epoch"] == 2
    saved = head.state_dict()
    for name, value in states[1].items():
        torch.testing.assert_close(saved[name], value)
    assert any(not torch.equal(saved[k], states[3][k]) for k in saved)  # the last epoch's weights differ
    with torch.no_grad():
        splits = load_cached_splits(str(cache))
        preds = head(splits.test.text, splits.test.image).argmax(1).numpy()
    rows = list(csv.DictReader((result.run_dir / "predictions.csv").open()))
    labels = list(m["labels"])
    assert [labels.index(r["pred"]) for r in rows] == preds.tolist()  # test scored with the chosen weights


def test_the_optimiser_fit_builds_has_the_papers_settings(cache, tmp_path, monkeypatch):
    """SPEC §5: Adam, lr 1e-5, β = (0.9, 0.99), no weight decay, default ε, constant lr, batch 20."""
    built = []
    real = torch.optim.Adam

    class Recording(real):
        def __init__(self, *a, **kw):
            super().__init__(*a, **kw)
            built.append(self)

    monkeypatch.setattr(torch.optim, "Adam", Recording)
    cfg = FitConfig(cache=str(cache), out=str(tmp_path / "r"), epochs=2, quiet=True, ffn_hidden=16)
    assert (cfg.lr, cfg.betas, cfg.batch_size, cfg.epochs, cfg.heads) == (1e-5, (0.9, 0.99), 20, 2, 8)
    assert FitConfig().epochs == 30 and FitConfig().val_fraction == 0.1
    data = prepare(load_cached_splits(str(cache)), cfg.val_fraction, cfg.seed)
    trainer = HeadTrainer(cfg, data)
    trainer.train(RunDir.create(cfg.out, cfg.cache, cfg.variant, cfg.seed))
    opt = built[-1]
    group = opt.param_groups[0]
    assert (group["lr"], tuple(group["betas"]), group["eps"], group["weight_decay"]) == (1e-5, (0.9, 0.99), 1e-8, 0)
    assert not group["amsgrad"] and len(opt.param_groups) == 1
    params = list(trainer.head.parameters())
    assert {id(p) for p in group["params"]} == {id(p) for p in params}
    steps = 2 * -(-140 // 20)  # two epochs of 140 train posts in batches of 20
    assert {int(opt.state[p]["step"]) for p in params if p in opt.state} == {steps}


def batch_orders(cache, tmp_path, monkeypatch, seed: int) -> list[list[int]]:
    """The train rows (by position in the train split) of every batch `fit` trains on, epoch by epoch."""
    real = REAL_TRAIN_EPOCH  # not the module's attribute: a previous call may have patched it
    epochs = []

    def train_epoch(head, opt, data, batch_size, generator, on_step=lambda *a: None, **kw):
        seen = []
        hook = head.register_forward_pre_hook(lambda m, args: seen.append(args[0]))
        try:
            out = real(head, opt, data, batch_size, generator, on_step, **kw)
        finally:
            hook.remove()
        where = {tuple(row.tolist()): i for i, row in enumerate(data.text)}
        epochs.append([[where[tuple(row.tolist())] for row in batch] for batch in seen])
        return out

    monkeypatch.setattr(head_trainer_module, "train_epoch", train_epoch)
    fit(FitConfig(cache=str(cache), out=str(tmp_path / f"s{seed}-{len(list(tmp_path.iterdir()))}"), epochs=2,
                  seed=seed, lr=1e-3, **SMALL))
    return epochs


def test_fit_shuffles_batches_by_its_seed(cache, tmp_path, monkeypatch):
    a = batch_orders(cache, tmp_path, monkeypatch, seed=3)
    b = batch_orders(cache, tmp_path, monkeypatch, seed=3)
    c = batch_orders(cache, tmp_path, monkeypatch, seed=4)
    assert len(a) == 2 and a == b and a[0] != c[0]
    for epoch in a + c:
        assert sorted(i for batch in epoch for i in batch) == list(range(140))  # every row once per epoch
        assert [len(batch) for batch in epoch] == [20] * 7
    flat = [i for batch in a[0] for i in batch]
    assert flat != list(range(140)) and a[0] != a[1]
