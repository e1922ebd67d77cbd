"""Per-post image sets (SPEC §3 v2) through a commit or merge: images per post, and which image rows go where."""
from __future__ import annotations

from typing import Sequence

import h5py
import numpy as np

from sgmft_cache import layout as L, postshape as P


def image_source(group: h5py.Group) -> str:
    """The dataset holding a split's image rows: `images`, or `image` for a version-1 split (one per post)."""
    return L.IMAGES if L.IMAGES in group else L.IMAGE


def counts_of(group: h5py.Group | None) -> np.ndarray:
    """Images per post of a split ([N] int64): from image_offsets, or 1 each in a version-1 split."""
    if group is None:
        return np.zeros(0, np.int64)
    if L.IMAGE_OFFSETS in group:
        return P.counts(group[L.IMAGE_OFFSETS][...])
    return np.ones(group[L.ID].shape[0], np.int64)


def image_rows(counts: Sequence[np.ndarray], src: np.ndarray, row: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(source, image row) of every image of posts (src[k], row[k]), post by post."""
    starts = [P.offsets_of(c)[:-1] for c in counts]
    n = np.array([counts[s][r] for s, r in zip(src, row)], dtype=np.int64)
    first = np.array([starts[s][r] for s, r in zip(src, row)], dtype=np.int64)
    out = P.offsets_of(n)
    irow = np.repeat(first - out[:-1], n) + np.arange(out[-1], dtype=np.int64)
    return np.repeat(src, n), irow


def reordered(counts: np.ndarray, by: np.ndarray) -> np.ndarray:
    """Index of image rows after the posts are put in order `by` (post by post)."""
    offsets = P.offsets_of(counts)
    n = counts[by]
    out = P.offsets_of(n)
    return np.repeat(offsets[:-1][by] - out[:-1], n) + np.arange(out[-1], dtype=np.int64)
