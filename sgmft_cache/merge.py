"""Merging rows into a cache, keyed by post id: a commit's staged chunks, or whole caches (torchrun shards).

Both plan from ids alone which (file, row) goes where, then copy features block by block into one new
segment per split (sgmft_cache/segments.py) and write the cache file aside and swap it in
(sgmft_cache/store.py): memory O(block) for features, O(N) only for ids. A commit does not copy the
rows already committed: their segments stay, and the split's rows are re-mapped into manifest order.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable, Sequence

import h5py
import numpy as np

from sgmft_cache import layout as L, lock, postshape as P, ragged as R
from sgmft_cache import segments as S
from sgmft_cache.errors import CacheError
from sgmft_cache.store import SplitOut, incoming, sorted_skips, temporary, write_cache
from sgmft_cache.validation import check_disjoint


def merge_rows(blocks: Sequence[L.Rows]) -> L.Rows:
    """One block holding each id once (first occurrence wins), in the order the rows came (a commit sorts).

    Skip entries keep the latest reason per id and are dropped for ids that now have features,
    so a row skipped once and encoded on a later run is no longer listed as skipped.
    """
    blocks = [b for b in blocks if b is not None]
    embed_dim = blocks[0].text.shape[1]
    dtypes = {a.dtype for b in blocks if len(b) for a in (b.text, b.image, b.images)}
    dtype = dtypes.pop() if len(dtypes) == 1 else np.dtype(np.float32)
    rows = _concat([b for b in blocks if len(b)], embed_dim, dtype)
    _, first = np.unique(rows.ids.astype(str), return_index=True)
    keep = np.sort(first)
    skips: dict[str, str] = {}
    for b in blocks:
        skips.update(zip(b.skipped_id.tolist(), b.skipped_reason.tolist()))
    have = set(rows.ids[keep].tolist())
    skipped = [(i, r) for i, r in skips.items() if i not in have]
    merged = rows.take(keep)
    merged.skipped_id = np.array([i for i, _ in skipped], dtype=object)
    merged.skipped_reason = np.array([r for _, r in skipped], dtype=object)
    return merged


def _concat(blocks: Sequence[L.Rows], embed_dim: int, dtype) -> L.Rows:
    if not blocks:
        return L.Rows.empty(embed_dim, dtype)
    cat = lambda name: np.concatenate([getattr(b, name) for b in blocks])  # noqa: E731
    feats = lambda name: np.concatenate([getattr(b, name).astype(dtype, copy=False) for b in blocks])  # noqa: E731
    images, offsets = P.concat([(b.images, b.image_offsets) for b in blocks], dtype)
    no_str = np.empty(0, dtype=object)
    return L.Rows(ids=cat("ids"), text=feats("text"), image=feats("image"), label=cat("label"),
                  text_clean=cat("text_clean"), skipped_id=no_str, skipped_reason=no_str,
                  has_text=cat("has_text"), has_image=cat("has_image"), images=images, image_offsets=offsets,
                  dropped_images=cat("dropped_images"))


def remove_dead_temporaries(dest: Path) -> None:
    """Delete half-written copies of `dest` left by processes that died mid-commit (SIGKILL)."""
    for tmp in dest.parent.glob(temporary(dest, "*").name):
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






def _read_old(dest: Path, outs: dict[str, SplitOut], ids: dict[str, list[str]]) -> None:
    """Every split of the cache file as it stands, kept as it is (ids read, features not)."""
    link: list = []
    with h5py.File(dest, "r") as f:
        for name, group in f.items():
            ids[name] = L.read_strings(group, L.ID).tolist()
            skips = dict(zip(L.read_strings(group, L.SKIPPED_ID).tolist(), L.read_strings(group, L.SKIPPED_REASON).tolist()))
            outs[name] = SplitOut.kept(dest, f, name, skips, link)


def commit_split(dest: Path, meta: L.CacheMeta, split: str, chunks: Sequence[Path],
                 order: Sequence[str] | None) -> SplitOut:
    """Add the staged chunks' new rows of /<split> to the cache: their features as one new segment, the
    split's rows then sorted by `order` (committed features are not copied, only re-mapped)."""
    outs: dict[str, SplitOut] = {}
    ids: dict[str, list[str]] = {}
    if dest.exists():
        _read_old(dest, outs, ids)
    none = np.zeros(0, np.int64)
    old = outs.get(split) or SplitOut([dest], none, none, S.Placement.empty())
    have = ids.get(split, [])
    new = incoming(chunks, split, set(have), order)
    try:
        check_disjoint(split, set(new.ids), {k: set(v) for k, v in ids.items() if k != split})
    except CacheError as e:
        raise CacheError(f"{dest}: {e}") from None
    v2 = new.v2 or old.images is not None
    placement, images, counts = old.placement, None, None
    if v2:
        old = old.as_v2()
        images, counts = old.images, np.concatenate([old.counts, new.counts])
    if len(new):
        rows, new_images = S.write_segment(dest, split, chunks, new.src, new.row, meta.embed_dim, new.dtype, v2)
        placement = placement.then(rows)
        images = images.then(new_images) if v2 else None
    every = have + new.ids
    src, row = np.concatenate([old.src, new.src + 1]), np.concatenate([old.row, new.row])
    if order is not None:
        rank = {id_: k for k, id_ in enumerate(order)}
        by = np.argsort([rank.get(i, len(rank)) for i in every], kind="stable")
        src, row, placement = src[by], row[by], placement.take(by)
        if v2:
            images, counts = images.take(R.reordered(counts, by)), counts[by]
    if len(placement.runs()) + (len(images.runs()) if v2 else 0) > S.MAX_RUNS:  # too finely interleaved to map
        placement, images = S.write_segment(dest, split, [dest, *chunks], src, row, meta.embed_dim, placement.dtype(), v2)
    skips = sorted_skips({**old.skips, **new.skips}, set(every), order)
    outs[split] = SplitOut([dest, *chunks], src, row, placement, skips, images, counts)
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
    sources = [Path(s) for s in sources]
    if not sources:
        raise CacheError(f"{dest}: nothing to merge")
    with lock.cache_lock(dest):
        return _merge(sources, Path(dest), order or {}, meta)


def _merge(sources: list[Path], dest: Path, order: dict[str, Sequence[str]], meta: L.CacheMeta | None) -> L.CacheMeta:
    from sgmft_cache.validation import validate

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
        rows, images = S.write_segment(dest, split, sources, new.src, new.row, meta.embed_dim, new.dtype, new.v2)
        outs[split] = SplitOut(sources, new.src, new.row, rows, sorted_skips(new.skips, set(new.ids), order.get(split)),
                               images, new.counts if new.v2 else None)
    write_cache(dest, meta, outs)
    S.remove_orphans(dest)
    return meta


def _groups(path: Path) -> list[str]:
    with h5py.File(path, "r") as f:
        return [name for name, obj in f.items() if isinstance(obj, h5py.Group)]
