"""Seeded stratified splits, shared by extract (test carve-out) and fit (validation carve-out)."""
from __future__ import annotations

from typing import Sequence

import numpy as np


def stratified_holdout(labels: Sequence, fraction: float, seed: int) -> np.ndarray:
    """Boolean mask of rows held out: `fraction` of every class (rounded, at least one where a class
    has two or more rows), drawn with `seed`. Unlabelled rows (None / NaN / -1) are split at the same rate."""
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"holdout fraction must be between 0 and 1, got {fraction}")
    keys = np.array(["\0unlabelled" if _missing(x) else str(x) for x in labels], dtype=object)
    rng = np.random.default_rng(seed)
    held = np.zeros(len(keys), dtype=bool)
    for key in sorted(set(keys.tolist())):
        rows = np.flatnonzero(keys == key)
        n_out = int(round(fraction * len(rows)))
        if len(rows) >= 2:
            n_out = min(max(n_out, 1), len(rows) - 1)
        held[rng.permutation(rows)[:n_out]] = True
    return held


def _missing(x) -> bool:
    if x is None:
        return True
    if isinstance(x, float) and np.isnan(x):
        return True
    return isinstance(x, (int, np.integer)) and int(x) == -1
