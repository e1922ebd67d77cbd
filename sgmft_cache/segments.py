"""Where a cache's features lie: immutable segment files, joined into /<split>/<feature> by HDF5 virtual datasets.

A cache is its file `feats.h5` and the folder `feats.h5.d/` beside it. The file holds the root
attributes and, per split, the small per-row datasets (id, label, text_clean, the skip lists) as
ordinary datasets, and the features (text, image) as *virtual* datasets: row ranges of segment
files in the folder, listed in order by the split's `segments` attribute. Readers see ordinary
[N, D] datasets (h5py, h5dump, any HDF5 tool), as SPEC §3 says; a segment that is missing reads
as NaN, and `validate` names it.

Why segments: a segment, once renamed into place, is never written again, and the file is only
ever replaced whole (written aside, then renamed). So a commit writes its new rows' features once
(I/O O(new rows)) and rewrites only the small per-row datasets; memory stays O(block) for the
features; and SIGKILL at any moment leaves the old file with its old segments, or the new file
with the new ones — a segment that no file references yet is an orphan, deleted by the next writer.
Move or copy a cache as its file *and* its folder.
"""
from __future__ import annotations

import json
import os
import uuid
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import h5py
import numpy as np

from sgmft_cache import layout as L, ragged as R
from sgmft_cache.diskfile import written_by_hdf5

SEGMENTS = "segments"  # attribute of /<split>: JSON {"files": {name: [rows, dtype]}, "runs": [[name, start, rows]]}
IMAGE_SEGMENTS = "image_segments"  # the same for /<split>/images (version 2)
BLOCK_ROWS = 4096  # rows gathered at a time: what bounds a commit's or merge's memory
MAX_RUNS = 4096  # beyond this many runs a commit copies the split's features into one segment instead


def segment_dir(cache: str | Path) -> Path:
    cache = Path(cache)
    return cache.with_name(cache.name + ".d")


@dataclass
class Placement:
    """Where each row of a split has its features: row k lies at row[k] of segment file names[file[k]]."""

    files: dict[str, tuple[int, str]]  # segment file name ("name#dataset": another dataset) -> (rows, dtype)
    file: np.ndarray  # [N] index into list(files)
    row: np.ndarray  # [N]

    @classmethod
    def empty(cls) -> "Placement":
        return cls({}, np.zeros(0, np.int64), np.zeros(0, np.int64))

    @classmethod
    def whole(cls, name: str, rows: int, dtype) -> "Placement":
        return cls({name: (rows, np.dtype(dtype).name)}, np.zeros(rows, np.int64), np.arange(rows, dtype=np.int64))

    @classmethod
    def of(cls, group: h5py.Group, attr: str = SEGMENTS) -> "Placement | None":
        """The split's placement, or None for a split stored in the file itself (older caches)."""
        if attr not in group.attrs:
            return None
        record = json.loads(L._as_str(group.attrs[attr]))
        files = {name: (int(rows), str(dtype)) for name, (rows, dtype) in record["files"].items()}
        index = {name: k for k, name in enumerate(files)}
        runs = record["runs"]
        file = np.concatenate([np.full(n, index[name], np.int64) for name, _, n in runs] or [np.zeros(0, np.int64)])
        row = np.concatenate([np.arange(a, a + n, dtype=np.int64) for _, a, n in runs] or [np.zeros(0, np.int64)])
        return cls(files, file, row)

    def __len__(self) -> int:
        return len(self.file)

    def then(self, other: "Placement") -> "Placement":
        files = {**self.files, **other.files}
        index = {name: k for k, name in enumerate(files)}
        remap = np.array([index[name] for name in other.files], dtype=np.int64)
        return Placement(files, np.concatenate([self.file, remap[other.file] if len(other) else other.file]),
                         np.concatenate([self.row, other.row]))

    def take(self, index: np.ndarray) -> "Placement":
        return Placement(self.files, self.file[index], self.row[index])

    def reading(self, dataset: str) -> "Placement":
        """The same rows of another dataset of the same files (a version-1 split's `image` as its `images`); the
        placement is of a split's `text` and `image`, whose files are named without a "#"."""
        return Placement({f"{k}#{dataset}": v for k, v in self.files.items()}, self.file, self.row)

    def runs(self) -> list[tuple[str, int, int]]:
        """(file, first row, rows) of each maximal stretch of rows lying one after another in one file."""
        if not len(self):
            return []
        names = list(self.files)
        breaks = np.flatnonzero((np.diff(self.file) != 0) | (np.diff(self.row) != 1)) + 1
        starts = np.concatenate([[0], breaks])
        ends = np.concatenate([breaks, [len(self)]])
        return [(names[self.file[a]], int(self.row[a]), int(b - a)) for a, b in zip(starts, ends)]

    def record(self) -> str:
        used = {name for name, _, _ in self.runs()}
        return json.dumps({"files": {k: list(v) for k, v in self.files.items() if k in used},
                           "runs": [list(r) for r in self.runs()]})

    def dtype(self) -> np.dtype:
        dtypes = {dtype for name, (rows, dtype) in self.files.items() if rows}
        return np.dtype(dtypes.pop() if len(dtypes) == 1 else np.float32)


def referenced(cache: str | Path) -> set[str]:
    """Segment file names the cache file refers to (empty when it has none or does not exist)."""
    if not Path(cache).is_file():
        return set()
    with h5py.File(cache, "r") as f:
        return {name.partition("#")[0] for g in f.values() if isinstance(g, h5py.Group)
                for attr in (SEGMENTS, IMAGE_SEGMENTS) if attr in g.attrs
                for name in json.loads(L._as_str(g.attrs[attr]))["files"]}


