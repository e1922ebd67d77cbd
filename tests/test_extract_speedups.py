"""What makes extraction fast changes no vector: texts batched by length across loader batches (textqueue.py),
recent identical image files not decoded again, a picture shared within a batch carried once, decoding
workers that leave a CPU encoder its cores."""
from __future__ import annotations

import functools
from dataclasses import replace

import pytest
import torch

from extract_fixtures import post_rows, write_manifest
from sgmft_cache import CacheMeta, CacheWriter, load_split
from pipeline.extract import read_manifest
from pipeline.extract.config import default_workers
from pipeline.extract.encoders import load_encoder, text_batches, token_ids
from pipeline.extract.engine import EngineSettings, extract_rows
from pipeline.extract.reader import Item, Prepare, collate
from pipeline.extract.textprep import TextCleaner, load_stopwords
from pipeline.extract.textqueue import BUCKET_TOKENS


def test_texts_go_in_batches_of_one_length_bucket_and_give_the_same_vectors(tmp_path):
    rows = post_rows(tmp_path, 22)
    for k, row in enumerate(rows):
        row["text"] = "学校 食堂 " * (1 + 7 * (k % 3)) + str(k)  # lengths mixed within every loader batch
    posts = read_manifest(write_manifest(tmp_path / "p.csv", rows)).posts
    encoder = load_encoder("tiny", device="cpu")
    calls = []
    encode_texts = encoder.encode_texts
    encoder.encode_texts = lambda tokens, batch: calls.append([len(t) for t in tokens]) or encode_texts(tokens, batch)
    prepare = Prepare(clean=TextCleaner(load_stopwords()), tokenize=functools.partial(token_ids, context_length=52),
                      transform=encoder.transform(), max_pixels=10**8, empty_text="skip")
    meta = CacheMeta(model="tiny", embed_dim=encoder.embed_dim, labels=(), fingerprint="t")
    labels = {p.id: -1 for p in posts}
    for window, cache in ((10, "windowed.h5"), (1, "per-batch.h5")):
        calls.clear()
        writer = CacheWriter(tmp_path / cache, "train", meta)
        settings = EngineSettings(batch_size=4, workers=0, threads=0, text_window=window, quiet=True)
        stats = extract_rows(posts, labels, writer, encoder, prepare, settings)
        writer.commit(order=[p.id for p in posts])
        assert stats.written == 22 and stats.texts_encoded == 22 and sum(map(len, calls)) == 22
        if window == 10:
            full = [c for c in calls if len(c) == 4]
            assert len(full) >= 3  # most texts went in full batches of one length bucket ...
            assert all(max(c) // BUCKET_TOKENS == min(c) // BUCKET_TOKENS for c in full)
            assert len(calls) - len(full) <= 2  # ... the rest when a window of 12 rows and the last were written
    windowed, per_batch = load_split(tmp_path / "windowed.h5", "train"), load_split(tmp_path / "per-batch.h5", "train")
    assert windowed.ids == per_batch.ids == [p.id for p in posts]
    torch.testing.assert_close(windowed.text, per_batch.text, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(windowed.image, per_batch.image, rtol=1e-5, atol=1e-6)


def test_an_image_file_identical_to_a_recent_one_is_not_decoded_again(tmp_path, monkeypatch):
    rows = post_rows(tmp_path, 2)
    (tmp_path / "copy.jpg").write_bytes((tmp_path / rows[0]["image"]).read_bytes())
    prepare = Prepare(clean=str, tokenize=lambda t: [101, 102], transform=lambda rgb: torch.zeros(3, 2, 2),
                      max_pixels=10**8, empty_text="encode")
    first, key = prepare.pixels(str(tmp_path / rows[0]["image"]))
    monkeypatch.setattr("pipeline.extract.reader.decode_rgb", decoded_again)
    again, same_key = prepare.pixels(str(tmp_path / "copy.jpg"))  # other name, same bytes
    assert again is first and same_key == key
    with pytest.raises(RuntimeError, match="decoded again"):
        prepare.pixels(str(tmp_path / rows[1]["image"]))  # other bytes: decoded


def decoded_again(*args):
    raise RuntimeError("decoded again")


@pytest.mark.parametrize("cores, device, workers", [(2, "cpu", 0), (16, "cpu", 2), (2, "cuda", 1), (16, "cuda", 8)])
def test_default_workers_leave_a_cpu_encoder_nearly_all_cores(monkeypatch, cores, device, workers):
    monkeypatch.setattr("os.cpu_count", lambda: cores)
    monkeypatch.delenv("LOCAL_WORLD_SIZE", raising=False)
    assert default_workers(device) == workers
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "2")  # torchrun --nproc-per-node 2: half the cores each
    assert default_workers(device) == (cores // 2 // 8 if device == "cpu" else max(1, min(8, cores // 2 - 1)))


def test_text_batches_sort_by_length_and_keep_to_the_budgets():
    lengths = [52, 7, 30, 7, 12, 52, 30, 9]
    batches = text_batches(lengths, batch_size=3, max_tokens=64)
    assert sorted(i for b in batches for i in b) == list(range(8))
    assert [lengths[i] for b in batches for i in b] == sorted(lengths)
    assert all(len(b) <= 3 and (len(b) == 1 or len(b) * max(lengths[i] for i in b) <= 64) for b in batches)
    assert [len(b) for b in text_batches(lengths, batch_size=3)] == [3, 3, 2]  # no token budget: by count only


def test_a_batch_carries_each_distinct_image_once_and_every_post_gets_its_own(tmp_path):
    pictures = [torch.full((3, 2, 2), float(k)) for k in range(3)]
    items = [Item(f"p{k}", "t", [101, 102], [f"key{k % 3}"], [pictures[k % 3]], None, 0.0) for k in range(7)]
    items[4] = replace(items[4], image_keys=[], pixels=None, reason="missing image file: x.jpg")  # carries nothing
    items[5] = replace(items[5], image_keys=["key2", "key0"], pixels=[pictures[2], pictures[0]])  # several images
    batch = collate(items)
    assert batch.pixels.shape[0] == 3 and batch.rows == {"key0": 0, "key1": 1, "key2": 2}
    assert all(torch.equal(batch.pixels[batch.rows[key]], pictures[int(key[-1])]) for it in items for key in it.image_keys)
    assert all(it.pixels is None for it in batch.items) and [it.id for it in batch.items] == [f"p{k}" for k in range(7)]

    rows = post_rows(tmp_path, 9)
    for k, row in enumerate(rows):
        row["image"] = rows[k // 2 % 2 * 2]["image"]  # a a b b a a ...: two pictures shared by reposts
    posts = read_manifest(write_manifest(tmp_path / "p.csv", rows)).posts
    encoder = load_encoder("tiny", device="cpu")
    prepare = Prepare(clean=TextCleaner(load_stopwords()), tokenize=functools.partial(token_ids, context_length=52),
                      transform=encoder.transform(), max_pixels=10**8, empty_text="skip")
    writer = CacheWriter(tmp_path / "f.h5", "train", CacheMeta(model="tiny", embed_dim=encoder.embed_dim, labels=(),
                                                                 fingerprint="t"))
    settings = EngineSettings(batch_size=4, workers=1, threads=0, text_window=512, quiet=True)
    extract_rows(posts, {p.id: -1 for p in posts}, writer, encoder, prepare, settings)
    writer.commit(order=[p.id for p in posts])
    stored = load_split(tmp_path / "f.h5", "train").image
    direct = [encoder.encode_images(prepare.pixels(posts[k].image)[0][None])[0] for k in (0, 2)]
    for k in range(9):
        torch.testing.assert_close(stored[k], direct[k // 2 % 2], rtol=1e-5, atol=1e-6)
