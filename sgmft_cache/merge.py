"""Merging blocks of rows, and whole cache files, into one cache — keyed by post id."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable, Sequence

import h5py
import numpy as np

from sgmft_cache import identity, layout as L, lock, postshape as P
from sgmft_cache.diskfile import built_in_memory
from sgmft_cache.errors import CacheError


def merge_rows(blocks: Sequence[L.Rows], order: Sequence[str] | None = None) -> L.Rows:
    """One block holding each id once (first occurrence wins), rows sorted by `order` when given.

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
    if order is not None:
        rank = {id_: k for k, id_ in enumerate(order)}
        end = len(rank)
        keep = keep[np.argsort([rank.get(i, end) for i in rows.ids[keep]], kind="stable")]
        skipped.sort(key=lambda item: rank.get(item[0], end))
    merged = rows.take(keep)
    merged.skipped_id = np.array([i for i, _ in skipped], dtype=object)
    merged.skipped_reason = np.array([r for _, r in skipped], dtype=object)
    return merged


def _concat(blocks: Sequence[L.Rows], embed_dim: int, dtype) -> L.Rows:
    if not blocks:
        return L.Rows.empty(embed_dim, dtype)
    cat = lambda name: np.concatenate([getattr(b, name) for b in blocks])  # noqa: E731
    feats = lambda name: np.concatenate([getattr(b, name).astype(dtype, copy=False) for b in blocks])  # noqa: E731
    images, offsets = P.concat([(b.images, b.image_offsets) for b in blocks], embed_dim, dtype)
    no_str = np.empty(0, dtype=object)
    return L.Rows(ids=cat("ids"), text=feats("text"), image=feats("image"), label=cat("label"),
                  text_clean=cat("text_clean"), skipped_id=no_str, skipped_reason=no_str,
                  has_text=cat("has_text"), has_image=cat("has_image"), images=images, image_offsets=offsets,
                  dropped_images=cat("dropped_images"))


def write_cache_atomically(
    dest: Path, meta: L.CacheMeta, groups: dict[str, L.Rows], keep_from: Path | None = None
) -> None:
    """Write a cache holding `groups` (plus every other split of `keep_from`) and swap it in place.

    The file appears under `dest` only once complete, so a crash at any point leaves either
    the old cache or the new one, never a broken file.
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = _temporary(dest, os.getpid())
    try:
        with built_in_memory(tmp) as out:  # a full disk is one OSError here, never an HDF5 crash
            L.write_meta(out, meta)
            if keep_from is not None and keep_from.exists():
                with h5py.File(keep_from, "r") as old:
                    for split in old:
                        if split not in groups:
                            old.copy(old[split], out, name=split)
            for split, rows in groups.items():
                L.write_rows(out.create_group(split), rows)
            L.stamp_version(out)
            identity.stamp(out, meta.labels)  # what the rows mean, beside how they were made
        os.replace(tmp, dest)
    except OSError as e:  # name the cache, not its temporary copy
        raise OSError(e.errno, f"{e.strerror or e} (writing its new copy {tmp.name}; the cache is unchanged)",
                      str(dest)) from None
    finally:
        tmp.unlink(missing_ok=True)


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


def read_split_rows(path: Path, split: str) -> L.Rows | None:
    """All rows of one split of a cache file, or None when the file or split is absent."""
    if not Path(path).exists():
        return None
    with h5py.File(path, "r") as f:
        return L.read_rows(f[split]) if split in f else None


def merge_caches(
    sources: Iterable[str | Path], dest: str | Path, order: dict[str, Sequence[str]] | None = None,
    meta: L.CacheMeta | None = None,
) -> L.CacheMeta:
    """Merge whole caches (e.g. one shard per rank) into `dest`, split by split, keyed by id.

    All sources must share fingerprint, embed_dim and labels. `order` maps a split to the id
    order its rows should follow (e.g. the manifest order); other splits keep source order.
    `meta` (compatible with the sources) gives `dest` its attributes; default: the first source's.
    """
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
    splits: dict[str, list[L.Rows]] = {}
    for src in sources:
        with h5py.File(src, "r") as f:
            for split in f:
                splits.setdefault(split, []).append(L.read_rows(f[split]))
    merged = {split: merge_rows(blocks, order.get(split)) for split, blocks in splits.items()}
    meta = meta or metas[0]
    why = meta.compatible_with(metas[0])
    if why:
        raise CacheError(f"{dest}: the merged rows were made differently from its attributes: {why}")
    write_cache_atomically(Path(dest), meta, merged)
    return meta
