"""Writing a cache file from a plan of rows: which (source file, row) each row's datasets come from, where its features lie.

The per-row datasets (ids, labels, cleaned texts, masks, offsets) are copied block by block from the
sources; the features become virtual datasets over segment files (sgmft_cache/segments.py). The file
is written aside and swapped in whole.
"""
from __future__ import annotations

import os
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import h5py
import numpy as np

from sgmft_cache import identity, layout as L, postshape as P, ragged as R
from sgmft_cache import segments as S
from sgmft_cache.diskfile import built_in_memory

SMALL = ((L.ID, L.STR_DTYPE, None), (L.LABEL, np.int64, None), (L.TEXT_CLEAN, L.STR_DTYPE, None))
MASKS = ((L.HAS_TEXT, np.bool_, True), (L.HAS_IMAGE, np.bool_, True))  # version 2; absent in a source = true


@dataclass
class Incoming:
    """Rows of /<split> of the sources given to `incoming` that go into a cache, in output order: row[k] of
    sources[src[k]]."""

    src: np.ndarray  # [n] int
    row: np.ndarray  # [n] int
    ids: list[str]
    skips: dict[str, str]  # id -> reason, as the sources list them (a later source overrides)
    dtype: np.dtype  # of their features (float32 where they differ)
    v2: bool  # a source holds version-2 datasets for the split
    counts: np.ndarray  # [n] images per post

    def __len__(self) -> int:
        return len(self.ids)


def incoming(sources: Sequence[Path], split: str, have: set[str], order: Sequence[str] | None) -> Incoming:
    """The first row of each id that is not in `have`, from ids alone, sorted by `order` (stable; others last)."""
    src, row, ids, skips, dtypes, seen, counts, v2 = [], [], [], {}, set(), set(have), [], False
    for k, path in enumerate(sources):
        with h5py.File(path, "r") as f:
            group = f.get(split)
            got = L.read_strings(group, L.ID).tolist() if group is not None else []
            counts.append(R.counts_of(group))
            if group is None:
                continue
            v2 |= L.is_v2(group)
            dtypes |= {group[name].dtype for name in (*L.FEATURES, L.IMAGES) if name in group} if got else set()
            skips.update(zip(L.read_strings(group, L.SKIPPED_ID).tolist(), L.read_strings(group, L.SKIPPED_REASON).tolist()))
        for r, id_ in enumerate(got):
            if id_ not in seen:
                seen.add(id_)
                src.append(k), row.append(r), ids.append(id_)
    src, row = np.array(src, dtype=np.int64), np.array(row, dtype=np.int64)
    if order is not None:
        rank = {id_: k for k, id_ in enumerate(order)}
        by = np.argsort([rank.get(i, len(rank)) for i in ids], kind="stable")
        src, row, ids = src[by], row[by], [ids[k] for k in by]
    dtype = dtypes.pop() if len(dtypes) == 1 else np.dtype(np.float32)
    n = np.array([counts[s][r] for s, r in zip(src, row)], dtype=np.int64)
    return Incoming(src, row, ids, skips, dtype, v2, n)


@dataclass
class SplitOut:
    """One split of a cache file about to be written: row k's per-row datasets are row[k] of sources[src[k]],
    its features lie where `placement` says, its images (version 2) where `images` says."""

    sources: list[Path]
    src: np.ndarray
    row: np.ndarray
    placement: S.Placement
    skips: dict[str, str] = field(default_factory=dict)  # id -> reason, ids without features only
    images: S.Placement | None = None  # None: a version-1 split (one image per post: `image`)
    counts: np.ndarray | None = None  # [N] images per post, with `images`

    @classmethod
    def kept(cls, path: Path, f: h5py.File, split: str, skips: dict[str, str], link: list) -> "SplitOut":
        """The old file's /<split> as it is; a split stored in the file itself (an older cache) is placed in a
        hard link to the old file (made once per write, in `link`), so nothing is copied."""
        group = f[split]
        n = int(group[L.ID].shape[0])
        placement, images = S.Placement.of(group), S.Placement.of(group, S.IMAGE_SEGMENTS)
        if placement is None:
            name = linked(path, link)
            placement = S.Placement.whole(name, n, group[L.TEXT].dtype)
            if L.IMAGES in group:
                images = S.Placement.whole(f"{name}#{L.IMAGES}", group[L.IMAGES].shape[0], group[L.IMAGES].dtype)
        v2 = L.is_v2(group)
        return cls([path], np.zeros(n, np.int64), np.arange(n, dtype=np.int64), placement, skips,
                   images if v2 else None, R.counts_of(group) if v2 else None)

    def as_v2(self) -> "SplitOut":
        """A version-1 split's rows as version 2: its image rows are its `image` rows, one per post."""
        if self.images is None:
            self.images, self.counts = self.placement.reading(L.IMAGE), np.ones(len(self.src), np.int64)
        return self


