"""Synthetic feature caches whose class signal is split across the two modalities.

Class c is the pair (c // 2, c % 2): the text vector carries only c // 2 and the image vector
only c % 2, each under Gaussian noise, so neither modality alone can tell all classes apart
and a head that fuses both can. Used by tests, benchmarks and as a stand-in cache.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from sgmft_cache import CacheMeta, Provenance, write_split

CLASSES = ("home", "school", "work", "shopping_center", "cinema", "travel", "restaurant")


def split_signal_features(
    labels: np.ndarray, dim: int, noise: float, rng: np.random.Generator, means: tuple[np.ndarray, np.ndarray]
) -> tuple[np.ndarray, np.ndarray]:
    """(text, image) [N, dim] for class ids `labels`; `means` = (text means by c // 2, image means by c % 2)."""
    text = means[0][labels // 2] + noise * rng.standard_normal((len(labels), dim))
    image = means[1][labels % 2] + noise * rng.standard_normal((len(labels), dim))
    return text.astype(np.float32), image.astype(np.float32)


def make_synthetic_cache(
    path: str | Path,
    *,
    sizes: dict[str, int] | None = None,
    dim: int = 64,
    classes: tuple[str, ...] = CLASSES,
    noise: float = 0.5,
    seed: int = 0,
    dtype: str = "float32",
) -> CacheMeta:
    """Write a cache with one split per entry of `sizes` (default train 700, test 175), balanced classes."""
    sizes = sizes or {"train": 700, "test": 175}
    rng = np.random.default_rng(seed)
    k = len(classes)
    means = (rng.standard_normal(((k + 1) // 2, dim)), rng.standard_normal((2, dim)))
    meta = CacheMeta(
        model="synthetic", embed_dim=dim, labels=tuple(classes), fingerprint=f"synthetic-d{dim}-s{seed}-n{noise}",
        provenance=Provenance(encoder_note="synthetic features: class signal split across text and image, no encoder",
                              placeholder=True),
    )
    for split, n in sizes.items():
        labels = np.arange(n) % k
        rng.shuffle(labels)
        text, image = split_signal_features(labels, dim, noise, rng, means)
        ids = [f"{split}-{i:06d}" for i in range(n)]
        write_split(path, split, meta, ids=ids, text=text, image=image, label=labels, dtype=dtype,
                    text_clean=[f"synthetic {classes[c]}" for c in labels])
    return meta
