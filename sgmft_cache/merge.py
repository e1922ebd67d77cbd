"""Merging rows into a cache, keyed by post id: a commit's staged chunks, or whole caches (torchrun shards).

Both plan from ids alone which (file, row) goes where, then copy features block by block into one new
segment per split (sgmft_cache/segments.py) and write the cache file aside and swap it in: memory
O(block) for features, O(N) only for ids. A commit keeps the rows already committed where they are
(their segments are not rewritten) and appends the new ones after them in manifest order.
"""
from __future__ import annotations

import json
import os
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

import h5py
import numpy as np

from sgmft_cache import layout as L
from sgmft_cache import segments as S
from sgmft_cache.errors import CacheError
from sgmft_cache.validation import check_disjoint

SMALL = (L.ID, L.LABEL, L.TEXT_CLEAN)  # per-row datasets kept in the cache file itself


def merge_rows(blocks: Sequence[L.Rows], order: Sequence[str] | None = None) -> L.Rows:
    """One block holding each id once (first occurrence wins), rows sorted by `order` when given.

    Skip entries keep the latest reason per id and are dropped for ids that now have features,
    so a row skipped once and encoded on a later run is no longer listed as skipped.
    """
    blocks = [b for b in blocks if b is not None]
    embed_dim = blocks[0].text.shape[1]
    dtypes = {b.text.dtype for b in blocks if len(b)} | {b.image.dtype for b in blocks if len(b)}
    dtype = dtypes.pop() if len(dtypes) == 1 else np.dtype(np.float32)
    rows = _concat([b for b in blocks if len(b)], embed_dim, dtype)
    _, first = np.unique(rows.ids.astype(str), return_index=True)
    keep = np.sort(first)
    skips: dict[str, str] = {}
    for b in blocks:
        skips.update(zip(b.skipped_id.tolist(), b.skipped_reason.tolist()))
    have = set(rows.ids[keep].tolist())
    skipped = [(i, r) for i, r in skips.items() if i not in have]
    if order is not None:
        rank = {id_: k for k, id_ in enumerate(order)}
        end = len(rank)
        keep = keep[np.argsort([rank.get(i, end) for i in rows.ids[keep]], kind="stable")]
        skipped.sort(key=lambda item: rank.get(item[0], end))
    return L.Rows(
        ids=rows.ids[keep],
        text=rows.text[keep],
        image=rows.image[keep],
        label=rows.label[keep],
        text_clean=rows.text_clean[keep],
        skipped_id=np.array([i for i, _ in skipped], dtype=object),
        skipped_reason=np.array([r for _, r in skipped], dtype=object),
    )


def _concat(blocks: Sequence[L.Rows], embed_dim: int, dtype) -> L.Rows:
    if not blocks:
        return L.Rows.empty(embed_dim, dtype)
    cat = lambda name: np.concatenate([getattr(b, name) for b in blocks])  # noqa: E731
    return L.Rows(
        ids=cat("ids"),
        text=np.concatenate([b.text.astype(dtype, copy=False) for b in blocks]),
        image=np.concatenate([b.image.astype(dtype, copy=False) for b in blocks]),
        label=cat("label"),
        text_clean=cat("text_clean"),
        skipped_id=np.empty(0, dtype=object),
        skipped_reason=np.empty(0, dtype=object),
    )


def _temporary(dest: Path, pid: int) -> Path:
    return dest.with_name(f".{dest.name}.tmp-{pid}")


def remove_dead_temporaries(dest: Path) -> None:
    """Delete half-written copies of `dest` left by processes that died mid-commit (SIGKILL)."""
    for tmp in dest.parent.glob(f".{dest.name}.tmp-*"):
        pid = tmp.name.rsplit("-", 1)[-1]
        if pid.isdigit() and not _alive(int(pid)):
            tmp.unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True






@dataclass
class Incoming:
    """Rows of /<split> of `sources` that go into a cache, in output order: row[k] of sources[src[k]]."""

    sources: list[Path]
    src: np.ndarray  # [n] int
    row: np.ndarray  # [n] int
    ids: list[str]
    skips: dict[str, str]  # id -> reason, as the sources list them (a later source overrides)
    dtype: np.dtype  # of their features (float32 where they differ)

    def __len__(self) -> int:
        return len(self.ids)


