"""The appending cache: a commit writes only its new rows' features (earlier segments untouched), rows follow
the manifest order, shards merge by a streamed copy, and SIGKILL at any moment loses no finished chunk."""
from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

from sgmft_cache import (CacheError, CacheMeta, CacheWriter, CommitSummary, load_split, merge_caches, segment_dir,
                         split_ids, staging_dir, validate)

D = 4
META = CacheMeta(model="m", embed_dim=D, labels=("a", "b"), fingerprint="f")


def rows(ks) -> dict:
    ks = np.asarray(list(ks))
    return dict(ids=[f"p{k:04d}" for k in ks], text=np.repeat(ks[:, None], D, 1).astype(np.float32),
                image=-np.repeat(ks[:, None], D, 1).astype(np.float32), label=ks % 2)


def commit(path, ks, order=None, chunk_rows=4, dtype="float32"):
    w = CacheWriter(path, "train", META, chunk_rows=chunk_rows, dtype=dtype)
    r = rows(ks)
    w.add(r["ids"], r["text"], r["image"], r["label"])
    return w.commit(order=order)


def segment_files(path) -> dict[str, float]:
    return {p.name: p.stat().st_mtime_ns for p in segment_dir(path).iterdir()}


def test_a_commit_writes_only_its_new_rows_and_keeps_manifest_order(tmp_path):
    cache, order = tmp_path / "c.h5", [f"p{k:04d}" for k in range(30)]
    commit(cache, range(10, 20), order)
    first = segment_files(cache)
    commit(cache, [*range(0, 10), *range(20, 30), 15], order)  # 15 is already there: kept once
    after = segment_files(cache)
    assert all(after[name] == t for name, t in first.items())  # the first commit's segment was not rewritten
    (new,) = set(after) - set(first)
    with h5py.File(segment_dir(cache) / new, "r") as f:
        assert f["train/text"].shape == (20, D)  # the new rows' features only
    data = load_split(cache, "train")
    assert data.ids == order
    np.testing.assert_array_equal(data.text[:, 0].numpy(), np.arange(30))
    np.testing.assert_array_equal(data.image[:, 1].numpy(), -np.arange(30))
    assert data.label.tolist() == [k % 2 for k in range(30)]
    with h5py.File(cache, "r") as f:
        assert f["train/text"].is_virtual and f.attrs["format"] == "sgmft-cache"


def test_a_cache_name_with_percent_signs_reads_back(tmp_path):
    """HDF5 reads "%" in a virtual source's name as a pattern ("%b" a block number): names are escaped."""
    cache, order = tmp_path / "50% of posts %b.h5", [f"p{k:04d}" for k in range(12)]
    commit(cache, range(0, 6), order)
    commit(cache, range(6, 12), order)
    merge_caches([cache], tmp_path / "merged 100%.h5", order={"train": order})
    for path in (cache, tmp_path / "merged 100%.h5"):
        validate(path, require_splits=["train"])
        data = load_split(path, "train")
        assert data.ids == order
        np.testing.assert_array_equal(data.text[:, 0].numpy(), np.arange(12))


def test_ids_the_order_does_not_name_follow_it_in_the_order_they_were_added(tmp_path):
    cache = tmp_path / "c.h5"
    named = [f"p{k:04d}" for k in (7, 3, 5)]
    added = [*range(400, 100, -1), 5, 3, 7]  # 300 ids the order does not name, then the three it does
    commit(cache, added[:150], named)
    commit(cache, added[150:], named)
    assert load_split(cache, "train").ids == named + [f"p{k:04d}" for k in range(400, 100, -1)]
    with h5py.File(cache, "r") as f:  # each commit's rows were written in their final order: few runs to map
        assert len(json.loads(f["train"].attrs["segments"])["runs"]) == 3  # p0007 p0003 p0005 | 400..251 | 250..101


