"""The smaller hostile cases: unseen test classes are warned about, hand-made caches with wrong types and absurd
checkpoint head configs are one-line errors, huge features normalise safely, spreadsheet formulas in ids are
defused, and a manifest that is not UTF-8 is told to be saved as UTF-8."""
from __future__ import annotations

import csv

import h5py
import numpy as np
import pandas as pd
import pytest
import torch
from typer.testing import CliRunner

import cli
from sgmft_cache import CacheError, CacheMeta, SgmftError, validate, write_split
from pipeline.extract import read_manifest
from pipeline.fit import FitConfig, fit, load_checkpoint
from pipeline.fit.run import UnseenClassWarning
from pipeline.head import HeadConfig, SGMFTHead
from pipeline.predict.run import write_predictions

META = CacheMeta(model="my-encoder", embed_dim=8, labels=("home", "work", "cinema"), fingerprint="fp")
QUICK = dict(epochs=1, heads=2, ffn_hidden=8, quiet=True)


def _cache(path, train_labels, test_ids=None):
    rng = np.random.default_rng(0)
    n = len(train_labels)
    write_split(path, "train", META, ids=[f"t{i}" for i in range(n)], text=rng.standard_normal((n, 8)),
                image=rng.standard_normal((n, 8)), label=train_labels)
    test_ids = test_ids or [f"s{i}" for i in range(6)]
    write_split(path, "test", META, ids=test_ids, text=rng.standard_normal((len(test_ids), 8)),
                image=rng.standard_normal((len(test_ids), 8)), label=[i % 3 for i in range(len(test_ids))])
    return path


def test_test_classes_unseen_in_train_are_warned_about(tmp_path):
    cache = _cache(tmp_path / "c.h5", [i % 2 for i in range(40)])  # no cinema in train
    with pytest.warns(UnseenClassWarning, match="class\\(es\\) cinema have no training post"):
        fit(FitConfig(cache=str(cache), out=str(tmp_path / "run"), **QUICK))
    result = CliRunner().invoke(cli.app, ["fit", "--cache", str(cache), "--out", str(tmp_path / "r2"), "--epochs", "1",
                                          "--heads", "2", "--ffn-hidden", "8", "-q"])
    assert result.exit_code == 0, result.output
    assert any(line.startswith("warning: ") and "cinema" in line for line in result.stderr.splitlines())


def test_hand_made_caches_with_wrong_types_are_one_line_errors(tmp_path):
    for name, bad in (("embed_dim", lambda f: f.attrs.__setitem__("embed_dim", "8")),
                      ("id", lambda f: (f["train"].__delitem__("id"), f["train"].create_dataset("id", data=np.arange(40))))):
        cache = _cache(tmp_path / f"{name}.h5", [i % 3 for i in range(40)])
        with h5py.File(cache, "a") as f:
            bad(f)
        with pytest.raises(CacheError) as refused:
            validate(cache)
        assert name in str(refused.value) and "\n" not in str(refused.value)
        result = CliRunner().invoke(cli.app, ["fit", "--cache", str(cache), "--out", str(tmp_path / name)])
        assert result.exit_code == 2 and len(result.stderr.strip().splitlines()) == 1, result.output


@pytest.mark.parametrize("absurd", [dict(embed_dim=10**9), dict(ffn_hidden=-4), dict(embed_dim=60_000, ffn_hidden=60_000),
                                    dict(classifier_hidden=["x"]), dict(dropout=3.0)])
def test_absurd_checkpoint_head_configs_are_refused_before_allocation(tmp_path, absurd):
    head = SGMFTHead(HeadConfig(embed_dim=8, heads=2, ffn_hidden=8, classifier_hidden=(4,)))
    cfg = {**head.cfg.to_dict(), **absurd}
    path = tmp_path / "checkpoint.pt"
    torch.save({"head_config": cfg, "state_dict": head.state_dict()}, path)
    with pytest.raises(SgmftError, match="not a checkpoint sgmft wrote .*head config"):
        load_checkpoint(path)


def test_features_near_float32_max_normalise_like_ordinary_ones():
    torch.manual_seed(0)
    head = SGMFTHead(HeadConfig(embed_dim=8, heads=2, ffn_hidden=8, classifier_hidden=(4,))).eval()
    t, v = torch.randn(5, 8), torch.randn(5, 8)
    with torch.no_grad():
        plain, huge = head(t, v), head(t * 1e37, v * 1e37)  # ‖x‖² overflows float32 here
    assert torch.isfinite(huge).all()
    torch.testing.assert_close(huge, plain, rtol=1e-5, atol=1e-5)


def test_ids_that_look_like_formulas_are_defused_in_both_csvs(tmp_path):
    ids = ["=1+1", "+cmd", "-2", "@SUM(A1)", "plain", "\tx"]
    cache = _cache(tmp_path / "c.h5", [i % 3 for i in range(40)], test_ids=ids)
    run = fit(FitConfig(cache=str(cache), out=str(tmp_path / "run"), **QUICK)).run_dir
    with open(run / "predictions.csv", newline="", encoding="utf-8") as f:
        written = [row["id"] for row in csv.DictReader(f)]
    assert written == ["'=1+1", "'+cmd", "'-2", "'@SUM(A1)", "plain", "'\tx"]
    table = pd.DataFrame({"id": ids, "pred": ["home"] * 6, "skipped_reason": [""] * 6})
    write_predictions(tmp_path / "p.csv", table)
    assert pd.read_csv(tmp_path / "p.csv", dtype=str)["id"].tolist()[:5] == ["'=1+1", "'+cmd", "'-2", "'@SUM(A1)", "plain"]
    assert table["id"].tolist() == ids  # the table itself keeps the real ids


@pytest.mark.parametrize("encoding", ["gbk", "utf-16"])
def test_a_manifest_that_is_not_utf8_is_told_to_be_saved_as_utf8(tmp_path, encoding):
    path = tmp_path / "posts.csv"
    path.write_text("id,text,image,label\n1,今天在学校的食堂吃饭,a.jpg,school\n", encoding=encoding)
    with pytest.raises(SgmftError, match="save it as UTF-8") as refused:
        read_manifest(str(path))
    assert "\n" not in str(refused.value)
