"""Properties of the cache library (hypothesis): any ids, any split layout, any chunking -> the same rows back, in order."""
from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sgmft_cache import (CacheMeta, CacheWriter, Provenance, load_dropped_images, load_rows, load_skipped, load_split,
                         positions_of, staging_dir, write_split)
from sgmft_cache.reader import list_splits

D = 4
META = CacheMeta(model="tiny", embed_dim=D, labels=("a", "b", "c"), fingerprint="fp", provenance=Provenance())
EXAMPLES = int(os.environ.get("SGMFT_PROPERTY_EXAMPLES", "25"))  # benchmarks/mutation.py asks for fewer per mutant
FAST = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# any text a post id or a cleaned text can hold, odd characters included (but no NUL: HDF5 strings end there)
TEXT = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=12)
IDS = st.lists(TEXT, unique=True, max_size=30)  # the empty id included


def features(n: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((n, D)).astype(np.float32), rng.standard_normal((n, D)).astype(np.float32),
            rng.integers(-1, 3, n))


class Folder:
    """A fresh folder per hypothesis example (pytest's tmp_path is one per test)."""

    def __enter__(self) -> Path:
        self.path = Path(tempfile.mkdtemp(prefix="cache-prop-"))
        return self.path / "feats.h5"

    def __exit__(self, *exc) -> None:
        shutil.rmtree(self.path, ignore_errors=True)


@st.composite
def batches(draw):
    """ids and their texts, cut into add() calls of any sizes, with skips interleaved, and a chunk size."""
    ids = draw(IDS)
    texts = draw(st.lists(TEXT, min_size=len(ids), max_size=len(ids)))
    cuts = sorted(draw(st.lists(st.integers(0, len(ids)), max_size=5)))
    bounds = [0, *cuts, len(ids)]
    skips = draw(st.lists(TEXT.filter(bool).map(lambda s: "skip:" + s), unique=True, max_size=4))
    return ids, texts, list(zip(bounds[:-1], bounds[1:])), skips, draw(st.integers(1, 8))


@FAST
@given(batches(), st.integers(0, 2**16))
def test_writer_gives_back_every_row_in_the_order_added(case, seed):
    ids, texts, parts, skips, chunk_rows = case
    text, image, label = features(len(ids), seed)
    with Folder() as path:
        w = CacheWriter(path, "train", META, chunk_rows=chunk_rows)
        for i, (a, b) in enumerate(parts):
            w.add(ids[a:b], text[a:b], image[a:b], label[a:b], texts[a:b])
            if i < len(skips):
                w.skip([skips[i]], [f"reason {i}: ünreadable"])
        w.skip(skips[len(parts):], [f"late {s}" for s in skips[len(parts):]])
        summary = w.commit()
        data = load_split(path, "train")
        assert data.ids == ids and summary.rows == len(ids) and summary.skipped == len(skips)
        np.testing.assert_array_equal(data.text.numpy(), text)
        np.testing.assert_array_equal(data.image.numpy(), image)
        assert data.label.tolist() == label.tolist() and data.text_clean == texts
        assert set(load_skipped(path, "train")) == set(skips)
        assert not staging_dir(path).exists()