def test_fp16_cache_stays_fp16_and_a_float32_commit_widens_the_split(tmp_path):
    cache = tmp_path / "c.h5"
    commit(cache, range(4), dtype="float16")
    with h5py.File(cache, "r") as f:
        assert f["train/text"].dtype == np.float16
    (segment,) = segment_dir(cache).iterdir()
    with h5py.File(segment, "r") as f:  # stored as fp16 on disk too, not widened behind the mapping
        assert f["train/text"].dtype == f["train/image"].dtype == np.float16
    add_v2(tmp_path / "sets.h5", range(6), dtype="float16")
    (segment,) = segment_dir(tmp_path / "sets.h5").iterdir()
    with h5py.File(segment, "r") as f:
        assert f["train/images"].dtype == np.float16
    commit(cache, range(4, 8), dtype="float32")
    data = load_split(cache, "train")
    np.testing.assert_array_equal(data.text[:, 0].float().numpy(), np.arange(8))


def test_ids_in_another_split_are_refused_before_anything_is_written(tmp_path):
    cache = tmp_path / "c.h5"
    commit(cache, range(4))
    w = CacheWriter(cache, "test", META)
    r = rows([3, 9])
    w.add(r["ids"], r["text"], r["image"], r["label"])
    before = segment_files(cache)
    with pytest.raises(CacheError, match="p0003"):
        w.commit()
    assert segment_files(cache) == before and split_ids(cache, "test") == set()


def test_shards_merge_by_a_streamed_copy_in_manifest_order(tmp_path, monkeypatch):
    from sgmft_cache import segments

    monkeypatch.setattr(segments, "BLOCK_ROWS", 3)  # many blocks, each drawing from both shards
    a, b, order = tmp_path / "a.h5", tmp_path / "b.h5", [f"p{k:04d}" for k in range(20)]
    commit(a, range(0, 20, 2))
    commit(b, range(1, 20, 2))
    merge_caches([a, b], tmp_path / "m.h5", order={"train": order})
    a.unlink()
    (segment_dir(a) / next(segment_dir(a).iterdir()).name).unlink()  # the merge does not depend on the shards
    data = load_split(tmp_path / "m.h5", "train")
    assert data.ids == order
    np.testing.assert_array_equal(data.text[:, 0].numpy(), np.arange(20))


def test_a_cache_without_its_folder_is_refused_with_what_to_do(tmp_path):
    cache = tmp_path / "c.h5"
    commit(cache, range(4))
    (tmp_path / "moved").mkdir()
    os.replace(cache, tmp_path / "moved" / "c.h5")
    with pytest.raises(CacheError, match="copy or move both"):
        validate(tmp_path / "moved" / "c.h5")


CHILD = textwrap.dedent("""
    import sys, numpy as np
    from sgmft_cache import CacheMeta, CacheWriter
    meta = CacheMeta(model="m", embed_dim=4, labels=("a", "b"), fingerprint="f")
    start = int(sys.argv[2])
    w = CacheWriter(sys.argv[1], "train", meta, chunk_rows=8)
    for k in range(start, start + 100000, 8):
        ks = np.arange(k, k + 8)
        w.add([f"p{j:06d}" for j in ks], np.repeat(ks[:, None], 4, 1), -np.repeat(ks[:, None], 4, 1), ks % 2)
        print(k + 8, flush=True)  # every row below this is in a finished chunk
        if (k // 8) % 3 == 2:
            w.commit()
""")


def test_sigkill_at_any_moment_loses_no_finished_chunk_and_leaves_a_readable_cache(tmp_path):
    cache, script = tmp_path / "k.h5", tmp_path / "child.py"
    script.write_text(CHILD)
    rng, flushed = random.Random(0), 0
    for attempt in range(6):
        proc = subprocess.Popen([sys.executable, str(script), str(cache), str(flushed)], stdout=subprocess.PIPE,
                                text=True)
        deadline = time.monotonic() + rng.uniform(0.3, 2.5)
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if line:
                flushed = int(line)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        flushed = max([flushed] + [int(x) for x in proc.stdout.read().split()])
        if cache.exists():
            validate(cache)
            data = load_split(cache, "train")
            assert torch.isfinite(data.text).all()
        w = CacheWriter(cache, "train", META)
        done = w.done_ids()
        assert {f"p{k:06d}" for k in range(flushed)} <= done, attempt
    w.commit()
    data = load_split(cache, "train")
    assert len(data) == len(set(data.ids)) >= flushed > 0
    values = data.text[:, 0].numpy()
    np.testing.assert_array_equal(np.array([int(i[1:]) for i in data.ids]), values)
    assert not staging_dir(cache).exists()


