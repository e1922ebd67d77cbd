"""`sgmft extract` end to end on a messy manifest: every row accounted for, vectors equal direct cn_clip calls,
duplicates encoded once, resume, fingerprint refusal, and the extract -> fit flow."""
from __future__ import annotations

import json
from collections import Counter
from dataclasses import replace
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
from cn_clip.clip import image_transform, tokenize
from PIL import Image
from typer.testing import CliRunner

import cli
from extract_fixtures import messy_posts, post_rows, write_manifest
from sgmft_cache import CacheError, load_skipped, load_split, validate
from pipeline.extract import ExtractConfig, extract, read_manifest
from pipeline.extract.encoders import load_encoder
from pipeline.extract.images import to_rgb
from pipeline.extract.textprep import TextCleaner, load_stopwords


@pytest.fixture(autouse=True)
def private_hash_memo(tmp_path, monkeypatch):
    monkeypatch.setenv("SGMFT_HOME", str(tmp_path / "sgmft-home"))


@pytest.fixture(scope="module")
def messy(tmp_path_factory):
    folder = tmp_path_factory.mktemp("messy")
    rows, expected = messy_posts(folder)
    manifest = write_manifest(folder / "posts.jsonl", rows)
    cfg = ExtractConfig(manifest=str(manifest), cache=str(folder / "feats.h5"), model="tiny", batch_size=8,
                        workers=1, chunk_rows=8, max_pixels=200_000, quiet=True)
    return dict(folder=folder, rows=rows, expected=expected, cfg=cfg, summary=extract(cfg))


def stored(cache, split):
    data = load_split(cache, split)
    return {i: (data.text[k], data.image[k], int(data.label[k]), data.text_clean[k], bool(data.has_text[k]))
            for k, i in enumerate(data.ids)}


def test_every_row_is_in_the_cache_or_skipped_with_its_reason(messy):
    cache, expected = messy["cfg"].cache, messy["expected"]
    have, skipped = {}, {}
    for split in ("train", "val", "test"):
        have.update(stored(cache, split))
        skipped.update(load_skipped(cache, split))
    assert not set(have) & set(skipped)
    assert set(have) | set(skipped) == set(expected)
    for id_, kind in expected.items():
        if kind is None:
            assert id_ in have, id_
        else:
            assert skipped[id_].startswith(kind), (id_, skipped[id_])
    total = sum((s.stats.skipped for s in messy["summary"].splits), start=Counter())
    assert total == Counter(k for k in expected.values() if k)  # the summary groups them by reason


def direct_cn_clip(encoder, folder: Path, rows: list[dict]) -> tuple[torch.Tensor, torch.Tensor]:
    """(text, image) features straight from cn_clip: encode_text(tokenize(T_user)), encode_image(transform(img))."""
    clean = TextCleaner(load_stopwords())
    transform = image_transform(encoder.weights.resolution)
    pictures = [Image.open(folder / r["image"]) for r in rows]
    pixels = torch.stack([transform(p if p.mode == "RGB" else to_rgb(p)) for p in pictures])  # RGB: cn_clip's path
    with torch.inference_mode():
        return (encoder.model.encode_text(tokenize([clean(r["text"]) for r in rows])),
                encoder.model.encode_image(pixels))


def test_stored_vectors_equal_direct_cn_clip_calls(messy):
    rows = {r["id"]: r for r in messy["rows"]}
    labels = validate(messy["cfg"].cache).labels
    clean = TextCleaner(load_stopwords())
    found = {}
    for split in ("train", "val", "test"):
        found.update(stored(messy["cfg"].cache, split))
    assert len(found) == sum(k is None for k in messy["expected"].values())
    text, image = direct_cn_clip(load_encoder("tiny", device="cpu"), messy["folder"], [rows[i] for i in found])
    for k, (id_, (stored_text, stored_image, label, text_clean, has_text)) in enumerate(found.items()):
        assert text_clean == clean(rows[id_]["text"]) and labels[label] == rows[id_]["label"]
        torch.testing.assert_close(stored_image, image[k], rtol=1e-4, atol=1e-5)
        assert has_text == bool(text_clean)  # emoji-only is kept with its image, its text row zeros
        torch.testing.assert_close(stored_text, text[k] if has_text else torch.zeros_like(text[k]), rtol=1e-4, atol=1e-5)


def test_identical_images_and_texts_are_encoded_once(messy):
    summary = {s.split: s.stats for s in messy["summary"].splits}
    encoded_images = sum(s.images_encoded for s in summary.values())
    encoded_texts = sum(s.texts_encoded for s in summary.values())
    written = sum(s.written for s in summary.values())
    texts = sum(s.texts_used for s in summary.values())
    assert (written - encoded_images, texts - encoded_texts) == (2, 1)  # emoji-only also reuses post-001's image
    assert summary["test"].reused == (1, 1)  # dup-image repeats a train image, dup-text a test text
    train, test = stored(messy["cfg"].cache, "train"), stored(messy["cfg"].cache, "test")
    assert torch.equal(test["dup-image"][1], train["post-000"][1])
    assert torch.equal(test["dup-text"][0], test["post-003"][0])


