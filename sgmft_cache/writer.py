"""Appending rows of one split to a cache in chunks, so that no finished chunk is ever lost.

Each flushed chunk becomes a small, complete cache file in `<cache>.staging/<split>/`, written
under a temporary name and renamed into place; `commit` merges the committed split and the
staged chunks into the cache (again written aside and swapped in). A process killed at any
moment — SIGKILL included — leaves the cache and every finished chunk readable, and a new
writer resumes from them.
"""
from __future__ import annotations

import os
import shutil
import weakref
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import h5py
import numpy as np

from sgmft_cache import layout as L, lock, postshape as P
from sgmft_cache.defaults import DEFAULT_CHUNK_ROWS
from sgmft_cache.diskfile import built_in_memory
from sgmft_cache.errors import CacheError
from sgmft_cache.merge import merge_rows, read_split_rows, remove_dead_temporaries, write_cache_atomically
from sgmft_cache.reader import split_ids
from sgmft_cache.validation import check_disjoint, validate


@dataclass(frozen=True)
class CommitSummary:
    split: str
    rows: int  # rows with features now in the split
    skipped: int  # ids listed as skipped, with a reason


def staging_dir(path: str | Path) -> Path:
    """Where the chunks of a cache wait to be committed."""
    path = Path(path)
    return path.with_name(path.name + ".staging")


class CacheWriter:
    """Buffers rows of one split and writes them to disk every `chunk_rows` rows."""

    def __init__(
        self,
        path: str | Path,
        split: str,
        meta: L.CacheMeta,
        *,
        chunk_rows: int = DEFAULT_CHUNK_ROWS,
        dtype: str = "float32",
        overwrite: bool = False,
    ):
        self.path, self.split, self.meta = Path(path), split, meta
        self.chunk_rows, self.dtype = chunk_rows, np.dtype(dtype)
        if self.dtype not in L.FEATURE_DTYPES:
            raise ValueError(f"feature dtype must be float32 or float16, not {dtype}")
        self.chunks = staging_dir(self.path) / split
        lock.acquire(self.path)  # one writer per cache file, until commit() or close()
        self._unlock = weakref.finalize(self, lock.release, self.path)
        try:
            self._start(overwrite)
        except BaseException:
            self.close()
            raise

    def _start(self, overwrite: bool) -> None:
        if overwrite:
            self.path.unlink(missing_ok=True)
            shutil.rmtree(staging_dir(self.path), ignore_errors=True)
        self._check_existing()
        remove_dead_temporaries(self.path)
        self.chunks.mkdir(parents=True, exist_ok=True)
        for stale in self.chunks.glob("*.tmp"):
            stale.unlink()  # a chunk that was being written when its process died
        self._buffer: list[L.Rows] = []
        self._buffered = 0
        self._next_chunk = 1 + max((int(p.stem.split("-")[1]) for p in self._chunk_files()), default=0)

    def _chunk_files(self) -> list[Path]:
        return sorted(self.chunks.glob("chunk-*.h5")) if self.chunks.exists() else []

    def _check_existing(self) -> None:
        files = [self.path] if self.path.exists() else []
        files += sorted(staging_dir(self.path).glob("*/chunk-*.h5"))
        for file in files:
            why = validate(file).compatible_with(self.meta)
            if why:
                raise CacheError(
                    f"{self.path}: holds features made differently ({why}); "
                    "overwrite it (sgmft extract --overwrite) or write to another cache file"
                )

    def done_ids(self) -> set[str]:
        """Ids of this split that already have features, committed or staged."""
        return set().union(*(split_ids(file, self.split) for file in [self.path, *self._chunk_files()]))

    def add(self, ids: Sequence[str], text, image, label, text_clean: Sequence[str] | None = None, *,
            has_text=None, has_image=None, images=None, image_offsets=None,
            dropped_images: Sequence[str] | None = None) -> None:
        """Buffer encoded rows; a chunk is written whenever `chunk_rows` rows are waiting.

        Post shapes (SPEC §3 v2) are optional: `images` [M, D] with `image_offsets` [N+1] give every
        usable image of every post (then `image` may be None: the first of each set); `has_text` marks
        the posts with a usable text. Rows whose mask is false are stored as zeros. Defaults: both
        modalities, one image per post.
        """
        ids = np.asarray(list(ids), dtype=object)
        n, d = len(ids), self.meta.embed_dim
        if (images is None) != (image_offsets is None):
            raise ValueError("add() needs images and image_offsets together")
        if images is not None:
            images, image_offsets = _as_array(images, self.dtype), np.asarray(image_offsets, dtype=np.int64)
            why = P.offsets_problem(image_offsets, n, len(images))
            if why or images.ndim != 2 or images.shape[1] != d:
                raise ValueError(f"add(): image_offsets {why}" if why else f"add(): images must be [M, {d}], got {images.shape}")
            image = P.first_images(images, image_offsets) if image is None else image
        text, image = _as_array(text, self.dtype), _as_array(image, self.dtype)
        label = np.asarray(label, dtype=np.int64).reshape(-1)
        if text.shape != (n, d) or image.shape != (n, d) or len(label) != n:
            raise ValueError(
                f"add() expects text/image [{n}, {d}] and {n} labels; got {text.shape}, {image.shape}, {label.shape}"
            )
        clean = np.asarray(list(text_clean) if text_clean is not None else [""] * n, dtype=object)
        no_skip = np.empty(0, dtype=object)
        rows = L.Rows(ids, text, image, label, clean, no_skip, no_skip, _mask(has_text, n), _mask(has_image, n),
                      images, image_offsets, None if dropped_images is None else np.asarray(list(dropped_images), object))
        self._append(_checked(rows), n)

    def skip(self, ids: Sequence[str], reasons: Sequence[str]) -> None:
        """Record rows that could not be encoded, each with a reason a person can act on."""
        rows = L.Rows.empty(self.meta.embed_dim, self.dtype)
        rows.skipped_id = np.asarray(list(ids), dtype=object)
        rows.skipped_reason = np.asarray(list(reasons), dtype=object)
        self._append(rows, 0)

    def _append(self, rows: L.Rows, n: int) -> None:
        self._buffer.append(rows)
        self._buffered += n
        if self._buffered >= self.chunk_rows:
            self.flush()

    def flush(self) -> None:
        """Write every buffered row as one chunk file (atomically)."""
        if not self._buffer:
            return
        rows = merge_rows(self._buffer)
        final = self.chunks / f"chunk-{self._next_chunk:06d}.h5"
        tmp = final.with_suffix(".tmp")
        with built_in_memory(tmp) as f:
            L.write_meta(f, self.meta)
            L.write_rows(f.create_group(self.split), rows)
            L.stamp_version(f)
        os.replace(tmp, final)
        self._next_chunk += 1
        self._buffer, self._buffered = [], 0

    def commit(self, order: Sequence[str] | None = None) -> CommitSummary:
        """Merge the committed split and all staged chunks into the cache file; rows follow `order`."""
        self.flush()
        files = self._chunk_files()
        blocks = [read_split_rows(self.path, self.split)] + [read_split_rows(p, self.split) for p in files]
        blocks = [b for b in blocks if b is not None] or [L.Rows.empty(self.meta.embed_dim, self.dtype)]
        rows = merge_rows(blocks, order)
        self._check_other_splits(set(rows.ids.tolist()))
        write_cache_atomically(self.path, self.meta, {self.split: rows}, keep_from=self.path)
        shutil.rmtree(self.chunks, ignore_errors=True)
        if staging_dir(self.path).exists() and not any(staging_dir(self.path).iterdir()):
            staging_dir(self.path).rmdir()
        self.close()
        return CommitSummary(self.split, len(rows), len(rows.skipped_id))

    def close(self) -> None:
        """Let other writers at the cache (commit does this); buffered rows not flushed are dropped."""
        self._unlock()


    def _check_other_splits(self, ids: set[str]) -> None:
        """Refuse (before writing) rows whose ids already sit in another split of the cache."""
        if not self.path.exists():
            return
        with h5py.File(self.path, "r") as f:
            others = {name: set(L.read_strings(g, L.ID).tolist())
                      for name, g in f.items() if isinstance(g, h5py.Group) and name != self.split}
        try:
            check_disjoint(self.split, ids, others)
        except CacheError as e:
            raise CacheError(f"{self.path}: {e}") from None


