"""What a run's files record: each figure of epochs.csv is the one measured, each field of the checkpoint,
config.json, metrics.json and guidance.json is the run's own; scorers refuse weights of another run; a
streamed split keeps its labels with its rows; every variant of a seed sees the same batches."""
from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import torch

from sgmft_cache import CacheMeta, SgmftError, content_identity, load_cache, write_split
from pipeline.fit import FitConfig, fit, load_cached_splits, load_checkpoint, load_scorer
from pipeline.fit import head_trainer as head_trainer_module
from pipeline.fit.checkpoint import save_checkpoint
from pipeline.fit.data import prepare
from pipeline.fit.stream import StreamedSplit, streamed_epoch
from pipeline.fit.sweeps import sweep
from pipeline.head import HeadConfig
from pipeline.rundir import RunDir
from pipeline.synthetic import make_synthetic_cache

SMALL = dict(ffn_hidden=16, heads=2, quiet=True, lr=1e-3)
REAL_TRAIN_EPOCH = head_trainer_module.train_epoch
REAL_EVALUATE = head_trainer_module.evaluate
pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    path = tmp_path_factory.mktemp("records") / "feats.h5"
    make_synthetic_cache(path, sizes={"train": 100, "test": 30}, dim=16, noise=0.8, seed=2)
    return path


def recorded_fit(cache, out, monkeypatch, **kw):
    """fit, with what each epoch's train_epoch returned and each val evaluation measured."""
    trained, evaluated = [], []

    def train_epoch(*a, **k):
        trained.append(REAL_TRAIN_EPOCH(*a, **k))
        return trained[-1]

    def evaluate(head, data, *a, **k):
        ev = REAL_EVALUATE(head, data, *a, **k)
        if not k.get("with_fusion"):  # the per-epoch val evaluations (test is evaluated with M_fuse)
            evaluated.append(ev)
        return ev

    monkeypatch.setattr(head_trainer_module, "train_epoch", train_epoch)
    monkeypatch.setattr(head_trainer_module, "evaluate", evaluate)
    cfg = FitConfig(cache=str(cache), out=str(out), **{**SMALL, **kw})
    return cfg, fit(cfg), trained, evaluated


def test_epochs_csv_holds_each_epochs_measured_figures(cache, tmp_path, monkeypatch):
    cfg, result, trained, evaluated = recorded_fit(cache, tmp_path / "r", monkeypatch, epochs=3)
    rows = list(csv.DictReader((result.run_dir / "epochs.csv").open()))
    assert len(rows) == len(trained) == len(evaluated) == 3
    for row, (loss, acc), ev in zip(rows, trained, evaluated):
        assert float(row["running_train_loss"]) == pytest.approx(loss, rel=1e-5)
        assert float(row["running_train_accuracy"]) == pytest.approx(acc, rel=1e-5)
        assert float(row["val_loss"]) == pytest.approx(ev.loss, rel=1e-5)
        assert float(row["val_accuracy"]) == pytest.approx(ev.accuracy, rel=1e-5)
        assert 0 < float(row["seconds"]) < 60
    losses = [float(r["running_train_loss"]) for r in rows]
    assert len(set(losses)) == 3 and all(np.isfinite(losses))  # lr 1e-3: the loss moves every epoch
    best = max(range(3), key=lambda i: (evaluated[i].accuracy, -i))  # the first of equal bests
    m = json.loads((result.run_dir / "metrics.json").read_text())
    assert m["best_epoch"] == best + 1 and m["chosen"] == f"epoch {best + 1}" and m["epochs"] == 3
    assert m["val_accuracy"] == pytest.approx(evaluated[best].accuracy)


