"""Stage one on real posts from ../shared/data (skipped where that folder is absent)."""
from __future__ import annotations

import json

import pandas as pd
import pytest
import torch
from typer.testing import CliRunner

import cli
from extract_fixtures import write_manifest
from sgmft_cache import load_skipped, load_split, validate
from pipeline.extract import ExtractConfig, extract, read_manifest
from pipeline.extract.encoders import load_encoder, token_ids
from pipeline.extract.images import read_image

CHECKIN_CLASS = {"住宅": "home", "教育": "school", "办公": "work", "购物": "shopping_center", "旅游": "travel",
                 "餐饮": "restaurant"}


@pytest.fixture(autouse=True)
def private_hash_memo(tmp_path, monkeypatch):
    monkeypatch.setenv("SGMFT_HOME", str(tmp_path / "sgmft-home"))


def test_real_weibo_multimodal_posts(shared_data, tmp_path):
    manifest = shared_data / "weibo_multimodal" / "posts.csv"  # image paths relative to it; its own split column
    cfg = ExtractConfig(manifest=str(manifest), cache=str(tmp_path / "feats.h5"), model="tiny", workers=1, quiet=True)
    summary = extract(cfg)
    posts = read_manifest(manifest).posts
    have, skipped = {}, {}
    for split in {p.split for p in posts}:
        data = load_split(cfg.cache, split)
        have.update({i: (data.text[k], data.image[k], data.text_clean[k]) for k, i in enumerate(data.ids)
                     if data.has_text[k]})  # the post whose text cleans to nothing is kept image only
        skipped.update(load_skipped(cfg.cache, split))
    assert set(have) | set(skipped) <= {p.id for p in posts} and len(have) == 73 and not skipped
    assert validate(cfg.cache).labels == ()  # rumor_label is not a location label: the rows are unlabelled
    encoder = load_encoder("tiny", device="cpu")
    transform = encoder.transform()
    sample = [p for p in posts if p.id in have][::9]
    pixels = torch.stack([transform(read_image(p.image, 10**9)[0]) for p in sample])
    tokens = [token_ids(have[p.id][2], 52) for p in sample]
    torch.testing.assert_close(torch.stack([have[p.id][1] for p in sample]), encoder.encode_images(pixels),
                               rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(torch.stack([have[p.id][0] for p in sample]), encoder.encode_texts(tokens, 8),
                               rtol=1e-4, atol=1e-5)
    assert sum(s.stats.written for s in summary.splits) == len(have) + 1


def test_real_checkins_with_scene_photos_extract_then_fit(shared_data, tmp_path):
    """The stand-in SOURCES.md suggests: each check-in post paired with a scene photo of its class."""
    scenes = pd.read_csv(shared_data / "scenes" / "labels.csv")
    rows = []
    for name, label in CHECKIN_CLASS.items():
        texts = pd.read_csv(shared_data / "checkin_poi" / "shanghai" / f"{name}.csv", dtype=str)["text"].head(15)
        photos = scenes[scenes.our_class == label].file.tolist()
        rows += [dict(id=f"{label}-{k}", text=t, image=str(shared_data / "scenes" / photos[k % len(photos)]), label=label)
                 for k, t in enumerate(texts)]
    manifest = write_manifest(tmp_path / "checkins.csv", rows)
    cache = str(tmp_path / "feats.h5")
    runner = CliRunner()
    result = runner.invoke(cli.app, ["extract", "--manifest", str(manifest), "--cache", cache, "--model", "tiny",
                                     "--workers", "1", "-q"])
    assert result.exit_code == 0, result.output
    assert validate(cache).labels == tuple(sorted(CHECKIN_CLASS.values()))
    assert len(load_split(cache, "test")) + len(load_skipped(cache, "test")) == 18  # 20 % of 15 per class
    result = runner.invoke(cli.app, ["fit", "--cache", cache, "--epochs", "1", "--out", str(tmp_path / "run"), "-q"])
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "run" / "metrics.json").read_text())["test_size"] >= 15