def _mask(x, n: int) -> np.ndarray | None:
    if x is None:
        return None
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    mask = np.asarray(x, dtype=bool).reshape(-1)
    if len(mask) != n:
        raise ValueError(f"add(): a mask has {len(mask)} entries for {n} rows")
    return mask


def _checked(rows: L.Rows) -> L.Rows:
    """Zero the rows a mask marks missing; refuse masks or first images that disagree with the image sets."""
    why = P.masks_problem(rows.has_text, rows.has_image, rows.image_offsets, rows.ids)
    if why:
        raise ValueError(f"add(): {why}")
    if len(rows.dropped_images) != len(rows):
        raise ValueError(f"add(): dropped_images has {len(rows.dropped_images)} entries for {len(rows)} rows")
    rows.text = np.where(rows.has_text[:, None], rows.text, 0).astype(rows.text.dtype, copy=False)
    rows.image = np.where(rows.has_image[:, None], rows.image, 0).astype(rows.image.dtype, copy=False)
    if not np.array_equal(rows.image, P.first_images(rows.images, rows.image_offsets), equal_nan=True):
        raise ValueError("add(): image must be each post's first image in images (or None to take it from there)")
    return rows


def _as_array(x, dtype: np.dtype) -> np.ndarray:
    if hasattr(x, "detach"):  # a torch tensor
        x = x.detach().float().cpu().numpy()
    return np.asarray(x).astype(dtype, copy=False)


def write_split(
    path: str | Path, split: str, meta: L.CacheMeta, *, ids, text, image, label, text_clean=None,
    has_text=None, has_image=None, images=None, image_offsets=None, dropped_images=None, **kwargs
) -> CommitSummary:
    """Write (or extend) one split of a cache in one call — the simplest way to make a cache."""
    writer = CacheWriter(path, split, meta, **kwargs)
    writer.add(ids, text, image, label, text_clean, has_text=has_text, has_image=has_image, images=images,
               image_offsets=image_offsets, dropped_images=dropped_images)
    return writer.commit()
