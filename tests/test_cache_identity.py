"""A cache's content identity: which posts with which labels. Two caches made alike (one fingerprint) from
other posts or labels differ in it, fit records it, and the report never averages their runs as seeds."""
from __future__ import annotations

import h5py
import numpy as np
import pytest

from sgmft_cache import CacheMeta, content_identity, identity, write_split
from pipeline.fit import FitConfig, fit
from pipeline.report import report
from pipeline.report.runs import by_fingerprint, load_runs

LABELS = ("home", "work", "school")
META = CacheMeta(model="my-encoder", embed_dim=8, labels=LABELS, fingerprint="same-fp")


def _cache(path, ids, labels, seed=0, meta=META):
    rng = np.random.default_rng(seed)
    for split, part in (("train", slice(0, -6)), ("test", slice(-6, None))):
        n = len(ids[part])
        write_split(path, split, meta, ids=ids[part], text=rng.standard_normal((n, 8)),
                    image=rng.standard_normal((n, 8)), label=labels[part])
    return path


IDS = [f"p{i}" for i in range(30)]
Y = [i % 3 for i in range(30)]


def test_the_identity_is_stored_and_tells_posts_and_labels_apart(tmp_path):
    base = content_identity(_cache(tmp_path / "a.h5", IDS, Y))
    with h5py.File(tmp_path / "a.h5", "r") as f:
        assert f.attrs[identity.ATTR] == base
    other_posts = content_identity(_cache(tmp_path / "b.h5", [f"q{i}" for i in range(30)], Y))
    other_labels = content_identity(_cache(tmp_path / "c.h5", IDS, [(i + 1) % 3 for i in range(30)]))
    renamed = CacheMeta(model="my-encoder", embed_dim=8, labels=("a", "b", "c"), fingerprint="same-fp")
    other_names = content_identity(_cache(tmp_path / "d.h5", IDS, Y, meta=renamed))
    other_features = content_identity(_cache(tmp_path / "e.h5", IDS, Y, seed=5))
    assert len({base, other_posts, other_labels, other_names}) == 4
    assert other_features == base  # features are the fingerprint's business: same posts, same labels


def test_row_order_does_not_matter_and_old_caches_get_it_computed_on_read(tmp_path, monkeypatch):
    base = content_identity(_cache(tmp_path / "a.h5", IDS, Y))
    order = np.random.default_rng(0).permutation(24)
    shuffled = _cache(tmp_path / "s.h5", [IDS[i] for i in order] + IDS[24:], [Y[i] for i in order] + Y[24:])
    assert content_identity(shuffled) == base
    with h5py.File(shuffled, "a") as f:  # as a cache written before identities were kept
        del f.attrs[identity.ATTR]
    monkeypatch.setattr(identity, "BLOCK_ROWS", 4)  # read a few rows at a time
    assert content_identity(shuffled) == base


def test_extending_a_split_changes_the_identity(tmp_path):
    path = _cache(tmp_path / "a.h5", IDS, Y)
    before = content_identity(path)
    write_split(path, "val", META, ids=["v1"], text=np.zeros((1, 8)), image=np.zeros((1, 8)), label=[0])
    assert content_identity(path) != before


def test_report_keeps_two_caches_with_one_fingerprint_apart(tmp_path, one_thread):
    a = _cache(tmp_path / "a.h5", IDS, Y)
    b = _cache(tmp_path / "b.h5", IDS, [(i + 1) % 3 for i in range(30)])
    quick = dict(variant="text-only", epochs=1, lr=1e-3, heads=2, ffn_hidden=8, quiet=True)
    for seed, cache in ((0, a), (1, b)):
        metrics = fit(FitConfig(cache=str(cache), seed=seed, out=str(tmp_path / "runs" / f"s{seed}"), **quick)).metrics
        assert metrics["cache_content"] == content_identity(cache)
    found = load_runs([tmp_path / "runs"])
    assert len(found.runs) == 2 and len(by_fingerprint(found.runs)) == 2
    summary = report([tmp_path / "runs"], tmp_path / "report", tsne=False)
    assert len(summary.sections) == 2
    assert all(len(s.runs) == 1 for s in summary.sections)


def test_the_identity_is_the_documented_hash_so_caches_of_every_version_agree(tmp_path, monkeypatch):
    """Spelled out here, independently: sha256 of the class names as UTF-8 JSON, then per split (sorted) its
    row count and the sum mod 2**256 of sha256("<split>\\0<id>\\0<label>") read big-endian; 32 hex digits.
    A stored identity is compared with ones computed on read for older caches: it must never drift."""
    import hashlib
    import json

    labels = ("家", "工作", "school")
    meta = CacheMeta(model="m", embed_dim=2, labels=labels, fingerprint="fp")
    splits = {"train": (["帖子1", "b", "c"], [0, 2, -1]), "test": (["d"], [1]), "val": ([], [])}
    path = tmp_path / "c.h5"
    for split, (ids, labs) in splits.items():
        write_split(path, split, meta, ids=ids, text=np.ones((len(ids), 2)), image=np.ones((len(ids), 2)), label=labs)

    digest = hashlib.sha256(json.dumps(list(labels), ensure_ascii=False).encode("utf-8"))
    for split in sorted(splits):
        ids, labs = splits[split]
        total = sum(int.from_bytes(hashlib.sha256(f"{split}\0{i}\0{lab}".encode()).digest(), "big")
                    for i, lab in zip(ids, labs)) % (1 << 256)
        digest.update(f"\n{split} {len(ids)} {total:064x}".encode())
    expected = digest.hexdigest()[:32]
    assert content_identity(path) == expected
    monkeypatch.setattr(identity, "BLOCK_ROWS", 2)  # read in blocks, without the stored attribute: the same
    with h5py.File(path, "a") as f:
        del f.attrs[identity.ATTR]
    assert content_identity(path) == expected
