"""A run directory is never a mix of two runs: a reused --out is refused (or emptied with --overwrite), and
predict and report refuse a folder whose metrics.json or checkpoint is not from the run its config.json describes."""
from __future__ import annotations

import json
import shutil

import pytest
from typer.testing import CliRunner

import cli
from sgmft_cache import SgmftError
from pipeline.fit import FitConfig, fit, load_checkpoint
from pipeline.fit import run as fit_run
from pipeline.predict import load_trained_run
from pipeline.report.runs import load_runs
from pipeline.synthetic import make_synthetic_cache

QUICK = dict(epochs=1, lr=1e-3, heads=4, ffn_hidden=16, quiet=True)


@pytest.fixture(scope="module")
def caches(tmp_path_factory):
    folder = tmp_path_factory.mktemp("rundir")
    a, b = folder / "a.h5", folder / "b.h5"
    make_synthetic_cache(a, sizes={"train": 60, "test": 20}, dim=16, seed=1)
    make_synthetic_cache(b, sizes={"train": 60, "test": 20}, dim=16, seed=2, classes=("x", "y", "z", "w"))
    return a, b


def _fit(cache, out, **kw):
    return fit(FitConfig(cache=str(cache), out=str(out), **{**QUICK, **kw}))


def _json(path):
    return json.loads(path.read_text())


def test_a_reused_out_is_refused_in_one_line_and_the_old_run_is_kept(caches, tmp_path, one_thread):
    run = _fit(caches[0], tmp_path / "R").run_dir
    before = {p.name: p.read_bytes() for p in run.iterdir()}
    result = CliRunner().invoke(cli.app, ["fit", "--cache", str(caches[1]), "--out", str(run), "--epochs", "1",
                                          "--heads", "4", "--ffn-hidden", "16", "-q"])
    assert result.exit_code == 2, result.output
    assert len(result.stderr.strip().splitlines()) == 1
    assert "already holds a run" in result.stderr and "--overwrite" in result.stderr
    assert {p.name: p.read_bytes() for p in run.iterdir()} == before


def test_overwrite_empties_the_run_files_and_every_file_carries_one_run_id(caches, tmp_path, one_thread):
    out = tmp_path / "R"
    _fit(caches[0], out)
    (out / "notes.txt").write_text("mine")
    _fit(caches[1], out, overwrite=True, variant="text-only")
    config, metrics = _json(out / "config.json"), _json(out / "metrics.json")
    _, info = load_checkpoint(out)
    assert config["run_id"] and config["run_id"] == metrics["run_id"] == info["run_id"]
    assert config["labels"] == metrics["labels"] == ["x", "y", "z", "w"]
    assert (out / "notes.txt").read_text() == "mine"  # not a run file: left alone
    assert not (out / "guidance.json").exists() or _json(out / "guidance.json")["dim"] == 16


def test_an_overwriting_run_that_dies_leaves_no_old_result_behind(caches, tmp_path, one_thread, monkeypatch):
    out = tmp_path / "R"
    _fit(caches[0], out)

    def killed(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(fit_run, "_finish", killed)
    with pytest.raises(KeyboardInterrupt):
        _fit(caches[1], out, overwrite=True)
    assert not (out / "metrics.json").exists()
    with pytest.raises(SgmftError, match="unfinished run"):
        load_trained_run(out)
    found = load_runs([out])
    assert not found.runs and "no metrics.json" in found.skipped[0]


def test_predict_and_report_refuse_a_folder_that_mixes_two_runs(caches, tmp_path, one_thread):
    old = _fit(caches[0], tmp_path / "old").run_dir
    new = _fit(caches[1], tmp_path / "new").run_dir
    mixed = tmp_path / "mixed"
    shutil.copytree(new, mixed)
    shutil.copy(old / "checkpoint.pt", mixed / "checkpoint.pt")  # the new config beside the old head
    with pytest.raises(SgmftError, match="checkpoint.pt is from another run than config.json"):
        load_trained_run(mixed)
    shutil.copy(old / "metrics.json", mixed / "metrics.json")
    with pytest.raises(SgmftError, match="metrics.json is from another run"):
        load_trained_run(mixed)
    found = load_runs([mixed, new])
    assert [r.path for r in found.runs] == [new]
    assert "mixed" in found.skipped[0] and "metrics.json is from another run" in found.skipped[0]


def test_runs_without_run_ids_are_still_checked_by_labels_and_fingerprint(caches, tmp_path, one_thread):
    old = _fit(caches[0], tmp_path / "old").run_dir
    new = _fit(caches[1], tmp_path / "new").run_dir
    for run in (old, new):  # as written before run ids existed
        for name in ("config.json", "metrics.json"):
            d = _json(run / name)
            d.pop("run_id")
            (run / name).write_text(json.dumps(d))
    shutil.copy(old / "metrics.json", new / "metrics.json")
    found = load_runs([new])
    assert not found.runs and "labels" in found.skipped[0]
    with pytest.raises(SgmftError, match="metrics.json has labels"):
        load_trained_run(new)


def test_the_probe_checks_its_weights_file_too(caches, tmp_path):
    old = _fit(caches[0], tmp_path / "old", variant="logreg-probe").run_dir
    new = _fit(caches[1], tmp_path / "new", variant="logreg-probe").run_dir
    shutil.copy(old / "probe.npz", new / "probe.npz")
    with pytest.raises(SgmftError, match="probe.npz is from another run"):
        load_trained_run(new)