def linked(dest: Path, link: list) -> str:
    if not link:
        name = f"linked-{os.urandom(6).hex()}.h5"
        S.segment_dir(dest).mkdir(parents=True, exist_ok=True)
        try:
            os.link(dest, S.segment_dir(dest) / name)
        except OSError:  # a filesystem without hard links
            import shutil

            shutil.copyfile(dest, S.segment_dir(dest) / name)
        link.append(name)
    return link[0]


def temporary(dest: Path, pid: int | str) -> Path:
    """The file process `pid` builds `dest` in before swapping it in (pid "*": a glob of every process's)."""
    return dest.with_name(f".{dest.name}.tmp-{pid}")


def write_cache(dest: Path, meta: L.CacheMeta, outs: dict[str, SplitOut]) -> None:
    """Write the cache file (per-row datasets copied block by block, features as virtual datasets) and swap it in."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = temporary(dest, os.getpid())
    try:
        # built in memory (per-row data and the virtual datasets' maps; the features lie in segments), so a full
        # disk fails the one plain write that names the file, never HDF5 halfway through it
        with built_in_memory(tmp) as out:
            L.write_meta(out, meta)
            for split, o in outs.items():
                _write_split(out.create_group(split), split, o, meta.embed_dim, dest)
            L.stamp_version(out)
            identity.stamp(out, meta.labels)  # what the rows mean, beside how they were made
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)


def _write_split(group: h5py.Group, split: str, o: SplitOut, dim: int, dest: Path) -> None:
    with ExitStack() as stack:
        sources = [f[split] if f is not None and split in f else None for f in S.open_all(stack, o.sources)]
        dropped = any(g is not None and L.DROPPED_IMAGES in g for g in sources)
        wanted = SMALL + (MASKS if o.images is not None else ()) + (((L.DROPPED_IMAGES, L.STR_DTYPE, None),)
                                                                      if dropped else ())
        for name, dtype, default in wanted:
            ds = group.create_dataset(name, shape=(len(o.src),), dtype=dtype)
            S.gather([g.get(name) if g is not None else None for g in sources], o.src, o.row, ds, 0, default=default)
    skipped = list(o.skips.items())
    group.create_dataset(L.SKIPPED_ID, data=np.array([i for i, _ in skipped], dtype=object), dtype=L.STR_DTYPE)
    group.create_dataset(L.SKIPPED_REASON, data=np.array([r for _, r in skipped], dtype=object), dtype=L.STR_DTYPE)
    for name in L.FEATURES:
        S.virtual_feature(group, name, o.placement, split, dim, dest)
    group.attrs[S.SEGMENTS] = o.placement.record()
    if o.images is not None:
        group.create_dataset(L.IMAGE_OFFSETS, data=P.offsets_of(o.counts))
        S.virtual_feature(group, L.IMAGES, o.images, split, dim, dest)
        group.attrs[S.IMAGE_SEGMENTS] = o.images.record()


def sorted_skips(skips: dict[str, str], have: set[str], order: Sequence[str] | None) -> dict[str, str]:
    """Skip reasons of ids that have no features, in `order` when given."""
    kept = [(i, r) for i, r in skips.items() if i not in have]
    if order is not None:
        rank = {id_: k for k, id_ in enumerate(order)}
        kept.sort(key=lambda item: rank.get(item[0], len(rank)))
    return dict(kept)