def test_cache_attributes_say_what_made_the_features(messy):
    meta = validate(messy["cfg"].cache)
    assert meta.model == "tiny" and meta.embed_dim == 64 and meta.labels == ("home", "school", "work")
    assert meta.provenance.encoder_note.startswith("RANDOM WEIGHTS") and meta.provenance.precision == "fp32"
    assert meta.provenance.placeholder and meta.placeholder  # random weights, said explicitly
    settings = meta.provenance.preprocessing
    assert settings["text"]["context_length"] == 52 and settings["image"]["resolution"] == 224
    assert meta.provenance.extract_config["model"] == "tiny"
    with h5py.File(messy["cfg"].cache, "r") as f:  # the attributes themselves, as outside tools read them
        assert json.loads(f.attrs["preprocessing"]) == settings and f.attrs["placeholder_weights"] == "true"
    assert load_split(messy["cfg"].cache, "train").text.dtype == torch.float32


def test_second_run_encodes_nothing_and_changes_nothing(messy):
    before = {s: stored(messy["cfg"].cache, s) for s in ("train", "val", "test")}
    again = extract(messy["cfg"])
    assert all(s.stats.written == 0 and s.already == s.in_cache for s in again.splits)
    assert sum(sum(s.stats.skipped.values()) for s in again.splits) == sum(k is not None for k in messy["expected"].values())
    for split, rows in before.items():
        now = stored(messy["cfg"].cache, split)
        assert list(now) == list(rows)
        assert all(torch.equal(now[i][0], rows[i][0]) and torch.equal(now[i][1], rows[i][1]) for i in rows)


def test_resumed_partial_run_equals_one_full_run(tmp_path):
    rows = post_rows(tmp_path, 24, split=True)
    full = ExtractConfig(manifest=str(write_manifest(tmp_path / "all.csv", rows)), cache=str(tmp_path / "full.h5"),
                         model="tiny", batch_size=4, workers=0, chunk_rows=4, quiet=True)
    extract(full)
    part = replace(full, manifest=str(write_manifest(tmp_path / "part.csv", rows[5:17])), cache=str(tmp_path / "r.h5"))
    extract(part)
    resumed = extract(replace(full, cache=part.cache, batch_size=7, workers=1))  # other batching, same features
    assert sum(s.already for s in resumed.splits) == 12
    for split in ("train", "val", "test"):
        a, b = stored(full.cache, split), stored(part.cache, split)
        assert list(a) == list(b)  # manifest order, not arrival order
        for i in a:
            torch.testing.assert_close(a[i][0], b[i][0], rtol=1e-4, atol=1e-5)
            torch.testing.assert_close(a[i][1], b[i][1], rtol=1e-4, atol=1e-5)


def test_other_fingerprint_is_refused_unless_overwrite(tmp_path):
    manifest = write_manifest(tmp_path / "p.csv", post_rows(tmp_path, 8))
    cfg = ExtractConfig(manifest=str(manifest), cache=str(tmp_path / "f.h5"), model="tiny", workers=0, quiet=True)
    first = extract(cfg)
    same = extract(replace(cfg, batch_size=3, workers=1))
    assert same.fingerprint == first.fingerprint  # batching and workers are not part of it
    for other in (dict(weights_seed=1), dict(context_length=32), dict(stopwords=str(_words(tmp_path)))):
        with pytest.raises(CacheError, match=r"holds features made differently.*--overwrite"):
            extract(replace(cfg, **other))
    redone = extract(replace(cfg, weights_seed=1, overwrite=True))
    assert redone.fingerprint != first.fingerprint and validate(cfg.cache).fingerprint == redone.fingerprint
    assert sum(s.stats.written for s in redone.splits) == 8


def _words(folder: Path) -> Path:
    (folder / "stop.txt").write_text("的\n在\n", encoding="utf-8")
    return folder / "stop.txt"


def test_one_split_at_a_time_leaves_the_others_alone(tmp_path):
    manifest = write_manifest(tmp_path / "p.csv", post_rows(tmp_path, 12, split=True))
    cfg = ExtractConfig(manifest=str(manifest), cache=str(tmp_path / "f.h5"), model="tiny", workers=0, quiet=True)
    extract(replace(cfg, split="train"))
    assert [s for s in ("train", "val", "test") if _has(cfg.cache, s)] == ["train"]
    train = stored(cfg.cache, "train")
    extract(replace(cfg, split="test"))
    assert [s for s in ("train", "val", "test") if _has(cfg.cache, s)] == ["train", "test"]
    assert all(torch.equal(stored(cfg.cache, "train")[i][0], train[i][0]) for i in train)