def test_a_head_runs_files_name_the_run_its_cache_and_its_settings(cache, tmp_path):
    cfg = FitConfig(cache=str(cache), out=str(tmp_path / "r"), epochs=1, seed=5, **SMALL)
    result = fit(cfg)
    meta = load_cache(str(cache), required=["test"])[0]
    config = json.loads((result.run_dir / "config.json").read_text())
    m = json.loads((result.run_dir / "metrics.json").read_text())
    head, info = load_checkpoint(result.run_dir)
    assert config["device"] == m["device"] == "cpu"
    assert config["fit"] == json.loads(json.dumps(cfg.to_dict()))
    expected = HeadConfig(embed_dim=16, num_classes=len(meta.labels), heads=2, ffn_hidden=16).to_dict()
    assert head.cfg.to_dict() == expected and config["head"] == json.loads(json.dumps(expected))
    assert config["torch"] == torch.__version__ and config["cache_content"] == content_identity(str(cache))
    assert config["val_source"] == m["val_source"] == "10% of train, stratified, seed 5"
    assert config["extraction"] == json.loads(json.dumps(meta.record()))
    assert config["run_id"] and config["run_id"] == m["run_id"] == info["run_id"]
    assert (m["variant"], m["seed"], m["cache"], m["cache_content"]) == ("sgmft", 5, str(cache), config["cache_content"])
    assert m["cache_fingerprint"] == config["cache_fingerprint"] == info["cache_fingerprint"] == meta.fingerprint
    assert m["encoder"] == config["encoder"] == info["encoder"] == meta.model
    data = prepare(load_cached_splits(str(cache)), 0.1, 5)
    assert (m["train_size"], m["val_size"], m["test_size"]) == (len(data.train), len(data.val), 30)
    assert m["train_size"] + m["val_size"] == 100 and 8 <= m["val_size"] <= 12
    assert info["labels"] == list(meta.labels) == m["labels"]
    assert (info["variant"], info["seed"], info["epoch"]) == ("sgmft", 5, 1)
    assert info["fit_config"] == cfg.to_dict() and info["extraction"] == meta.record()
    guidance = json.loads((result.run_dir / "guidance.json").read_text())
    assert guidance["split"] == "val"


def test_a_probe_runs_files_record_its_settings_and_choice(cache, tmp_path):
    result = fit(FitConfig(cache=str(cache), out=str(tmp_path / "p"), variant="logreg-probe", quiet=True))
    config = json.loads((result.run_dir / "config.json").read_text())
    assert config["probe"] == dict(model="sklearn LogisticRegression (lbfgs, multinomial, L2)",
                                   C_grid=[0.01, 0.1, 1.0, 10.0, 100.0, 1000.0, 10000.0], features="[text; image]",
                                   input_norm="l2", chosen_by="validation accuracy")
    m = result.metrics
    assert m["chosen"] == f"C={m['probe_C']:g}" and m["best_epoch"] is None and m["epochs"] == 0
    assert 0 < m["seconds"] < 600  # the grid search's own time
    assert config["device"] == m["device"] == "cpu"
    assert m == json.loads((result.run_dir / "metrics.json").read_text())  # what fit returns is what it wrote
    with np.load(result.run_dir / "probe.npz") as z:
        assert str(z["run_id"]) == config["run_id"] == m["run_id"]
        assert str(z["cache_fingerprint"]) == config["cache_fingerprint"]
        assert float(z["C"]) == m["probe_C"] and str(z["input_norm"]) == "l2"


def test_scorers_refuse_weights_of_another_run_or_cache(cache, tmp_path):
    result = fit(FitConfig(cache=str(cache), out=str(tmp_path / "h"), epochs=1, **SMALL))
    load_scorer(result.run_dir, torch.device("cpu"))  # its own weights: accepted
    head, info = load_checkpoint(result.run_dir)
    run = RunDir(result.run_dir)
    for key, value, message in (("run_id", "someone-else", "another run"),
                                ("cache_fingerprint", "0" * 16, "cache fingerprint")):
        save_checkpoint(run.checkpoint, head, head.state_dict(), {**info, key: value})
        with pytest.raises(SgmftError, match=message):
            load_scorer(result.run_dir, torch.device("cpu"))

    probe = fit(FitConfig(cache=str(cache), out=str(tmp_path / "p"), variant="logreg-probe", quiet=True)).run_dir
    load_scorer(probe, torch.device("cpu"))
    weights = probe / "probe.npz"
    with np.load(weights) as z:
        saved = {k: z[k] for k in z.files}
    for key, value, message in (("run_id", "someone-else", "another run"),
                                ("cache_fingerprint", "0" * 16, "cache fingerprint")):
        np.savez(weights, **{**saved, key: value})
        with pytest.raises(SgmftError, match=message):
            load_scorer(probe, torch.device("cpu"))


def test_a_streamed_subset_keeps_each_rows_label(tmp_path):
    path = tmp_path / "s.h5"
    make_synthetic_cache(path, sizes={"train": 50, "test": 10}, dim=8)
    whole = load_cached_splits(str(path)).train
    split = StreamedSplit.open(str(path), "train", budget=1, chunk_rows=8)
    picked = [41, 3, 17, 8, 29]
    sub = split.subset(picked)
    assert sub.rows.tolist() == sorted(picked) and sub.label.tolist() == whole.label[sorted(picked)].tolist()
    loaded = sub.load()
    assert loaded.ids == [whole.ids[i] for i in sorted(picked)] and loaded.label.tolist() == sub.label.tolist()
    torch.testing.assert_close(loaded.text, whole.text[sorted(picked)])
    inner = sub.subset([4, 0])  # positions in the subset
    assert inner.rows.tolist() == [3, 41] and inner.label.tolist() == whole.label[[3, 41]].tolist()