def add_v2(path, ks, order=None, dtype="float32"):
    """Post k has k % 3 images (none: no image), image j of post k holding 100 k + j; every third post no text."""
    ks = np.asarray(list(ks))
    counts = ks % 3
    images = np.concatenate([np.full((1, D), 100 * k + j, np.float32) for k, c in zip(ks, counts) for j in range(c)]
                            or [np.zeros((0, D), np.float32)])
    offsets = np.concatenate([[0], np.cumsum(counts)])
    has_text = ks % 4 != 0
    has_text[counts == 0] = True
    r = rows(ks)
    w = CacheWriter(path, "train", META, chunk_rows=3, dtype=dtype)
    w.add(r["ids"], np.where(has_text[:, None], r["text"], 0), None, r["label"], has_text=has_text,
          has_image=counts > 0, images=images, image_offsets=offsets)
    return w.commit(order=order)


def test_post_image_sets_survive_reordering_commits_and_merges(tmp_path):
    cache, order = tmp_path / "v2.h5", [f"p{k:04d}" for k in range(24)]
    commit(cache, range(8, 16), order)  # a version-1 commit first: one image per post
    add_v2(cache, [*range(0, 8), *range(16, 24)], order)
    data = load_split(cache, "train")
    assert data.ids == order
    for k in range(24):
        got = data.images[data.image_offsets[k]:data.image_offsets[k + 1], 0].tolist()
        want = [-float(k)] if 8 <= k < 16 else [100.0 * k + j for j in range(k % 3)]
        assert got == want, k
        assert bool(data.has_image[k]) == (len(want) > 0)
    other = tmp_path / "other.h5"
    add_v2(other, range(24, 30))
    merge_caches([other, cache], tmp_path / "m.h5", order={"train": order + [f"p{k:04d}" for k in range(24, 30)]})
    merged = load_split(tmp_path / "m.h5", "train")
    assert merged.ids[:24] == order and torch.equal(merged.images[:len(data.images)], data.images)
    k = 29
    assert merged.images[merged.image_offsets[k]:merged.image_offsets[k + 1], 0].tolist() == [2900.0, 2901.0]
    with h5py.File(tmp_path / "m.h5", "r") as f:
        assert int(f.attrs["version"]) == 2 and f["train/images"].is_virtual


def in_file_copy(src: Path, dest: Path) -> None:
    """`src` as a cache written before segments (or by an outside tool, SPEC §3): every dataset stored in the
    file itself, nothing virtual, no segment folder."""
    with h5py.File(src, "r") as f, h5py.File(dest, "w") as out:
        out.attrs.update(f.attrs)

        def copy(name, obj):
            if isinstance(obj, h5py.Group):  # without the placement of its features in segment files
                out.require_group(name).attrs.update({k: v for k, v in obj.attrs.items()
                                                      if k not in ("segments", "image_segments")})
            else:
                out.create_dataset(name, data=obj[...], dtype=obj.dtype).attrs.update(obj.attrs)

        f.visititems(copy)