def test_another_split_assignment_is_refused_before_the_model_loads(tmp_path, monkeypatch):
    manifest = write_manifest(tmp_path / "p.csv", post_rows(tmp_path, 20))  # no split column: a seeded split
    cfg = ExtractConfig(manifest=str(manifest), cache=str(tmp_path / "f.h5"), model="tiny", workers=0, quiet=True)
    extract(cfg)
    before = {s: stored(cfg.cache, s) for s in ("train", "test")}
    from pipeline.extract import encoders

    def no_model(*args, **kwargs):
        raise AssertionError("the encoders were loaded")

    monkeypatch.setattr(encoders, "build_encoder", no_model)
    with pytest.raises(CacheError, match=r"id\(s\) are in both /(train|test) and /(train|test).*--seed"):
        extract(replace(cfg, seed=1))  # the same posts, drawn into train and test otherwise
    assert all(stored(cfg.cache, s).keys() == before[s].keys() for s in before)  # nothing written
    monkeypatch.undo()
    again = extract(replace(cfg, seed=0))  # the same assignment again: nothing to do, no complaint
    assert sum(s.stats.written for s in again.splits) == 0
    extract(replace(cfg, seed=1, overwrite=True))  # what the message offers: the cache made anew
    assert set(stored(cfg.cache, "test")) == {p.id for p in read_manifest(manifest, seed=1).split("test")}


def _has(cache, split) -> bool:
    try:
        load_split(cache, split)
        return True
    except CacheError:
        return False


def test_empty_text_can_be_encoded_instead_of_skipped(tmp_path):
    rows = post_rows(tmp_path, 3, split=True)
    rows[0]["text"] = "😀😀 [哈哈]"
    cfg = ExtractConfig(manifest=str(write_manifest(tmp_path / "p.csv", rows)), cache=str(tmp_path / "f.h5"),
                        model="tiny", workers=0, quiet=True, empty_text="encode")
    extract(cfg)
    train = stored(cfg.cache, "train")
    assert train["post-000"][3] == "" and list(train) == ["post-000", "post-001"]


def test_real_architecture_at_random_weights_end_to_end(tmp_path):
    rows = post_rows(tmp_path, 4, split=True)[1:]  # train, val, test
    cfg = ExtractConfig(manifest=str(write_manifest(tmp_path / "p.parquet", rows)), cache=str(tmp_path / "f.h5"),
                        model="RN50", random_weights=True, workers=1, batch_size=4, quiet=True)
    summary = extract(cfg)
    assert validate(cfg.cache).model == "RN50" and validate(cfg.cache).embed_dim == 1024
    assert "RANDOM WEIGHTS" in validate(cfg.cache).provenance.encoder_note and "RANDOM WEIGHTS" in summary.text()
    text, image = direct_cn_clip(load_encoder("RN50", random_weights=True, device="cpu"), tmp_path, rows)
    for k, row in enumerate(rows):
        stored_text, stored_image, *_ = stored(cfg.cache, row["split"])[row["id"]]
        torch.testing.assert_close(stored_image, image[k], rtol=1e-4, atol=1e-4)
        torch.testing.assert_close(stored_text, text[k], rtol=1e-4, atol=1e-4)


def test_cli_extract_then_fit(tmp_path):
    manifest = write_manifest(tmp_path / "posts.csv", post_rows(tmp_path, 40))
    cache = str(tmp_path / "feats.h5")
    runner = CliRunner()
    result = runner.invoke(cli.app, ["extract", "--manifest", str(manifest), "--cache", cache, "--model", "tiny",
                                     "--workers", "1"])
    assert result.exit_code == 0, result.output
    assert "train: 31 posts: 31 encoded now" in result.output and "RANDOM WEIGHTS" in result.output
    assert "time: waiting for decode" in result.output  # the phases; a progress bar only on a terminal (test_progress)
    assert "\r" not in result.output and "post/s" not in result.output
    result = runner.invoke(cli.app, ["fit", "--cache", cache, "--epochs", "2", "--out", str(tmp_path / "run"), "-q"])
    assert result.exit_code == 0, result.output
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["encoder"] == "tiny" and metrics["encoder_note"].startswith("RANDOM WEIGHTS")
    assert np.isfinite(metrics["test_accuracy"])


def test_load_skipped_lists_skips_with_reasons(tmp_path):
    from sgmft_cache import CacheMeta, CacheWriter

    meta = CacheMeta(model="m", embed_dim=2, labels=("a",), fingerprint="f")
    writer = CacheWriter(tmp_path / "c.h5", "train", meta)
    writer.add(["x"], np.ones((1, 2)), np.ones((1, 2)), [0])
    writer.skip(["y", "z"], ["missing image file: y.jpg", "empty text after cleaning: ''"])
    writer.commit()
    assert load_skipped(tmp_path / "c.h5", "train") == {"y": "missing image file: y.jpg",
                                                        "z": "empty text after cleaning: ''"}
    with pytest.raises(CacheError, match="split 'test' is missing"):
        load_skipped(tmp_path / "c.h5", "test")