def test_a_sweep_streams_under_its_memory_budget(cache, tmp_path):
    """--max-memory reaches the sweep's one load: below the train split's size the head streams and the
    in-memory probe is refused with the budget named, while the sweep goes on."""
    base = FitConfig(cache=str(cache), out=str(tmp_path / "sw"), epochs=1, max_memory="1KiB", **SMALL)
    runs = sweep(base, ["logreg-probe", "clip-only"], [0])
    assert runs[0].metrics is None and runs[0].error == (
        f"SgmftError: {cache}: the train split is larger than --max-memory 1KiB; the logreg-probe needs it in "
        "memory: raise --max-memory or train a head variant")
    assert runs[1].metrics is not None and runs[1].error is None
    config = json.loads((runs[1].run_dir / "config.json").read_text())
    assert config["fit"]["max_memory"] == "1KiB"


def first_epoch(cache, out, monkeypatch, variant: str, **kw) -> tuple[list[int], list[dict]]:
    """The train rows (positions in the cache's train split) of every batch of a fit's first epoch (seed 7), in
    order, and the options of each train_epoch call (one per streamed group)."""
    seen, options = [], []

    def train_epoch(head, opt, data, batch_size, generator, on_step=lambda *a: None, **k):
        options.append(k)
        hook = head.register_forward_pre_hook(lambda m, args: seen.append(args[0].clone()))
        try:
            return REAL_TRAIN_EPOCH(head, opt, data, batch_size, generator, on_step, **k)
        finally:
            hook.remove()

    monkeypatch.setattr(head_trainer_module, "train_epoch", train_epoch)
    fit(FitConfig(cache=str(cache), out=str(out), variant=variant, epochs=1, **{"seed": 7, **SMALL, **kw}))
    return positions(cache, [row for batch in seen for row in batch]), options


def positions(cache, rows) -> list[int]:
    """Positions in the cache's train split of feature rows (a split's text rows, or a head's text inputs)."""
    rows = rows.text if hasattr(rows, "text") else rows
    where = {tuple(row.tolist()): i for i, row in enumerate(load_cached_splits(str(cache)).train.text.float())}
    return [where[tuple(row.float().tolist())] for row in rows]


def test_every_variant_of_a_seed_trains_on_the_same_batch_order(cache, tmp_path, monkeypatch):
    """The order comes from the run's own generator, not from the global stream the head's initialisation
    draws from (which differs between variants): an ablation compares heads, not batch orders."""
    orders = [first_epoch(cache, tmp_path / v, monkeypatch, v)[0] for v in ("sgmft", "clip-only", "sim-only")]
    train = prepare(load_cached_splits(str(cache)), 0.1, 7).train
    assert sorted(orders[0]) == sorted(positions(cache, train)) and orders[0] == orders[1] == orders[2]


def test_the_head_scorer_reads_as_many_images_as_the_run_did(tmp_path):
    """An image-set run with --max-images 1 is scored on the first image, as its own test split was."""
    from pipeline.metrics import softmax
    from pipeline.synthetic import make_image_set_cache

    cache = tmp_path / "sets.h5"
    make_image_set_cache(cache, sizes={"train": 60, "test": 20}, dim=16, images=3)
    result = fit(FitConfig(cache=str(cache), out=str(tmp_path / "r"), variant="sgmft-images", epochs=1,
                           max_images=1, **SMALL))
    test = load_cached_splits(str(cache)).test
    logits = load_scorer(result.run_dir, torch.device("cpu"))(test)
    np.testing.assert_allclose(softmax(logits), RunDir(result.run_dir).read_outputs()["probs"], atol=1e-5)
    head, info = load_checkpoint(result.run_dir)  # a checkpoint without fit_config (older runs): the default, 9
    del info["fit_config"]
    save_checkpoint(RunDir(result.run_dir).checkpoint, head, head.state_dict(), info)
    nine = load_scorer(result.run_dir, torch.device("cpu"))(test)
    assert np.abs(nine - logits).max() > 1e-4  # three images read now: other logits