@pytest.mark.parametrize("shaped", ["v1", "v2"])
def test_a_cache_stored_in_its_file_takes_new_commits_by_a_hard_link_not_a_copy(tmp_path, shaped):
    made = tmp_path / "made.h5"
    (commit if shaped == "v1" else add_v2)(made, range(0, 12))
    old = tmp_path / "old.h5"
    in_file_copy(made, old)
    with h5py.File(old, "r") as f:
        assert not f["train/text"].is_virtual and not segment_dir(old).exists()
    before = load_split(old, "train")
    inode = old.stat().st_ino
    w = CacheWriter(old, "test", META, chunk_rows=4)
    r = rows(range(50, 55))
    w.add(r["ids"], r["text"], r["image"], r["label"])
    w.commit()
    (link,) = [p for p in segment_dir(old).iterdir() if p.name.startswith("linked-")]
    assert link.stat().st_ino == inode and link.stat().st_nlink == 1  # the old file itself, now only there
    after = load_split(old, "train")
    assert after.ids == before.ids and after.label.tolist() == before.label.tolist()
    for name in ("text", "image", "images", "image_offsets", "has_text", "has_image"):
        assert torch.equal(getattr(after, name), getattr(before, name)), name
    assert load_split(old, "test").ids == r["ids"]
    validate(old, require_splits=["train", "test"])
    commit_more = CacheWriter(old, "test", META, chunk_rows=4)  # a second commit links nothing again
    r2 = rows(range(60, 62))
    commit_more.add(r2["ids"], r2["text"], r2["image"], r2["label"])
    commit_more.commit()
    assert len([p for p in segment_dir(old).iterdir() if p.name.startswith("linked-")]) == 1
    assert load_split(old, "test").ids == r["ids"] + r2["ids"]
    assert torch.equal(load_split(old, "train").images, before.images)


def test_an_in_file_cache_takes_a_commit_after_one_killed_in_its_folder(tmp_path):
    made, old = tmp_path / "made.h5", tmp_path / "old.h5"
    commit(made, range(0, 8))
    in_file_copy(made, old)
    before = load_split(old, "train")
    segment_dir(old).mkdir()  # made by a commit killed before it swapped the new file in
    (segment_dir(old) / "train-0123456789ab.h5.tmp").write_bytes(b"half a segment")
    commit(old, range(20, 24))
    assert not (segment_dir(old) / "train-0123456789ab.h5.tmp").exists()  # what it left is cleared away
    assert load_split(old, "train").ids == before.ids + rows(range(20, 24))["ids"]
    assert torch.equal(load_split(old, "train").text[:8], before.text)


def test_a_filesystem_without_hard_links_gets_a_copy(tmp_path, monkeypatch):
    made, old = tmp_path / "made.h5", tmp_path / "old.h5"
    commit(made, range(0, 6))
    in_file_copy(made, old)
    before = load_split(old, "train")

    def no_links(*a, **k):
        raise OSError(95, "Operation not supported")

    monkeypatch.setattr(os, "link", no_links)
    w = CacheWriter(old, "val", META, chunk_rows=4)
    r = rows(range(50, 53))
    w.add(r["ids"], r["text"], r["image"], r["label"])
    w.commit()
    (copy,) = [p for p in segment_dir(old).iterdir() if p.name.startswith("linked-")]
    assert copy.stat().st_nlink == 1
    after = load_split(old, "train")
    assert after.ids == before.ids and torch.equal(after.text, before.text) and torch.equal(after.image, before.image)


def test_a_temporary_of_a_live_process_is_kept_and_of_a_dead_one_removed(tmp_path):
    from sgmft_cache.merge import _alive, remove_dead_temporaries

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    assert _alive(os.getpid()) and not _alive(dead.pid)
    dest = tmp_path / "my-cache-2.h5"  # dashes in the name: the pid is what follows the last one
    mine, theirs = tmp_path / f".my-cache-2.h5.tmp-{os.getpid()}", tmp_path / f".my-cache-2.h5.tmp-{dead.pid}"
    for p in (mine, theirs):
        p.write_bytes(b"half")
    remove_dead_temporaries(dest)
    assert mine.exists() and not theirs.exists()