def remove_orphans(cache: str | Path) -> None:
    """Delete segment files no cache file refers to: those of a commit or merge killed before its swap."""
    folder, keep = segment_dir(cache), referenced(cache)
    if folder.is_dir():
        for file in folder.iterdir():
            if file.name not in keep:
                file.unlink(missing_ok=True)
        if not any(folder.iterdir()):
            folder.rmdir()


def write_segment(cache: Path, split: str, sources: Sequence[Path], src: np.ndarray, row: np.ndarray,
                  dim: int, dtype: np.dtype, v2: bool) -> tuple[Placement, Placement | None]:
    """The features of rows (source file src[k], row row[k]) of /<split>, in that order, as a new segment file;
    with `v2` also every image of those posts. Returns where the rows and (v2) the image rows now lie."""
    folder = segment_dir(cache)
    folder.mkdir(parents=True, exist_ok=True)
    name = f"{split}-{uuid.uuid4().hex[:12]}.h5"
    tmp = folder / f"{name}.tmp"
    with written_by_hdf5(tmp), h5py.File(tmp, "w") as out, ExitStack() as stack:
        files = open_all(stack, sources)
        groups = [f[split] if f is not None and split in f else None for f in files]
        group = out.create_group(split)
        for feature in L.FEATURES:
            ds = group.create_dataset(feature, shape=(len(src), dim), dtype=dtype)
            gather([g[feature] if g is not None else None for g in groups], src, row, ds, 0)
        images = None
        if v2:
            isrc, irow = R.image_rows([R.counts_of(g) for g in groups], src, row)
            ds = group.create_dataset(L.IMAGES, shape=(len(isrc), dim), dtype=dtype)
            gather([g[R.image_source(g)] if g is not None else None for g in groups], isrc, irow, ds, 0)
            images = Placement.whole(f"{name}#{L.IMAGES}", len(isrc), dtype)
    fsync(tmp)
    os.replace(tmp, folder / name)
    return Placement.whole(name, len(src), dtype), images


def open_all(stack: ExitStack, paths: Sequence[Path]) -> list[h5py.File | None]:
    """Each file open for reading until `stack` closes (None for one that does not exist)."""
    return [stack.enter_context(h5py.File(p, "r")) if Path(p).is_file() else None for p in paths]


def gather(datasets: Sequence[h5py.Dataset | None], src: np.ndarray, row: np.ndarray, out: h5py.Dataset, offset: int,
           block: int | None = None, default=None) -> None:
    """out[offset + k] = datasets[src[k]][row[k]], `block` rows at a time (each source read in increasing row order)."""
    block = block or BLOCK_ROWS
    for start in range(0, len(src), block):
        s, r = src[start:start + block], row[start:start + block]
        values = None
        for k in np.unique(s):
            at = np.flatnonzero(s == k)
            rows = r[at]
            by_row = np.argsort(rows, kind="stable")
            got = read_rows(datasets[k], rows[by_row], default)
            if values is None:
                values = np.empty((len(s),) + got.shape[1:], dtype=out.dtype if got.dtype != object else object)
            values[at[by_row]] = got
        if values is not None:
            out[offset + start:offset + start + len(s)] = values


def read_rows(ds: h5py.Dataset | None, rows: np.ndarray, default=None) -> np.ndarray:
    """ds[rows] for increasing rows: a slice per run of consecutive rows, read into its place in the result,
    when there are few runs (the usual case: h5py's point selections are slow), else a point selection.

    An absent dataset (an optional one older files lack) reads as `default` (empty strings when None)."""
    if ds is None:
        return np.full(len(rows), "" if default is None else default, dtype=object if default is None else None)
    text = h5py.check_string_dtype(ds.dtype) is not None
    breaks = np.flatnonzero(np.diff(rows) != 1) + 1
    if not len(rows):
        return np.empty((0,) + ds.shape[1:], dtype=object if text else ds.dtype)
    if len(breaks) >= max(1, len(rows) // 64):  # scattered rows: one point selection
        return ds.asstr()[rows].astype(object) if text else ds[rows]
    starts, ends = np.concatenate([[0], breaks]), np.concatenate([breaks, [len(rows)]])
    if text:
        return np.concatenate([ds.asstr()[int(rows[a]):int(rows[b - 1]) + 1] for a, b in zip(starts, ends)]).astype(object)
    out = np.empty((len(rows),) + ds.shape[1:], dtype=ds.dtype)  # each run read straight into its place: no copies
    for a, b in zip(starts, ends):
        ds.read_direct(out, np.s_[int(rows[a]):int(rows[b - 1]) + 1], np.s_[int(a):int(b)])
    return out


def virtual_feature(group: h5py.Group, name: str, placement: Placement, split: str, dim: int, cache: Path) -> None:
    """/<split>/<name> of `cache`: each run of the placement a row range of a segment's /<split>/<name>.

    Missing segments read as NaN; the dtype is the segments' (float32 where they differ: HDF5 converts)."""
    layout = h5py.VirtualLayout(shape=(len(placement), dim), dtype=placement.dtype())
    at = 0
    for key, start, rows in placement.runs():
        total, dtype = placement.files[key]
        file, _, dataset = key.partition("#")
        source = h5py.VirtualSource(_literal(f"{segment_dir(cache).name}/{file}"),
                                    _literal(f"/{split}/{dataset or name}"), shape=(total, dim), dtype=np.dtype(dtype))
        layout[at:at + rows] = source[start:start + rows]
        at += rows
    group.create_virtual_dataset(name, layout, fillvalue=np.nan)


def _literal(name: str) -> str:
    """A virtual source's file or dataset name as HDF5 reads it: "%" starts a printf-like pattern, "%%" is "%"."""
    return name.replace("%", "%%")


def fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
