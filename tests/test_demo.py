"""`sgmft demo` end to end at a reduced size: generated posts -> extract -> fit -> report -> predict, offline."""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

import cli
from sgmft_cache import load_split
from pipeline.demo import choose_encoder, write_sample
from pipeline.demo.sample import CLASSES


@pytest.fixture(autouse=True)
def no_downloaded_weights(tmp_path, monkeypatch):
    """The demo looks for ViT-H-14's weights in cn_clip's folder; here there are none, as on a fresh machine."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))


def test_demo_runs_end_to_end_and_says_the_encoder_is_tiny(tmp_path, one_thread):
    out = tmp_path / "demo"
    result = CliRunner().invoke(cli.app, ["demo", "--out", str(out), "--posts", "84", "--epochs", "2",
                                          "--variants", "sgmft,image-only,logreg-probe", "-q"])
    assert result.exit_code == 0, result.output
    assert "encoder: tiny" in result.output and "NOTHING about SG-MFT" in result.output
    assert "not the paper's 30 at 1e-5" in result.output
    for name in ("posts/posts.csv", "feats.h5", "report/report.md", "new_posts/posts.predictions.csv"):
        assert (out / name).is_file(), name
    assert {p.name for p in (out / "runs").iterdir()} == {"sgmft-seed0", "image-only-seed0", "logreg-probe-seed0"}
    report = (out / "report" / "report.md").read_text(encoding="utf-8")
    assert "PLACEHOLDER ENCODER" in report and "`tiny`" in report and "About this demo" in report
    assert report.index("PLACEHOLDER ENCODER") < report.index("About this demo") < report.index("## Cache")
    assert list((out / "report").rglob("*.png"))
    predictions = pd.read_csv(out / "new_posts" / "posts.predictions.csv", dtype=str, keep_default_na=False)
    assert len(predictions) == 15 and (predictions["skipped_reason"] != "").sum() == 1  # new-nothing: no usable part
    by_id = predictions.set_index("id")
    assert by_id.loc["new-missing-image", "modalities"] == "text" and by_id.loc["new-emoji-only", "modalities"] == "image"
    cache = load_split(out / "feats.h5", "train")  # the generated posts hold every kind of post
    assert (~cache.has_image).any() and (~cache.has_text).any() and (cache.image_counts > 1).any()
    assert set(predictions.loc[predictions["pred"] != "", "pred"]) <= set(CLASSES)
    metrics = json.loads((out / "runs" / "sgmft-seed0" / "metrics.json").read_text())
    assert metrics["encoder"] == "tiny" and metrics["test_size"] == 14 and metrics["epochs"] == 2


def test_generated_sample_is_deterministic_balanced_and_noisy(tmp_path):
    a, b = write_sample(tmp_path / "a", 28, seed=5), write_sample(tmp_path / "b", 28, seed=5)
    assert a.read_bytes() == b.read_bytes()
    posts = pd.read_csv(a, dtype=str, keep_default_na=False)
    pictures = [p for one, many in zip(posts["image"], posts["images"]) for p in {one, *many.split("|")} if p]
    assert all((a.parent / p).read_bytes() == (b.parent / p).read_bytes() for p in pictures)
    assert posts["label"].value_counts().to_dict() == {c: 4 for c in CLASSES}
    other = pd.read_csv(write_sample(tmp_path / "c", 28, seed=6))
    assert other["text"].tolist() != posts["text"].tolist()
    big = pd.read_csv(write_sample(tmp_path / "d", 280, seed=0), dtype=str, keep_default_na=False)
    noise = "".join(big["text"])
    assert all(mark in noise for mark in ("http://t.cn/", "@", "[", "//@", "#"))
    several = big["images"].str.count(r"\|") + 1
    assert 0.05 < (big["image"] == "").mean() < 0.2 and 0.1 < (big["images"] != "").mean() < 0.3
    assert several[big["images"] != ""].between(2, 3).all()


def test_auto_encoder_uses_vit_h_only_when_its_weights_are_already_there(tmp_path):
    assert choose_encoder("auto", str(tmp_path))[0] == "tiny"
    (tmp_path / "clip_cn_vit-h-14.pt").write_bytes(b"stand-in")
    model, why = choose_encoder("auto", str(tmp_path))
    assert model == "ViT-H-14" and str(tmp_path) in why
    assert choose_encoder("tiny", str(tmp_path))[0] == "tiny"


def test_demo_needs_enough_posts(tmp_path):
    result = CliRunner().invoke(cli.app, ["demo", "--out", str(tmp_path / "d"), "--posts", "10"])
    assert result.exit_code == 2 and not Path(tmp_path / "d").exists()
