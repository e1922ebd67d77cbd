"""`sgmft predict`: a run directory alone (its cache deleted) predicts new posts exactly as the head scores
its own test split; bad rows are reported, not fatal; a different fingerprint or a non-run is refused."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pytest
import torch
from typer.testing import CliRunner

import cli
from extract_fixtures import broken_images, write_manifest
from sgmft_cache import load_split
from pipeline.extract import ExtractConfig, extract
from pipeline.extract.textprep import TextCleaner, load_stopwords
from pipeline.fit import FitConfig, fit, load_checkpoint
from pipeline.predict import PredictConfig, load_trained_run, predict
from pipeline.demo import write_sample
from pipeline.synthetic import make_synthetic_cache

QUICK = dict(epochs=2, lr=1e-3, heads=4, ffn_hidden=32, quiet=True)


@pytest.fixture(scope="module")
def trained(tmp_path_factory, one_thread):
    """A tiny-encoder cache, a head run and a probe run fitted on it — then the cache is deleted."""
    folder = tmp_path_factory.mktemp("predict")
    manifest = write_sample(folder, 56, seed=1)  # the demo's posts: classes a probe can tell apart
    cache = folder / "feats.h5"
    extract(ExtractConfig(manifest=str(manifest), cache=str(cache), model="tiny", workers=0, quiet=True))
    runs = {v: fit(FitConfig(cache=str(cache), variant=v, out=str(folder / v), **QUICK)).run_dir
            for v in ("sgmft", "logreg-probe")}
    test_ids = set(load_split(cache, "test").ids)
    cache.unlink()  # predict must need the run directory only
    rows = pd.read_csv(manifest, dtype=str, keep_default_na=False).to_dict("records")
    return dict(folder=folder, runs=runs, test_rows=[r for r in rows if r["id"] in test_ids])


def run_predict(trained, variant: str, rows: list[dict], name: str, **kw):
    data = write_manifest(trained["folder"] / f"{name}.csv", rows)  # images are relative to this folder
    cfg = PredictConfig(run=str(trained["runs"][variant]), data=str(data), workers=0, quiet=True, **kw)
    return predict(cfg)


@pytest.mark.parametrize("variant", ["sgmft", "logreg-probe"])
def test_predictions_equal_what_the_run_gave_its_own_test_posts(trained, variant):
    summary = run_predict(trained, variant, trained["test_rows"], f"again-{variant}")
    saved = np.load(trained["runs"][variant] / "test_outputs.npz")
    table = summary.table.set_index("id").loc[saved["ids"].tolist()]
    probs = table[[f"p_{c}" for c in saved["labels"]]].to_numpy()
    np.testing.assert_allclose(probs, saved["probs"], atol=2e-6)  # same features, same head, CSV rounding
    assert table["pred"].tolist() == [saved["labels"][p] for p in saved["pred"]]


def test_csv_has_ids_in_order_one_probability_column_per_class(trained):
    rows = trained["test_rows"][::-1]
    summary = run_predict(trained, "sgmft", rows, "csv")
    table = pd.read_csv(summary.out, dtype={"id": str}, keep_default_na=False)
    labels = json.loads((trained["runs"]["sgmft"] / "config.json").read_text())["labels"]
    assert list(table.columns) == ["id", "pred", *[f"p_{c}" for c in labels], "modalities", "images_used",
                                   "dropped_images", "skipped_reason"]
    assert table["id"].tolist() == [r["id"] for r in rows]
    probs = table[[f"p_{c}" for c in labels]].to_numpy(dtype=float)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)
    assert table["pred"].tolist() == [labels[k] for k in probs.argmax(axis=1)]
    assert (table["skipped_reason"] == "").all()


def test_head_applied_to_the_predict_cache_gives_the_csv(trained):
    summary = run_predict(trained, "sgmft", trained["test_rows"], "direct")
    head, info = load_checkpoint(trained["runs"]["sgmft"])
    data = load_split(summary.cache, "test")
    with torch.no_grad():
        expected = torch.softmax(head(data.text, data.image, data.has_text, data.has_image), 1).numpy()
    got = summary.table.set_index("id").loc[data.ids, [f"p_{c}" for c in info["labels"]]].to_numpy()
    np.testing.assert_allclose(got, expected, atol=1e-6)
    again = run_predict(trained, "sgmft", trained["test_rows"], "direct")  # resumable: nothing encoded twice
    assert again.extraction.stats.written == 0 and again.extraction.already == len(trained["test_rows"])


def test_every_post_with_a_usable_modality_is_predicted_and_says_from_what(trained):
    folder = trained["folder"]
    bad = broken_images(folder / "bad")
    clean = TextCleaner(load_stopwords())
    plain = [r for r in trained["test_rows"] if r["image"] and clean(r["text"])]  # text and one picture
    good = [r["image"] for r in plain[:3]]
    rows = plain[:2] + [
        dict(id="gone", text="在家做饭", image=str(bad["missing.jpg"].relative_to(folder))),
        dict(id="half", text="在家做饭", image=str(bad["truncated.jpg"].relative_to(folder))),
        dict(id="emoji", text="😀👍 [哈哈] @someone", image=good[0]),
        dict(id="several", text="在家做饭", image="", images="|".join([good[1], str(bad["empty.png"].relative_to(folder)),
                                                                       good[2]])),
        dict(id="nothing", text="😀👍 [哈哈]", image=str(bad["missing.jpg"].relative_to(folder))),
    ]
    rows = [{"images": "", **{k: v for k, v in r.items() if k != "label"}} for r in rows]
    data = write_manifest(folder / "bad.csv", rows)
    result = CliRunner().invoke(cli.app, ["predict", "--run", str(trained["runs"]["sgmft"]), "--data", str(data),
                                          "--workers", "0", "-q"])
    assert result.exit_code == 0, result.output
    assert "predicted 6 of 7 posts" in result.output and "skipped 1: 1 missing image file" in result.output
    assert "predicted from: 3 text+image, 2 text, 1 image (1 with several images)" in result.output
    table = pd.read_csv(folder / "bad.predictions.csv", dtype=str, keep_default_na=False).set_index("id")
    assert table.loc["nothing", "skipped_reason"].startswith("missing image file")
    assert "empty text after cleaning" in table.loc["nothing", "skipped_reason"]
    assert table.loc["nothing", "pred"] == "" and (table.drop(index="nothing")["pred"] != "").all()
    assert table["modalities"].to_dict() == {rows[0]["id"]: "text+image", rows[1]["id"]: "text+image", "gone": "text",
                                             "half": "text", "emoji": "image", "several": "text+image", "nothing": ""}
    assert table["images_used"].tolist() == ["1", "1", "0", "0", "1", "2", "0"]
    assert table.loc["gone", "dropped_images"].startswith("missing image file")
    assert table.loc["several", "dropped_images"].startswith("empty image file")
    probs = table.drop(index="nothing")[[c for c in table.columns if c.startswith("p_")]].to_numpy(dtype=float)
    assert np.isfinite(probs).all()
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)


def test_a_cache_path_that_is_no_feature_cache_is_refused_not_deleted(trained, tmp_path):
    precious = tmp_path / "notes.h5"
    precious.write_text("not a cache", encoding="utf-8")
    data = write_manifest(trained["folder"] / "precious.csv", trained["test_rows"][:2])
    result = CliRunner().invoke(cli.app, ["predict", "--run", str(trained["runs"]["sgmft"]), "--data", str(data),
                                          "--cache", str(precious), "--workers", "0", "-q"])
    assert result.exit_code == 2 and "not an HDF5 file" in result.stderr, result.output
    assert precious.read_text(encoding="utf-8") == "not a cache"
    stale = tmp_path / "stale.h5"  # a feature cache of other settings is derived data: replaced
    make_synthetic_cache(stale, sizes={"test": 7}, dim=16)
    summary = run_predict(trained, "sgmft", trained["test_rows"][:2], "stale", cache=str(stale))
    assert summary.replaced_cache and "replaced" in summary.text() and len(load_split(stale, "test")) == 2


def test_other_stop_words_change_the_fingerprint_and_are_refused(trained, tmp_path):
    words = tmp_path / "stop.txt"
    words.write_text("的\n了\n", encoding="utf-8")
    data = write_manifest(trained["folder"] / "stop.csv", trained["test_rows"])
    result = CliRunner().invoke(cli.app, ["predict", "--run", str(trained["runs"]["sgmft"]), "--data", str(data),
                                          "--stopwords", str(words), "--out", str(tmp_path / "p.csv"), "-q"])
    assert result.exit_code == 2, result.output
    err = result.stderr.strip()
    assert len(err.splitlines()) == 1 and err.startswith("error: ") and "refusing to predict" in err, err
    assert "text.stopwords_count" in err and "--stopwords" in err
    assert not (tmp_path / "p.csv").exists() and not (tmp_path / "p.cache.h5").exists()


def not_runs(tmp_path, trained) -> dict:
    """Folders that are not usable runs, each with the words its error must contain."""
    make_synthetic_cache(tmp_path / "syn.h5", sizes={"train": 42, "test": 14}, dim=16)
    synthetic = fit(FitConfig(cache=str(tmp_path / "syn.h5"), out=str(tmp_path / "syn-run"), **QUICK)).run_dir
    unfinished = shutil.copytree(trained["runs"]["sgmft"], tmp_path / "unfinished")
    (unfinished / "metrics.json").unlink()
    old = shutil.copytree(trained["runs"]["sgmft"], tmp_path / "old")
    config = json.loads((old / "config.json").read_text())
    del config["extraction"]
    (old / "config.json").write_text(json.dumps(config))
    (tmp_path / "empty").mkdir()
    return {tmp_path / "nope": "no such run directory", tmp_path / "empty": "not a run directory",
            unfinished: "unfinished run", synthetic: "not made by `sgmft extract`",
            old: "does not record how its features were made"}


def test_what_is_not_a_usable_run_gets_one_clear_line(trained, tmp_path):
    data = write_manifest(trained["folder"] / "any.csv", trained["test_rows"][:2])
    for run, words in not_runs(tmp_path, trained).items():
        result = CliRunner().invoke(cli.app, ["predict", "--run", str(run), "--data", str(data), "-q"])
        err = result.stderr.strip()
        assert result.exit_code == 2 and len(err.splitlines()) == 1 and words in err, (run, result.output)


def test_two_class_probe_gives_sklearns_probabilities(tmp_path):
    """sklearn keeps one score for two classes; predict must turn it into the same two probabilities."""
    cache = tmp_path / "two.h5"
    make_synthetic_cache(cache, sizes={"train": 60, "test": 20}, dim=8, classes=("home", "work"), noise=1.5)
    run = fit(FitConfig(cache=str(cache), variant="logreg-probe", out=str(tmp_path / "probe"), quiet=True)).run_dir
    saved = np.load(run / "test_outputs.npz")
    probs = load_trained_run(run).probabilities(load_split(cache, "test"))
    assert probs.shape == (20, 2) and 0.05 < probs[:, 0].mean() < 0.95
    np.testing.assert_allclose(probs, saved["probs"], atol=1e-6)