def incoming(sources: Sequence[Path], split: str, have: set[str], order: Sequence[str] | None) -> Incoming:
    """The first row of each id that is not in `have`, from ids alone, sorted by `order` (stable; others last)."""
    src, row, ids, skips, dtypes, seen = [], [], [], {}, set(), set(have)
    for k, path in enumerate(sources):
        with h5py.File(path, "r") as f:
            if split not in f:
                continue
            group = f[split]
            got = L.read_strings(group, L.ID).tolist()
            dtypes |= {group[name].dtype for name in L.FEATURES} if got else set()
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
    return Incoming(list(sources), src, row, ids, skips, dtype)


@dataclass
class SplitOut:
    """One split of a cache file about to be written: row k's small datasets are row[k] of sources[src[k]],
    its features lie where `placement` says."""

    sources: list[Path]
    src: np.ndarray
    row: np.ndarray
    placement: S.Placement
    skips: dict[str, str] = field(default_factory=dict)  # id -> reason, ids without features only

    @classmethod
    def kept(cls, path: Path, n: int, placement: S.Placement, skips: dict[str, str]) -> "SplitOut":
        return cls([path], np.zeros(n, np.int64), np.arange(n, dtype=np.int64), placement, skips)


def write_cache(dest: Path, meta: L.CacheMeta, outs: dict[str, SplitOut]) -> None:
    """Write the cache file (small datasets copied block by block, features as virtual datasets) and swap it in."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = _temporary(dest, os.getpid())
    try:
        with h5py.File(tmp, "w") as out:
            L.write_meta(out, meta)
            for split, o in outs.items():
                _write_split(out.create_group(split), split, o, meta.embed_dim, dest)
        S.fsync(tmp)
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)


def _write_split(group: h5py.Group, split: str, o: SplitOut, dim: int, dest: Path) -> None:
    with ExitStack() as stack:
        files = S.open_all(stack, o.sources)
        for name in SMALL:
            ds = group.create_dataset(name, shape=(len(o.src),), dtype=np.int64 if name == L.LABEL else L.STR_DTYPE)
            S.gather([f[split].get(name) if f is not None and split in f else None for f in files], o.src, o.row, ds, 0)
    skipped = list(o.skips.items())
    group.create_dataset(L.SKIPPED_ID, data=np.array([i for i, _ in skipped], dtype=object), dtype=L.STR_DTYPE)
    group.create_dataset(L.SKIPPED_REASON, data=np.array([r for _, r in skipped], dtype=object), dtype=L.STR_DTYPE)
    for name in L.FEATURES:
        S.virtual_feature(group, name, o.placement, split, dim, dest)
    group.attrs[S.SEGMENTS] = o.placement.record()


def placement_of(dest: Path, f: h5py.File, split: str, link: list) -> S.Placement:
    """Where the old file's /<split> has its features; a split stored in the file itself (an older cache) is
    placed in a hard link to the old file (made once per write, in `link`), so nothing is copied."""
    found = S.Placement.of(f[split])
    if found is not None:
        return found
    if not link:
        name = f"linked-{os.urandom(6).hex()}.h5"
        S.segment_dir(dest).mkdir(parents=True, exist_ok=True)
        try:
            os.link(dest, S.segment_dir(dest) / name)
        except OSError:  # a filesystem without hard links
            import shutil

            shutil.copyfile(dest, S.segment_dir(dest) / name)
        link.append(name)
    return S.Placement.whole(link[0], int(f[split][L.ID].shape[0]), f[split][L.TEXT].dtype)


def sorted_skips(skips: dict[str, str], have: set[str], order: Sequence[str] | None) -> dict[str, str]:
    """Skip reasons of ids that have no features, in `order` when given."""
    kept = [(i, r) for i, r in skips.items() if i not in have]
    if order is not None:
        rank = {id_: k for k, id_ in enumerate(order)}
        kept.sort(key=lambda item: rank.get(item[0], len(rank)))
    return dict(kept)


def _read_old(dest: Path, outs: dict[str, SplitOut], ids: dict[str, list[str]]) -> None:
    """Every split of the cache file as it stands, kept as it is (ids read, features not)."""
    link: list = []
    with h5py.File(dest, "r") as f:
        for name, group in f.items():
            ids[name] = L.read_strings(group, L.ID).tolist()
            skips = dict(zip(L.read_strings(group, L.SKIPPED_ID).tolist(), L.read_strings(group, L.SKIPPED_REASON).tolist()))
            outs[name] = SplitOut.kept(dest, len(ids[name]), placement_of(dest, f, name, link), skips)


def commit_split(dest: Path, meta: L.CacheMeta, split: str, chunks: Sequence[Path],
                 order: Sequence[str] | None) -> SplitOut:
    """Add the staged chunks' new rows of /<split> to the cache: their features as one new segment, the
    split's rows then sorted by `order` (committed features are not copied, only re-mapped)."""
    outs: dict[str, SplitOut] = {}
    ids: dict[str, list[str]] = {}
    if dest.exists():
        _read_old(dest, outs, ids)
    old = outs.get(split) or SplitOut([dest], np.zeros(0, np.int64), np.zeros(0, np.int64), S.Placement.empty())
    have = ids.get(split, [])
    new = incoming(chunks, split, set(have), order)
    try:
        check_disjoint(split, set(new.ids), {k: set(v) for k, v in ids.items() if k != split})
    except CacheError as e:
        raise CacheError(f"{dest}: {e}") from None
    placement = old.placement
    if len(new):
        placement = placement.then(S.write_segment(dest, split, chunks, new.src, new.row, meta.embed_dim, new.dtype))
    every = have + new.ids
    src, row = np.concatenate([old.src, new.src + 1]), np.concatenate([old.row, new.row])
    if order is not None:
        rank = {id_: k for k, id_ in enumerate(order)}
        by = np.argsort([rank.get(i, len(rank)) for i in every], kind="stable")
        src, row, placement = src[by], row[by], placement.take(by)
    if len(placement.runs()) > S.MAX_RUNS:  # rows interleaved too finely to map: copy them into one segment
        placement = S.write_segment(dest, split, [dest, *chunks], src, row, meta.embed_dim, placement.dtype())
    skips = sorted_skips({**old.skips, **new.skips}, set(every), order)
    outs[split] = SplitOut([dest, *chunks], src, row, placement, skips)
    write_cache(dest, meta, outs)
    S.remove_orphans(dest)
    return outs[split]


