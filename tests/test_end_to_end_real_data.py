"""Real posts through the whole pipeline: Shanghai check-in texts paired with scene photos of the same class,
tiny encoder -> extract -> fit (several variants) -> report -> predict (skipped where ../shared/data is absent)."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

import cli
from extract_fixtures import write_manifest

CHECKIN_CLASS = {"住宅": "home", "教育": "school", "办公": "work", "购物": "shopping_center", "旅游": "travel",
                 "餐饮": "restaurant"}
PER_CLASS, NEW_PER_CLASS = 30, 4  # posts per class to train and test on; fresh posts per class to predict
VARIANTS = ("sgmft", "clip-only", "text-only", "concat-mlp", "logreg-probe")


@pytest.fixture(autouse=True)
def private_hash_memo(tmp_path, monkeypatch):
    monkeypatch.setenv("SGMFT_HOME", str(tmp_path / "sgmft-home"))


def checkin_posts(shared_data, start: int, count: int) -> list[dict]:
    """Check-in texts start..start+count of each class, each with a scene photo of its class (absolute path)."""
    scenes = pd.read_csv(shared_data / "scenes" / "labels.csv")
    rows = []
    for name, label in CHECKIN_CLASS.items():
        texts = pd.read_csv(shared_data / "checkin_poi" / "shanghai" / f"{name}.csv", dtype=str)["text"]
        photos = scenes[scenes.our_class == label].file.tolist()
        rows += [dict(id=f"{label}-{k}", text=texts[k], label=label,
                      image=str(shared_data / "scenes" / photos[k % len(photos)])) for k in range(start, start + count)]
    return rows


def sgmft(*args: str) -> str:
    result = CliRunner().invoke(cli.app, list(args))
    assert result.exit_code == 0, result.output
    return result.output


def test_checkins_with_scene_photos_extract_fit_report_predict(shared_data, tmp_path, one_thread):
    manifest = write_manifest(tmp_path / "checkins.csv", checkin_posts(shared_data, 0, PER_CLASS))
    cache, runs = str(tmp_path / "feats.h5"), tmp_path / "runs"
    sgmft("extract", "--manifest", str(manifest), "--cache", cache, "--model", "tiny", "--workers", "1", "-q")
    out = sgmft("fit", "--cache", cache, "--variants", ",".join(VARIANTS), "--epochs", "3", "--lr", "1e-3",
                "--ffn-hidden", "64", "--out", str(runs), "-q")
    assert out.count("test accuracy") == len(VARIANTS)
    sgmft("report", str(runs), "--out", str(tmp_path / "report"))
    report = (tmp_path / "report" / "report.md").read_text(encoding="utf-8")
    assert "PLACEHOLDER ENCODER" in report and "`tiny`" in report
    assert all(f"| {v} |" in report for v in VARIANTS)

    fresh = checkin_posts(shared_data, PER_CLASS, NEW_PER_CLASS)
    fresh.append(dict(id="no-photo", text=fresh[0]["text"], label="", image=str(tmp_path / "deleted.jpg")))
    data = write_manifest(tmp_path / "fresh.csv", fresh)
    labels = json.loads((runs / "sgmft-seed0" / "config.json").read_text())["labels"]
    assert labels == sorted(CHECKIN_CLASS.values())
    for variant in ("sgmft", "logreg-probe"):
        out = sgmft("predict", "--run", str(runs / f"{variant}-seed0"), "--data", str(data),
                    "--out", str(tmp_path / f"{variant}.csv"), "--workers", "1", "-q")
        assert "placeholder encoder `tiny`" in out and "text" in out.split("predicted from:")[1]
        table = pd.read_csv(tmp_path / f"{variant}.csv", dtype={"id": str}, keep_default_na=False)
        assert table["id"].tolist() == [r["id"] for r in fresh]
        done = table[table["pred"] != ""]
        assert len(done) == len(fresh)  # a text that cleans to nothing keeps its photo; the missing photo its text
        no_photo = table.set_index("id").loc["no-photo"]
        assert no_photo["modalities"] == "text" and no_photo["dropped_images"].startswith("missing image file")
        probs = done[[f"p_{c}" for c in labels]].to_numpy(dtype=float)
        np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)
        assert set(done["pred"]) <= set(labels)
