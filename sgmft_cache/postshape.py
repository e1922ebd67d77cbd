"""Real post shapes in the cache (SPEC §3 version 2): modality masks and ragged per-post image sets."""
from __future__ import annotations

from typing import Sequence

import numpy as np

BLOCK_ROWS = 8192  # rows read at a time when checking that masked-out rows are zeros


def counts(offsets: np.ndarray) -> np.ndarray:
    """Images per post, [N] int64, from image_offsets [N+1]."""
    return np.diff(np.asarray(offsets, dtype=np.int64))


def offsets_of(counts_: Sequence[int] | np.ndarray) -> np.ndarray:
    """image_offsets [N+1] int64 (starting at 0) from images per post."""
    out = np.zeros(len(counts_) + 1, dtype=np.int64)
    np.cumsum(np.asarray(counts_, dtype=np.int64), out=out[1:])
    return out


def take(images: np.ndarray, offsets: np.ndarray, index) -> tuple[np.ndarray, np.ndarray]:
    """The image sets of posts `index` (in that order): (images [M', D], offsets [len(index)+1])."""
    index = np.asarray(index, dtype=np.int64).reshape(-1)
    starts, n = offsets[:-1][index], counts(offsets)[index]
    new = offsets_of(n)
    source = np.repeat(starts - new[:-1], n) + np.arange(new[-1], dtype=np.int64)
    return images[source], new


def concat(parts: Sequence[tuple[np.ndarray, np.ndarray]], dtype) -> tuple[np.ndarray, np.ndarray]:
    """Image sets of consecutive blocks of posts (one or more) as one: (images, offsets)."""
    images = np.concatenate([im.astype(dtype, copy=False) for im, _ in parts])
    return images, offsets_of(np.concatenate([counts(off) for _, off in parts]))


def first_images(images: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Each post's first image, [N, D]; zeros for a post without one."""
    n = counts(offsets)
    out = np.zeros((len(n), images.shape[1]), dtype=images.dtype)
    out[n > 0] = images[offsets[:-1][n > 0]]
    return out


def offsets_problem(offsets: np.ndarray, n_rows: int, n_images: int) -> str | None:
    """What is wrong with image_offsets for N posts and M images (None when it is valid)."""
    if offsets.ndim != 1 or len(offsets) != n_rows + 1:
        return f"has shape {offsets.shape}, expected [{n_rows + 1}] (one more than the posts)"
    if not np.issubdtype(offsets.dtype, np.integer):
        return f"has dtype {offsets.dtype}, expected int64"
    if offsets[0] != 0:
        return f"starts at {int(offsets[0])}, expected 0"
    step = np.diff(offsets)
    if (step < 0).any():
        return f"decreases at post {int(np.argmax(step < 0))}"
    if offsets[-1] != n_images:
        return f"ends at {int(offsets[-1])}, but there are {n_images} images"
    return None


def masks_problem(has_text: np.ndarray, has_image: np.ndarray, offsets: np.ndarray, ids) -> str | None:
    """What is wrong with the masks given the image sets (None when they agree)."""
    neither = ~(has_text | has_image)
    if neither.any():
        return f"post {ids[int(np.argmax(neither))]!r} has neither text nor image (such a post is skipped, not stored)"
    n = counts(offsets)
    disagree = has_image != (n > 0)
    if disagree.any():
        i = int(np.argmax(disagree))
        return f"post {ids[i]!r} has has_image={bool(has_image[i])} but {int(n[i])} image(s)"
    return None


def first_nonzero_masked(features, mask: np.ndarray) -> int | None:
    """The first row whose mask is false but whose feature row is not all zeros (reads `features` in blocks)."""
    if mask.all():
        return None
    for start in range(0, len(mask), BLOCK_ROWS):
        off = ~mask[start:start + BLOCK_ROWS]
        if not off.any():
            continue
        block = np.asarray(features[start:start + len(off)])
        bad = np.flatnonzero(off & (block != 0).any(axis=1))
        if len(bad):
            return start + int(bad[0])
    return None