@FAST
@given(IDS, st.integers(1, 6), st.integers(0, 30), st.randoms(use_true_random=False))
def test_a_writer_that_died_resumes_and_commit_follows_the_order_given(ids, chunk_rows, died_after, rnd):
    text, image, label = features(len(ids), 0)
    died_after = min(died_after, len(ids))
    with Folder() as path:
        w = CacheWriter(path, "val", META, chunk_rows=chunk_rows)
        for i in range(died_after):
            w.add(ids[i:i + 1], text[i:i + 1], image[i:i + 1], label[i:i + 1])
        flushed = (died_after // chunk_rows) * chunk_rows  # rows on disk when the process dies unflushed
        del w
        w = CacheWriter(path, "val", META, chunk_rows=chunk_rows)
        assert w.done_ids() == set(ids[:flushed])
        w.add(ids[flushed:], text[flushed:], image[flushed:], label[flushed:])
        order = list(ids)
        rnd.shuffle(order)
        w.commit(order=order)
        data = load_split(path, "val")
        assert data.ids == order
        where = {k: i for i, k in enumerate(ids)}
        np.testing.assert_array_equal(data.text.numpy(), text[[where[k] for k in order]])
        assert data.label.tolist() == label[[where[k] for k in order]].tolist()


@FAST
@given(IDS, st.lists(st.sampled_from(["train", "val", "test"]), min_size=30, max_size=30), st.booleans())
def test_any_split_layout_keeps_each_splits_rows_in_order(ids, where, half):
    text, image, label = features(len(ids), 1)
    layout = {s: [i for i in range(len(ids)) if where[i] == s] for s in ("train", "val", "test")}
    layout = {s: rows for s, rows in layout.items() if rows}
    with Folder() as path:
        for split, rows in layout.items():
            write_split(path, split, META, ids=[ids[i] for i in rows], text=text[rows], image=image[rows],
                        label=label[rows], dtype="float16" if half else "float32")
        if layout:
            assert sorted(list_splits(path)) == sorted(layout)
        for split, rows in layout.items():
            data = load_split(path, split)
            assert data.ids == [ids[i] for i in rows]
            expected = text[rows].astype(np.float16).astype(np.float32) if half else text[rows]
            np.testing.assert_array_equal(data.text.numpy(), expected)
            assert data.label.tolist() == label[rows].tolist()


@FAST
@given(IDS, st.integers(1, 5))
def test_a_second_write_of_a_split_appends_and_the_first_row_of_an_id_wins(ids, chunk_rows):
    text, image, label = features(len(ids), 2)
    half = len(ids) // 2
    with Folder() as path:
        write_split(path, "test", META, ids=ids[:half], text=text[:half], image=image[:half], label=label[:half])
        again = ids[:half][:2]  # ids already written come back with other features
        w = CacheWriter(path, "test", META, chunk_rows=chunk_rows)
        w.add(ids[half:] + again, np.concatenate([text[half:], np.zeros((len(again), D), np.float32)]),
              np.concatenate([image[half:], np.zeros((len(again), D), np.float32)]),
              np.concatenate([label[half:], np.zeros(len(again), np.int64)]))
        w.commit()
        data = load_split(path, "test")
        assert data.ids == ids
        np.testing.assert_array_equal(data.text.numpy(), text)
        assert data.label.tolist() == label.tolist()


@settings(max_examples=min(EXAMPLES, 10), deadline=None)
@given(TEXT, TEXT)
def test_an_id_with_a_nul_is_refused_never_stored_cut_short(before, after):
    import pytest

    with Folder() as path, pytest.raises(ValueError):
        write_split(path, "train", META, ids=[before + "\x00" + after], text=np.ones((1, D)), image=np.ones((1, D)),
                    label=[0])


@st.composite
def shaped_posts(draw):
    """Posts of any shape (0-3 images, with or without a text, some pictures dropped), written in any number of
    commits of any chunk size, and any increasing subset of their positions."""
    n = draw(st.integers(0, 14))
    counts = draw(st.lists(st.integers(0, 3), min_size=n, max_size=n))
    has_text = [draw(st.booleans()) or c == 0 for c in counts]  # a post has a text or an image
    dropped = draw(st.lists(st.sampled_from(["", "", "1: b.jpg: unreadable"]), min_size=n, max_size=n))
    cuts = sorted(draw(st.lists(st.integers(0, n), max_size=3)))
    pick = sorted(draw(st.sets(st.integers(0, max(n - 1, 0)), max_size=n)) if n else [])
    return counts, has_text, dropped, list(zip([0, *cuts], [*cuts, n])), pick, draw(st.integers(1, 5))


@FAST
@given(shaped_posts(), st.integers(0, 2**16))
def test_load_rows_is_the_loaded_split_at_those_positions(case, seed):
    counts, has_text, dropped, parts, pick, chunk_rows = case
    n = len(counts)
    rng = np.random.default_rng(seed)
    ids = [f"post-{seed}-{i}" for i in range(n)]
    text = np.where(np.asarray(has_text, bool)[:, None], rng.standard_normal((n, D)), 0).astype(np.float32)
    images = rng.standard_normal((sum(counts), D)).astype(np.float32)
    offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    with Folder() as path:
        for a, b in parts:  # one commit per part: the split lies in several segments
            if a == b:
                continue
            w = CacheWriter(path, "train", META, chunk_rows=chunk_rows)
            w.add(ids[a:b], text[a:b], None, np.arange(a, b) % 3, [f"t{i}" for i in range(a, b)],
                  has_text=has_text[a:b], images=images[offsets[a]:offsets[b]],
                  image_offsets=offsets[a:b + 1] - offsets[a], dropped_images=dropped[a:b])
            w.commit()
        if not n:
            return
        whole = load_split(path, "train")
        got, want = load_rows(path, "train", np.asarray(pick, np.int64)), whole.subset(pick)
        assert got.ids == want.ids == [ids[i] for i in pick] and got.text_clean == want.text_clean
        for name in ("text", "image", "label", "has_text", "has_image", "images", "image_offsets"):
            assert torch.equal(getattr(got, name), getattr(want, name)), name
        shuffled = [ids[i] for i in pick][::-1] + ["not-a-post"]
        assert positions_of(path, "train", shuffled).tolist() == pick
        assert load_dropped_images(path, "train") == {ids[i]: d for i, d in enumerate(dropped) if d}


@FAST
@given(st.integers(1, 12), st.integers(1, 5), st.data())
def test_load_rows_of_a_version_1_split_keeps_its_images_as_its_image_rows(n, chunk_rows, data):
    pick = sorted(data.draw(st.sets(st.integers(0, n - 1), max_size=n)))
    text, image, label = features(n, n)
    with Folder() as path:
        write_split(path, "test", META, ids=[str(i) for i in range(n)], text=text, image=image, label=label,
                    chunk_rows=chunk_rows)
        got = load_rows(path, "test", np.asarray(pick, np.int64))
        assert got.ids == [str(i) for i in pick] and got.images is got.image
        np.testing.assert_array_equal(got.image.numpy(), image[pick])
        np.testing.assert_array_equal(got.text.numpy(), text[pick])
        assert got.image_offsets.tolist() == list(range(len(pick) + 1)) and bool(got.has_image.all())
        assert got.label.tolist() == label[pick].tolist() and got.text_clean == [""] * len(pick)
