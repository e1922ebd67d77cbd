"""The cached splits fit trains, chooses and tests on — loaded once, kept in memory."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sgmft_cache import CacheError, CacheMeta, SplitData, load_cache, validate
from pipeline.splits import stratified_holdout


@dataclass(frozen=True)
class CachedSplits:
    """What a cache holds for fitting, before any seed-dependent carving."""

    path: str
    meta: CacheMeta
    train: SplitData
    val: SplitData | None
    test: SplitData


@dataclass(frozen=True)
class FitData:
    meta: CacheMeta
    train: SplitData  # labelled rows only
    val: SplitData  # labelled rows only
    test: SplitData  # labelled rows only
    val_source: str  # where the validation rows came from, for the report


def load_cached_splits(path: str, max_memory: str | None = None) -> CachedSplits:
    """Read train, test and (when present) val of a cache; the cache is validated once. A train split whose
    features exceed `max_memory` stays on disk, to be streamed (pipeline/fit/stream.py)."""
    from pipeline.fit.stream import StreamedSplit, feature_bytes, parse_memory

    budget = parse_memory(max_memory) if max_memory else None
    validate(path, require_splits=["train", "test"])
    streamed = budget is not None and feature_bytes(path, "train") > budget
    # features stay in their stored dtype (an fp16 cache costs its fp16 bytes); Batches casts one batch at a time
    meta, loaded = load_cache(path, required=["test"] if streamed else ["train", "test"], optional=["val"],
                              keep_dtype=True)
    train = StreamedSplit.open(path, "train", budget) if streamed else loaded["train"]
    return CachedSplits(path, meta, train, loaded.get("val"), loaded["test"])


def prepare(splits: CachedSplits, val_fraction: float, seed: int) -> FitData:
    """Labelled train/val/test; val is the cache's own split or a stratified seeded carve-out of train."""
    train = _labelled(splits.train)
    classes = sorted(set(train.label.tolist()))
    if len(classes) < 2:
        names = [splits.meta.labels[c] for c in classes]
        raise CacheError(
            f"{splits.path}: /train has labelled rows of {len(classes)} class(es) {names}; fit needs at least two"
        )
    test = _labelled(splits.test)
    if len(test) == 0:
        raise CacheError(f"{splits.path}: /test has no labelled rows, so there is nothing to evaluate on")
    if splits.val is not None and len(_labelled(splits.val)):
        return FitData(splits.meta, train, _labelled(splits.val), test, "the cache's val split")
    held = stratified_holdout(train.label.numpy(), val_fraction, seed)
    if held.all() or not held.any():
        raise CacheError(f"{splits.path}: /train has too few rows ({len(train)}) to hold out a validation set")
    source = f"{val_fraction:.0%} of train, stratified, seed {seed}"
    val = train.subset(np.flatnonzero(held))
    val = val.load() if hasattr(val, "groups") else val  # a streamed train's carve-out is read into memory
    return FitData(splits.meta, train.subset(np.flatnonzero(~held)), val, test, source)


def _labelled(split: SplitData) -> SplitData:
    labelled = split.label.numpy() >= 0
    return split if labelled.all() else split.subset(np.flatnonzero(labelled))  # no copy when every row is
