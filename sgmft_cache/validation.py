"""Checks that a file is a valid sgmft feature cache, naming the first thing that is wrong."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Iterable

import h5py
import numpy as np

from sgmft_cache import layout as L, postshape as P
from sgmft_cache.errors import CacheError


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
    for name in (L.ATTR_VERSION, L.ATTR_EMBED_DIM):  # hand-made caches: "1024" is not an integer attribute
        value = f.attrs[name]
        if not isinstance(value, (int, np.integer)) or isinstance(value, (bool, np.bool_)):
            raise CacheError(f"root attribute {name} is {value!r} ({type(value).__name__}), expected an integer")
    version = int(f.attrs[L.ATTR_VERSION])
    if version not in L.READABLE_VERSIONS:
        raise CacheError(f"cache version {version}; this sgmft reads versions 1 and 2 (upgrade sgmft)")
    if version == 1 and any(L.is_v2(f[s]) for s in _split_names(f)):
        raise CacheError("version 1 but a split holds version-2 datasets (has_text, images, ...): set version=2")
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
    for name in (L.ID, L.TEXT_CLEAN, L.SKIPPED_ID, L.SKIPPED_REASON):
        if name in group and h5py.check_string_dtype(group[name].dtype) is None:
            raise CacheError(f"{where}/{name} has dtype {group[name].dtype}, expected utf-8 strings (write ids as text)")
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
    if L.DROPPED_IMAGES in group and group[L.DROPPED_IMAGES].shape != (n,):
        raise CacheError(f"{where}/{L.DROPPED_IMAGES} has shape {group[L.DROPPED_IMAGES].shape}, expected [{n}]")
    if L.is_v2(group):
        _check_post_shapes(group, meta, ids, where)
    return set(ids.tolist())


def _check_post_shapes(group: h5py.Group, meta: L.CacheMeta, ids: np.ndarray, where: str) -> None:
    """The version-2 datasets (SPEC §3): all four, offsets that index `images`, masks that match the rows."""
    missing = [name for name in L.V2_DATASETS if name not in group]
    if missing:
        raise CacheError(f"{where} has some version-2 datasets but not {', '.join(missing)}")
    n = len(ids)
    for name in (L.HAS_TEXT, L.HAS_IMAGE):
        if group[name].shape != (n,) or group[name].dtype != np.bool_:
            raise CacheError(f"{where}/{name} is {group[name].dtype} {group[name].shape}, expected bool [{n}]")
    images = group[L.IMAGES]
    if images.ndim != 2 or images.shape[1] != meta.embed_dim or images.dtype not in L.FEATURE_DTYPES:
        raise CacheError(f"{where}/{L.IMAGES} is {images.dtype} {images.shape}, expected float [M, {meta.embed_dim}]")
    offsets = group[L.IMAGE_OFFSETS][...]
    why = P.offsets_problem(offsets, n, images.shape[0])
    if why:
        raise CacheError(f"{where}/{L.IMAGE_OFFSETS} {why}")
    has_text, has_image = group[L.HAS_TEXT][...], group[L.HAS_IMAGE][...]
    why = P.masks_problem(has_text, has_image, offsets, ids)
    if why:
        raise CacheError(f"{where}: {why}")
    for name, mask in ((L.TEXT, has_text), (L.IMAGE, has_image)):
        row = P.first_nonzero_masked(group[name], mask)
        if row is not None:
            raise CacheError(f"{where}/{name} row of post {ids[row]!r} is not zero, but /{L.HAS_TEXT if name == L.TEXT else L.HAS_IMAGE} says it is missing")