def test_asking_whether_a_process_lives_neither_signals_it_nor_calls_another_users_dead(monkeypatch):
    from sgmft_cache import merge

    child = subprocess.Popen([sys.executable, "-c", "import signal, sys, time; signal.signal(signal.SIGHUP, "
                              "signal.SIG_DFL); print('ready', flush=True); time.sleep(60)"], stdout=subprocess.PIPE)
    try:
        assert child.stdout.readline() == b"ready\n"
        assert merge._alive(child.pid)
        time.sleep(0.2)
        assert child.poll() is None  # signal 0 only: a SIGHUP would have ended it
    finally:
        child.kill()
        child.wait()

    def not_ours(pid, sig):
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(merge.os, "kill", not_ours)
    assert merge._alive(1)  # a process we may not signal is alive: its temporary is kept


def test_an_in_file_version_1_split_takes_image_sets_and_keeps_its_image_rows(tmp_path):
    made, old = tmp_path / "made.h5", tmp_path / "old.h5"
    commit(made, range(0, 6))
    in_file_copy(made, old)
    add_v2(old, range(6, 12))  # post k: k % 3 images
    data = load_split(old, "train")
    assert data.ids == [f"p{k:04d}" for k in range(12)]
    for k in range(12):
        got = data.images[data.image_offsets[k]:data.image_offsets[k + 1], 0].tolist()
        assert got == ([-float(k)] if k < 6 else [100.0 * k + j for j in range(k % 3)]), k
    with h5py.File(old, "r") as f:
        assert int(f.attrs["version"]) == 2 and f["train/images"].is_virtual


@pytest.mark.parametrize("shaped", ["v1", "v2"])
def test_a_split_mapped_in_more_runs_than_max_runs_is_copied_into_one_segment(tmp_path, monkeypatch, shaped):
    """A commit interleaving its rows with the old ones maps each stretch as a run; past MAX_RUNS (the runs of
    the features plus, in version 2, those of the image sets) the split is copied into one segment instead."""
    from sgmft_cache import segments

    write = commit if shaped == "v1" else add_v2
    order = [f"p{k:04d}" for k in range(20)]

    def interleaved(max_runs: int) -> tuple[int, list]:
        cache = tmp_path / f"{shaped}-{max_runs}.h5"
        monkeypatch.setattr(segments, "MAX_RUNS", 10**6)
        write(cache, range(0, 20, 2), order)
        monkeypatch.setattr(segments, "MAX_RUNS", max_runs)
        write(cache, range(1, 20, 2), order)
        data = load_split(cache, "train")
        assert data.ids == order
        np.testing.assert_array_equal(data.text[:, 0].numpy()[data.has_text.numpy()],
                                      np.arange(20)[data.has_text.numpy()])
        with h5py.File(cache, "r") as f:
            runs = len(json.loads(f["train"].attrs["segments"])["runs"])
            if shaped == "v2":
                runs += len(json.loads(f["train"].attrs["image_segments"])["runs"])
        return runs, sorted(p.name for p in segment_dir(cache).iterdir()), data

    mapped, files, kept = interleaved(10**6)
    assert len(files) == 2 and (mapped == 20 if shaped == "v1" else mapped > 20)  # 20 stretches of features
    assert interleaved(mapped)[0] == mapped  # exactly MAX_RUNS: still mapped
    copied, files, data = interleaved(mapped - 1)
    assert len(files) == 1 and copied == (1 if shaped == "v1" else 2)  # one segment, one run of each
    for name in ("text", "image", "images", "image_offsets", "has_text", "has_image"):
        assert torch.equal(getattr(data, name), getattr(kept, name)), name


def test_a_merge_takes_each_split_from_every_source_that_has_it_in_the_widest_dtype(tmp_path):
    """The first shard has no /val: the second's val still comes through; float32 and float16 shards merge
    as float32 (nothing rounded), whichever comes first."""
    a, b = tmp_path / "a.h5", tmp_path / "b.h5"
    commit(a, range(0, 4), dtype="float32")
    commit(b, range(4, 6), dtype="float16")
    w = CacheWriter(b, "val", META, dtype="float16")
    r = rows(range(10, 12))
    w.add(r["ids"], r["text"], r["image"], r["label"])
    w.commit()
    merge_caches([a, b], tmp_path / "m.h5")
    assert load_split(tmp_path / "m.h5", "val").ids == r["ids"]
    with h5py.File(tmp_path / "m.h5", "r") as f:
        assert f["train/text"].dtype == np.float32 and f["val/text"].dtype == np.float16
    assert load_split(tmp_path / "m.h5", "train").ids == rows(range(6))["ids"]


