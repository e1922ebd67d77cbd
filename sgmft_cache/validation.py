"""Checks that a file is a valid sgmft feature cache, naming the first thing that is wrong."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Iterable

import h5py
import numpy as np

from sgmft_cache import layout as L
from sgmft_cache.errors import CacheError
from sgmft_cache.segments import Placement, segment_dir


def validate(path: str | Path, require_splits: Iterable[str] = ()) -> L.CacheMeta:
    """Return the cache's metadata, or raise CacheError("<path>: <what is wrong>")."""
    path = Path(path)
    if not path.exists():
        raise CacheError(f"{path}: no such file (make one with `sgmft extract`, or pass --cache)")
    if path.is_dir():
        raise CacheError(f"{path}: is a directory, not a feature cache file")
    if not h5py.is_hdf5(path):
        raise CacheError(f"{path}: not an HDF5 file, so not a feature cache")
    try:
        with h5py.File(path, "r") as f:
            meta = _check_root(f)
            for split in require_splits:
                if split not in f:
                    present = ", ".join(_split_names(f)) or "none"
                    raise CacheError(
                    f"split '{split}' is missing (splits present: {present}); "
                    f"write it with `sgmft extract --split {split}`"
                )
            seen: dict[str, set[str]] = {}
            for split in _split_names(f):
                ids = _check_split(f[split], meta)
                check_disjoint(split, ids, seen)
                seen[split] = ids
    except CacheError as e:
        raise CacheError(f"{path}: {e}") from None
    except OSError as e:
        raise CacheError(f"{path}: cannot be read as HDF5 ({e})") from None
    return meta


def _split_names(f: h5py.File) -> list[str]:
    return [name for name, obj in f.items() if isinstance(obj, h5py.Group)]


def _check_root(f: h5py.File) -> L.CacheMeta:
    missing = [a for a in L.REQUIRED_ATTRS if a not in f.attrs]
    if missing:
        raise CacheError(f"missing root attribute(s) {', '.join(missing)}: not written by sgmft")
    if L._as_str(f.attrs[L.ATTR_FORMAT]) != L.FORMAT:
        raise CacheError(f"format attribute is {f.attrs[L.ATTR_FORMAT]!r}, expected {L.FORMAT!r}")
    version = int(f.attrs[L.ATTR_VERSION])
    if version != L.VERSION:
        raise CacheError(f"cache version {version}; this sgmft reads version {L.VERSION}")
    if int(f.attrs[L.ATTR_EMBED_DIM]) <= 0:
        raise CacheError("embed_dim must be a positive integer")
    try:
        labels = json.loads(L._as_str(f.attrs[L.ATTR_LABELS]))
    except json.JSONDecodeError:
        raise CacheError("labels attribute is not a JSON list") from None
    if not isinstance(labels, list) or not all(isinstance(x, str) for x in labels):
        raise CacheError("labels attribute must be a JSON list of class names")
    if len(set(labels)) != len(labels):
        raise CacheError("labels attribute repeats a class name")
    return L.read_meta(f)


def check_disjoint(split: str, ids: set[str], others: dict[str, set[str]]) -> None:
    """A post belongs to one split: the same id in two splits would leak test posts into training."""
    for other, other_ids in others.items():
        both = ids & other_ids
        if both:
            raise CacheError(
                f"{len(both)} id(s) are in both /{other} and /{split}, e.g. {sorted(both)[0]!r}: a post must be in "
                "one split (were splits extracted with different --seed, --test-fraction or split columns?); "
                "re-extract into a new cache or with --overwrite"
            )


def _check_split(group: h5py.Group, meta: L.CacheMeta) -> set[str]:
    """Check one split group; return its ids."""
    where = f"/{group.name.strip('/')}"
    for name in (L.ID, L.TEXT, L.IMAGE, L.LABEL):
        if name not in group:
            raise CacheError(f"dataset {where}/{name} is missing")
    n = group[L.ID].shape[0] if group[L.ID].ndim == 1 else -1
    if n < 0:
        raise CacheError(f"{where}/{L.ID} must be one-dimensional")
    placement = Placement.of(group)
    missing = [n for n in (placement.files if placement else ()) if not (segment_dir(group.file.filename) / n).is_file()]
    if missing:
        raise CacheError(f"{where}: segment file {missing[0]} is missing from {segment_dir(group.file.filename)} "
                         f"({len(missing)} missing): a cache is its file and that folder; copy or move both")
    for name in L.FEATURES:
        ds = group[name]
        if ds.ndim != 2 or ds.shape[1] != meta.embed_dim:
            raise CacheError(f"{where}/{name} has shape {ds.shape}, expected [N, {meta.embed_dim}]")
        if ds.dtype not in L.FEATURE_DTYPES:
            raise CacheError(f"{where}/{name} has dtype {ds.dtype}, expected float32 or float16")
    for name in (L.TEXT, L.IMAGE, L.LABEL, L.TEXT_CLEAN):
        if name in group and group[name].shape[0] != n:
            raise CacheError(f"row counts differ: {where}/{name} has {group[name].shape[0]} rows, {where}/id has {n}")
    if not np.issubdtype(group[L.LABEL].dtype, np.integer):
        raise CacheError(f"{where}/{L.LABEL} has dtype {group[L.LABEL].dtype}, expected int64")
    labels = group[L.LABEL][...]
    bad = (labels < L.UNLABELED) | (labels >= len(meta.labels))
    if bad.any():
        raise CacheError(f"{where}/{L.LABEL} holds {int(labels[bad][0])}, outside -1..{len(meta.labels) - 1}")
    ids = L.read_strings(group, L.ID)
    if len(set(ids)) != len(ids):
        uniq, counts = np.unique(ids.astype(str), return_counts=True)
        raise CacheError(f"{where}/{L.ID} repeats id {str(uniq[counts > 1][0])!r}")
    if (L.SKIPPED_ID in group) != (L.SKIPPED_REASON in group) or (
        L.SKIPPED_ID in group and group[L.SKIPPED_ID].shape != group[L.SKIPPED_REASON].shape
    ):
        raise CacheError(f"{where}/{L.SKIPPED_ID} and {where}/{L.SKIPPED_REASON} do not match")
    return set(ids.tolist())

