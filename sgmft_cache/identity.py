"""What a cache's rows mean, as one hash: its class names and, per split, which posts with which labels.

The fingerprint says how features were made (encoder, weights, preprocessing); two caches made
alike from other posts or other labels share it. `content_identity` tells them apart. It is kept as
a root attribute, written whenever a cache file is written (commit, write_split, merge), and computed
on read for caches written before it existed. Rows are read a block at a time (memory O(block)), and
the hash does not depend on row order: the same posts in another order are the same content.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Sequence

import h5py

from sgmft_cache import layout as L

ATTR = "content_id"  # the root attribute
BLOCK_ROWS = 8192  # rows read at a time
_MOD = 1 << 256


def content_identity(path: str | Path) -> str:
    """The cache's content identity: its stored attribute, or computed from its rows where it has none."""
    with h5py.File(path, "r") as f:
        stored = f.attrs.get(ATTR)
        if stored is not None:
            return L._as_str(stored)
        return identity_of(f, json.loads(L._as_str(f.attrs[L.ATTR_LABELS])))


def identity_of(f: h5py.File, labels: Sequence[str]) -> str:
    """The identity of an open cache file's rows under class names `labels`."""
    digest = hashlib.sha256(json.dumps(list(labels), ensure_ascii=False).encode("utf-8"))
    for split in sorted(name for name, obj in f.items() if isinstance(obj, h5py.Group)):
        total, rows = _split_sum(f[split], split)
        digest.update(f"\n{split} {rows} {total:064x}".encode())
    return digest.hexdigest()[:32]


def _split_sum(group: h5py.Group, split: str) -> tuple[int, int]:
    """(sum of the rows' hashes mod 2**256, rows): an order-free hash of the split's (id, label) pairs."""
    if L.ID not in group or L.LABEL not in group:
        return 0, 0
    ids, labels = group[L.ID].asstr(), group[L.LABEL]
    total, n = 0, ids.shape[0]
    for start in range(0, n, BLOCK_ROWS):
        stop = min(n, start + BLOCK_ROWS)
        for id_, label in zip(ids[start:stop], labels[start:stop].tolist()):
            row = hashlib.sha256(f"{split}\0{id_}\0{int(label)}".encode("utf-8")).digest()
            total = (total + int.from_bytes(row, "big")) % _MOD
    return total, n


def stamp(f: h5py.File, labels: Sequence[str]) -> None:
    """Record the identity of an open, fully written cache file as its root attribute."""
    f.attrs[ATTR] = identity_of(f, labels)