def test_a_commit_lists_its_skipped_posts_in_the_order_given(tmp_path):
    from sgmft_cache import load_skipped

    cache = tmp_path / "c.h5"
    w = CacheWriter(cache, "train", META)
    w.skip(["p0002", "q", "p0009", "p0005"], ["empty text", "not in the manifest", "no image", "unreadable"])
    r = rows([1, 3])
    w.add(r["ids"], r["text"], r["image"], r["label"])
    w.commit(order=[f"p{k:04d}" for k in range(9, -1, -1)])  # p0009 first: not the ids' sorted order
    assert list(load_skipped(cache, "train").items()) == [("p0009", "no image"), ("p0005", "unreadable"),
                                                          ("p0002", "empty text"), ("q", "not in the manifest")]
    assert load_split(cache, "train").ids == ["p0003", "p0001"]


def test_a_first_commit_makes_the_cache_folder_and_builds_the_file_beside_it_named_by_its_pid(tmp_path, monkeypatch):
    """The temporary a commit builds carries the writer's pid, which is how a later writer tells a dead one's
    leftover from a live one's (remove_dead_temporaries)."""
    from sgmft_cache import store

    cache = tmp_path / "not" / "yet" / "there.h5"
    swapped = []
    real_replace = store.os.replace
    monkeypatch.setattr(store.os, "replace", lambda a, b: swapped.append((Path(a), Path(b))) or real_replace(a, b))
    commit(cache, range(3))
    assert load_split(cache, "train").ids == rows(range(3))["ids"]
    assert (cache.parent / f".there.h5.tmp-{os.getpid()}", cache) in swapped


def test_an_id_in_two_chunks_or_two_shards_is_kept_once_from_the_first(tmp_path):
    cache = tmp_path / "c.h5"
    w = CacheWriter(cache, "train", META, chunk_rows=2)
    first, again = rows([1, 2]), rows([1, 3])
    again["text"][0] = 99.0  # p0001 a second time, other features: a later chunk of the same commit
    w.add(first["ids"], first["text"], first["image"], first["label"])
    w.add(again["ids"], again["text"], again["image"], again["label"])
    w.commit()
    data = load_split(cache, "train")
    assert data.ids == ["p0001", "p0002", "p0003"] and data.text[:, 0].tolist() == [1.0, 2.0, 3.0]
    other = tmp_path / "other.h5"
    w = CacheWriter(other, "train", META)
    w.add(again["ids"], again["text"], again["image"], again["label"])
    w.commit()
    merge_caches([cache, other], tmp_path / "m.h5")
    data = load_split(tmp_path / "m.h5", "train")
    assert data.ids == ["p0001", "p0002", "p0003"] and data.text[:, 0].tolist() == [1.0, 2.0, 3.0]


def test_reading_positions_runs_of_rows_and_a_segment_gone_since_validation(tmp_path):
    """load_rows reads long stretches of rows as runs (a few breaks among many rows) and scattered rows as
    one selection: both give the loaded split's rows. A segment file removed after the cache was validated
    (during a streamed fit) reads as NaN, which is refused, never as zeros."""
    from sgmft_cache import load_rows

    cache = tmp_path / "c.h5"
    add_v2(cache, range(0, 600), dtype="float16")
    whole = load_split(cache, "train")  # float32
    for index in (np.r_[0:100, 300:500, 550:600], np.r_[5:6, 200:330], np.arange(0, 600, 7)):
        got = load_rows(cache, "train", index)  # the stored float16
        assert got.ids == [whole.ids[i] for i in index]
        assert got.text.dtype == got.image.dtype == got.images.dtype == torch.float16
        for name in ("text", "image", "has_text", "has_image", "label"):
            assert torch.equal(getattr(got, name).to(getattr(whole, name).dtype), getattr(whole, name)[index]), name
        assert torch.equal(got.images.float(), whole.subset(index).images)
    before = set(segment_files(cache))
    commit(cache, range(600, 610))
    (new,) = set(segment_files(cache)) - before
    validate(cache, require_splits=["train"])
    (segment_dir(cache) / new).unlink()
    with pytest.raises(CacheError, match=r"/train/text holds NaN or Inf in 10 row\(s\), first id 'p0600'"):
        load_rows(cache, "train", np.arange(590, 610))