def test_older_checkpoints_and_probe_files_without_ids_are_checked_on_what_they_hold(cache, tmp_path):
    run = fit(FitConfig(cache=str(cache), out=str(tmp_path / "h"), epochs=1, **SMALL)).run_dir
    head, info = load_checkpoint(run)
    save_checkpoint(RunDir(run).checkpoint, head, head.state_dict(), {k: v for k, v in info.items() if k != "run_id"})
    load_scorer(run, torch.device("cpu"))  # no run_id (before runs had one): labels and fingerprint still agree
    save_checkpoint(RunDir(run).checkpoint, head, head.state_dict(),
                    {k: v for k, v in info.items() if k not in ("run_id", "cache_fingerprint", "labels")})
    with pytest.raises(SgmftError, match=r"checkpoint.pt has labels \[\], config.json \["):
        load_scorer(run, torch.device("cpu"))
    save_checkpoint(RunDir(run).checkpoint, head, head.state_dict(),
                    {k: v for k, v in info.items() if k not in ("run_id", "cache_fingerprint")})
    with pytest.raises(SgmftError, match=r"checkpoint.pt is for cache fingerprint , config.json "):
        load_scorer(run, torch.device("cpu"))

    probe = fit(FitConfig(cache=str(cache), out=str(tmp_path / "p"), variant="logreg-probe", quiet=True)).run_dir
    weights = probe / "probe.npz"
    with np.load(weights) as z:
        saved = {k: z[k] for k in z.files if k not in ("run_id", "cache_fingerprint")}
    np.savez(weights, **saved)
    load_scorer(probe, torch.device("cpu"))  # an older probe file: the run's own config gives the fingerprint
    weights.unlink()
    with pytest.raises(SgmftError, match=rf"^{probe}: a logreg-probe run without probe.npz; fit it again$"):
        load_scorer(probe, torch.device("cpu"))


def test_a_streamed_epoch_is_ordered_by_its_generator_and_keeps_groups_within_the_budget(tmp_path):
    path = tmp_path / "s.h5"
    make_synthetic_cache(path, sizes={"train": 70, "test": 10}, dim=8)
    split = StreamedSplit.open(str(path), "train", budget=1, chunk_rows=8)  # below one chunk: a chunk per group
    assert split.group_rows == 8

    def order(global_seed: int) -> list[list[str]]:
        torch.manual_seed(global_seed)  # the global stream must not matter
        return [g.ids for g in split.groups(torch.Generator().manual_seed(3))]

    first = order(0)
    assert first == order(1) and [len(g) for g in first].count(8) == 8 and sum(map(len, first)) == 70
    assert max(len(g) for g in first) <= split.group_rows
    one = split.subset([5])
    assert streamed_epoch(one, lambda d: (2.5, 1.0), torch.Generator()) == (2.5, 1.0)  # one row: its figures
    calls = []
    generator = torch.Generator().manual_seed(3)
    streamed_epoch(split, lambda d: calls.append(d.ids) or (1.0, 1.0), generator)
    assert calls == first  # the epoch reads its groups in its generator's order


def test_guidance_is_measured_on_the_val_posts_that_have_both_modalities(tmp_path):
    from pipeline.synthetic import make_missing_image_cache

    cache = tmp_path / "missing.h5"
    make_missing_image_cache(cache, sizes={"train": 80, "val": 40, "test": 20}, dim=16, no_image=0.5)
    result = fit(FitConfig(cache=str(cache), out=str(tmp_path / "r"), epochs=1, **SMALL))
    val = load_cached_splits(str(cache)).val
    both = int((val.has_text & val.has_image).sum())
    assert 0 < both < len(val)
    guidance = json.loads((result.run_dir / "guidance.json").read_text())
    assert guidance["posts"] == both and guidance["split"] == "val"


def test_a_head_the_cache_width_cannot_hold_is_refused_naming_the_flags(tmp_path):
    from pipeline.fit.head_trainer import head_config

    with pytest.raises(SgmftError, match=r"^--heads 3 does not divide the cache's embed_dim 16$"):
        head_config(FitConfig(heads=3), 16, 4)
    with pytest.raises(SgmftError, match=r"^head config ffn_hidden=70000: must be an integer in 1\.\.65536 "
                                         r"\(--heads, --ffn-hidden and the cache's embed_dim set it\)$"):
        head_config(FitConfig(ffn_hidden=70000), 16, 4)


def test_a_streamed_fit_keeps_the_runs_order_and_its_modality_dropout(tmp_path, monkeypatch):
    """With 47 chunks, two variants agree on the order of an epoch only if it comes from the run's generator."""
    cache = tmp_path / "big.h5"
    make_synthetic_cache(cache, sizes={"train": 3000, "test": 30}, dim=4, seed=3)
    opened = StreamedSplit.open.__func__
    monkeypatch.setattr(StreamedSplit, "open", classmethod(lambda cls, *a, **k: opened(cls, *a, chunk_rows=64)))
    streamed = dict(max_memory="1KiB", modality_dropout=0.5)  # below a chunk's 2 KiB: a group per chunk
    a, options = first_epoch(cache, tmp_path / "a", monkeypatch, "sgmft", **streamed)
    b, _ = first_epoch(cache, tmp_path / "b", monkeypatch, "clip-only", **streamed)
    assert len(options) >= 2 and all(k["modality_dropout"] == 0.5 for k in options)  # every group of the epoch
    assert len(options) > 40 and a == b and len(a) == len(set(a)) > 2600  # one order, each row once
    assert sorted(a) != a != first_epoch(cache, tmp_path / "c", monkeypatch, "sgmft", seed=8, **streamed)[0]