def merge_caches(
    sources: Iterable[str | Path], dest: str | Path, order: dict[str, Sequence[str]] | None = None,
    meta: L.CacheMeta | None = None,
) -> L.CacheMeta:
    """Merge whole caches (e.g. one shard per rank) into `dest`, split by split, keyed by id (first source wins).

    All sources must share fingerprint, embed_dim and labels. `order` maps a split to the id order its
    rows should follow (e.g. the manifest order); other splits keep source order. `meta` (compatible
    with the sources) gives `dest` its attributes; default: the first source's. `dest` may be a source."""
    from sgmft_cache.validation import validate

    sources, dest, order = [Path(s) for s in sources], Path(dest), order or {}
    if not sources:
        raise CacheError(f"{dest}: nothing to merge")
    metas = [validate(s) for s in sources]
    for src, other in zip(sources[1:], metas[1:]):
        why = metas[0].compatible_with(other)
        if why:
            raise CacheError(f"{src}: cannot be merged with {sources[0]}: {why}")
    meta = meta or metas[0]
    why = meta.compatible_with(metas[0])
    if why:
        raise CacheError(f"{dest}: the merged rows were made differently from its attributes: {why}")
    splits = sorted({name for s in sources for name in _groups(s)}, key=lambda x: (x not in L.SPLITS, x))
    outs = {}
    for split in splits:
        new = incoming(sources, split, set(), order.get(split))
        placement = S.write_segment(dest, split, sources, new.src, new.row, meta.embed_dim, new.dtype)
        outs[split] = SplitOut(sources, new.src, new.row, placement, sorted_skips(new.skips, set(new.ids), order.get(split)))
    write_cache(dest, meta, outs)
    S.remove_orphans(dest)
    return meta


def _groups(path: Path) -> list[str]:
    with h5py.File(path, "r") as f:
        return [name for name, obj in f.items() if isinstance(obj, h5py.Group)]