def test_a_writer_stages_a_chunk_every_chunk_rows_and_its_commit_says_what_it_holds(tmp_path):
    """Chunks are the unit a killed extract resumes from: one every `chunk_rows` rows, numbered in turn.
    Two splits staged at once: the first commit leaves the other's chunks for its own commit."""
    cache = tmp_path / "c.h5"
    train, test = CacheWriter(cache, "train", META, chunk_rows=4), CacheWriter(cache, "test", META, chunk_rows=4)
    staged = lambda w: sorted(p.name for p in w.chunks.iterdir())  # noqa: E731
    for k in range(11):
        r = rows([k])
        train.add(r["ids"], r["text"], r["image"], r["label"])
    assert staged(train) == ["chunk-000001.h5", "chunk-000002.h5"]  # rows 0-3 and 4-7; 8-10 still buffered
    r = rows([50, 51])
    test.add(r["ids"], r["text"], r["image"], r["label"])
    test.flush()
    train.skip(["p0099"], ["no usable text or image"])
    assert train.commit() == CommitSummary("train", 11, 1)
    assert staged(test) == ["chunk-000001.h5"]
    assert test.commit() == CommitSummary("test", 2, 0)
    assert load_split(cache, "train").ids == rows(range(11))["ids"] and load_split(cache, "test").ids == r["ids"]
    assert not staging_dir(cache).exists()


def test_a_third_commit_reads_the_runs_the_second_one_mapped(tmp_path):
    """The second commit interleaves its rows with the first's (runs starting inside segments); the third
    reads that placement back from the file and must keep every row where it was."""
    cache = tmp_path / "c.h5"
    order = [f"p{k:04d}" for k in range(30)]
    commit(cache, range(0, 20, 2), order)
    commit(cache, range(1, 20, 2), order)
    commit(cache, range(20, 30), order)
    data = load_split(cache, "train")
    assert data.ids == order
    np.testing.assert_array_equal(data.text[:, 0].numpy(), np.arange(30))
    np.testing.assert_array_equal(data.image[:, 0].numpy(), -np.arange(30))


def test_one_post_in_two_splits_is_refused_word_for_word_and_notes_only_where_pictures_were_dropped(tmp_path):
    cache = tmp_path / "c.h5"
    assert segment_dir(cache) == tmp_path / "c.h5.d"  # the folder beside the file (README "appending commit")
    commit(cache, range(4))
    w = CacheWriter(cache, "test", META)
    r = rows([2, 9])
    w.add(r["ids"], r["text"], r["image"], r["label"])
    with pytest.raises(CacheError) as e:
        w.commit()
    assert str(e.value) == (f"{cache}: 1 id(s) are in both /train and /test, e.g. 'p0002': a post must be in one split "
                            "(were splits extracted with different --seed, --test-fraction or split columns?); "
                            "re-extract into a new cache or with --overwrite")
    from sgmft_cache import load_dropped_images

    w = CacheWriter(cache, "val", META, chunk_rows=2)
    a, b = rows([20, 21]), rows([22, 23])
    w.add(a["ids"], a["text"], a["image"], a["label"])  # no notes given: nothing dropped
    w.add(b["ids"], b["text"], b["image"], b["label"], dropped_images=["", "2: b.jpg: unreadable"])
    w.commit()
    assert load_dropped_images(cache, "val") == {"p0023": "2: b.jpg: unreadable"}