def test_a_streamed_train_split_is_checked_like_one_in_memory(tmp_path):
    """Streaming (--max-memory below the train split) keeps fit's one-line refusals: a cache without /train,
    a /train of one class named by its label."""
    meta = CacheMeta("synthetic", 4, ("a", "b"), "fp")
    rng = np.random.default_rng(0)

    def cache(name: str, splits: dict[str, list[int]]) -> str:
        path = tmp_path / name
        for split, labels in splits.items():
            write_split(path, split, meta, ids=[f"{split}{i}" for i in range(len(labels))],
                        text=rng.standard_normal((len(labels), 4)), image=rng.standard_normal((len(labels), 4)),
                        label=labels)
        return str(path)

    for memory in ("40%", "1KiB"):
        no_train = cache(f"no-train-{memory}.h5", {"test": [0, 1]})
        with pytest.raises(SgmftError, match=r"split 'train' is missing \(splits present: test\)"):
            fit(FitConfig(cache=no_train, out=str(tmp_path / "r"), max_memory=memory, **SMALL))
        one_class = cache(f"one-class-{memory}.h5", {"train": [1] * 60, "test": [0, 1]})
        with pytest.raises(SgmftError, match=r"/train has labelled rows of 1 class\(es\) \['b'\]; fit needs"):
            fit(FitConfig(cache=one_class, out=str(tmp_path / "r"), max_memory=memory, **SMALL))


def test_fit_refuses_splits_loaded_from_another_cache(cache, tmp_path):
    other = tmp_path / "other.h5"
    make_synthetic_cache(other, sizes={"train": 40, "test": 10}, dim=16)
    with pytest.raises(ValueError, match=f"splits loaded from {other} given for a run on {cache}"):
        fit(FitConfig(cache=str(cache), out=str(tmp_path / "r"), epochs=1, **SMALL), load_cached_splits(str(other)))


def test_runs_without_out_go_beside_the_cache_named_by_variant_and_seed(tmp_path):
    local = tmp_path / "data" / "feats.h5"
    local.parent.mkdir()
    make_synthetic_cache(local, sizes={"train": 40, "test": 10}, dim=16)
    result = fit(FitConfig(cache=str(local), variant="clip-only", epochs=1, seed=4, **SMALL))
    assert result.run_dir.parent == local.parent / "runs" and result.run_dir.name.endswith("-clip-only-seed4")
    m = json.loads((result.run_dir / "metrics.json").read_text())
    assert m["placeholder_encoder"] is True  # synthetic features: the numbers say nothing about SG-MFT


def test_test_classes_train_never_shows_are_named_in_the_warning(tmp_path):
    from pipeline.fit.run import UnseenClassWarning

    path = tmp_path / "c.h5"
    meta = CacheMeta("synthetic", 4, ("a", "b", "c", "d"), "fp")
    rng = np.random.default_rng(0)
    for split, labels in (("train", [0, 1] * 15), ("test", [0, 1, 2, 3])):
        write_split(path, split, meta, ids=[f"{split}{i}" for i in range(len(labels))],
                    text=rng.standard_normal((len(labels), 4)), image=rng.standard_normal((len(labels), 4)),
                    label=labels)
    with pytest.warns(UnseenClassWarning) as caught:
        fit(FitConfig(cache=str(path), out=str(tmp_path / "r"), epochs=1, heads=2, ffn_hidden=4, quiet=True))
    assert str(caught[0].message) == (f"{path}: test posts of class(es) c, d have no training post, so no head can "
                                      "predict them and every one counts as an error")


def test_feature_bytes_count_the_image_sets_of_a_version_2_split(tmp_path):
    from pipeline.fit.stream import feature_bytes
    from pipeline.synthetic import make_image_set_cache

    path = tmp_path / "sets.h5"
    make_image_set_cache(path, sizes={"train": 10, "test": 5}, dim=8, images=3)
    split = load_cached_splits(str(path)).train
    assert feature_bytes(str(path), "train") == 4 * 8 * (10 + 10 + len(split.images))  # text, image, images
