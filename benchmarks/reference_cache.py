"""The cache path as it was before issue 13 (commit rewrites the file, merge and load in memory): the scale reference.

A copy of the minimal logic of sgmft_cache at cde66fa (CacheWriter.flush/commit, merge_rows,
merge_caches, load_cache), so that it survives the rewrite of the writer: each chunk is a small
cache file staged beside the cache; `commit` reads the committed split and every chunk into memory,
concatenates, keeps each id once, sorts by the manifest order and writes the whole file again;
`merge` does the same over shard files; `load` turns features into float32 tensors and checks them.
Only what the benchmark exercises is kept (no skip lists, no provenance, no validation).
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Sequence

import h5py
import numpy as np
import torch

FIELDS = ("id", "text", "image", "label", "text_clean")
STR = h5py.string_dtype("utf-8")


def write_meta(f: h5py.File, embed_dim: int, labels: Sequence[str], fingerprint: str) -> None:
    f.attrs.update(format="sgmft-cache", version=1, model="synthetic", embed_dim=embed_dim,
                   labels=json.dumps(list(labels)), fingerprint=fingerprint)


def write_rows(group: h5py.Group, rows: dict) -> None:
    for name in FIELDS:
        values = rows[name]
        group.create_dataset(name, data=values.astype(object) if values.dtype == object else values,
                             dtype=STR if values.dtype == object else None)


def read_rows(group: h5py.Group) -> dict:
    rows = {name: group[name][...] for name in ("text", "image", "label")}
    rows.update({name: group[name].asstr()[...].astype(object) for name in ("id", "text_clean")})
    return rows


def stage_chunk(cache: Path, split: str, index: int, rows: dict, meta: dict) -> Path:
    """One flushed chunk: a complete little cache file, written aside and renamed (CacheWriter.flush)."""
    folder = Path(f"{cache}.staging") / split
    folder.mkdir(parents=True, exist_ok=True)
    final = folder / f"chunk-{index:06d}.h5"
    tmp = final.with_suffix(".tmp")
    with h5py.File(tmp, "w") as f:
        write_meta(f, **meta)
        write_rows(f.create_group(split), rows)
    os.replace(tmp, final)
    return final


def merge_rows(blocks: list[dict], order: Sequence[str] | None = None) -> dict:
    """Concatenate, keep each id's first row, sort by `order` (the old merge_rows, without skips)."""
    rows = {name: np.concatenate([b[name] for b in blocks]) for name in FIELDS}
    _, first = np.unique(rows["id"].astype(str), return_index=True)
    keep = np.sort(first)
    if order is not None:
        rank = {id_: k for k, id_ in enumerate(order)}
        keep = keep[np.argsort([rank.get(i, len(rank)) for i in rows["id"][keep]], kind="stable")]
    return {name: values[keep] for name, values in rows.items()}


def write_atomically(dest: Path, meta: dict, groups: dict[str, dict], keep_from: Path | None = None) -> None:
    tmp = dest.with_name(f".{dest.name}.tmp-{os.getpid()}")
    with h5py.File(tmp, "w") as out:
        write_meta(out, **meta)
        if keep_from is not None and keep_from.exists():
            with h5py.File(keep_from, "r") as old:
                for split in old:
                    if split not in groups:
                        old.copy(old[split], out, name=split)
        for split, rows in groups.items():
            write_rows(out.create_group(split), rows)
    os.replace(tmp, dest)


def commit(cache: Path, split: str, meta: dict, order: Sequence[str] | None = None) -> int:
    """Committed split + every staged chunk -> memory -> the whole cache written again; returns the rows."""
    chunks = sorted((Path(f"{cache}.staging") / split).glob("chunk-*.h5"))
    blocks = []
    for file in ([cache] if cache.exists() else []) + chunks:
        with h5py.File(file, "r") as f:
            if split in f:
                blocks.append(read_rows(f[split]))
    rows = merge_rows(blocks, order)
    others: set[str] = set()
    if cache.exists():
        with h5py.File(cache, "r") as f:
            for name in f:
                if name != split:
                    others |= set(f[name]["id"].asstr()[...].tolist())
    if others & set(rows["id"].tolist()):
        raise ValueError("an id is in two splits")
    write_atomically(cache, meta, {split: rows}, keep_from=cache)
    for chunk in chunks:
        chunk.unlink()
    return len(rows["id"])


def merge(sources: Sequence[Path], dest: Path, meta: dict, order: dict[str, Sequence[str]] | None = None) -> None:
    """Every split of every source into memory, merged by id, written as one file (the old merge_caches)."""
    splits: dict[str, list[dict]] = {}
    for src in sources:
        with h5py.File(src, "r") as f:
            for split in f:
                splits.setdefault(split, []).append(read_rows(f[split]))
    order = order or {}
    write_atomically(dest, meta, {s: merge_rows(blocks, order.get(s)) for s, blocks in splits.items()})


def load(cache: Path, split: str) -> dict:
    """The old load_cache of one split: features as float32 tensors, checked finite."""
    with h5py.File(cache, "r") as f:
        rows = read_rows(f[split])
    data = dict(ids=rows["id"].tolist(), text=torch.from_numpy(rows["text"].astype(np.float32, copy=False)),
                image=torch.from_numpy(rows["image"].astype(np.float32, copy=False)),
                label=torch.from_numpy(rows["label"].astype(np.int64)), text_clean=rows["text_clean"].tolist())
    for name in ("text", "image"):
        if not torch.isfinite(data[name]).all(dim=1).all():
            raise ValueError(f"/{split}/{name} holds NaN or Inf")
    return data
