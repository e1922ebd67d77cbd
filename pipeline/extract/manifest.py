"""Reading a manifest of posts (SPEC §1, §7): CSV, TSV, JSONL or Parquet, one row per post.

A post names its pictures in `image` (one path) and/or `images` (several: `|`-separated in CSV/TSV,
a list in JSONL/Parquet); either may be empty, and so may `text`. Every problem with the manifest as
a whole (missing file or column, duplicate ids, a bad split name) is raised here as one SgmftError,
before any model is loaded. Problems of single rows (a missing image, an empty text) are not: they
are found during extraction, which keeps whatever a post has that is usable.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from sgmft_cache import SPLITS, SgmftError
from pipeline.extract.config import ExtractConfig
from pipeline.splits import stratified_holdout

COLUMNS = ("text", "image", "images")  # a manifest needs at least one of these; absent ones read as empty
IMAGE_SEPARATOR = "|"  # between the paths of the images column in CSV/TSV
FORMATS = {".csv": "CSV", ".tsv": "TSV", ".tab": "TSV", ".jsonl": "JSONL", ".ndjson": "JSONL",
           ".parquet": "Parquet", ".pq": "Parquet"}
HINT = ("a manifest is a CSV, TSV, JSONL or Parquet file with columns text and image and/or images "
        "(and optionally id, label, split)")


@dataclass(frozen=True)
class Post:
    id: str
    text: str  # raw text, as posted ("" when empty)
    image: str  # the first image's absolute path; "" when the row names none
    label: str | None  # class name; None when unlabelled
    split: str  # train / val / test
    images: tuple[str, ...] = ()  # every image's absolute path, at most --max-images (default: just `image`)
    beyond_cap: int = 0  # further images the row names, left out by --max-images

    def __post_init__(self):
        if not self.images and self.image:
            object.__setattr__(self, "images", (self.image,))
        object.__setattr__(self, "image", self.images[0] if self.images else "")


@dataclass(frozen=True)
class Manifest:
    path: Path
    posts: tuple[Post, ...]
    labels: tuple[str, ...]  # class names of the whole manifest, sorted: the cache's labels attr
    split_source: str  # where the splits came from, for the cache attributes and the summary

    def split(self, name: str) -> list[Post]:
        return [p for p in self.posts if p.split == name]

    def splits(self) -> list[str]:
        """Split names present, in train/val/test order."""
        present = {p.split for p in self.posts}
        return [s for s in SPLITS if s in present]

    def label_id(self, post: Post) -> int:
        return -1 if post.label is None else self.labels.index(post.label)


def read_manifest(path: str | Path, *, test_fraction: float = ExtractConfig.test_fraction,
                  seed: int = ExtractConfig.seed, max_images: int = ExtractConfig.max_images) -> Manifest:
    """Read and check a manifest; make a seeded stratified train/test split when it has no split column."""
    path = Path(path)
    frame = _read_table(path)
    if not any(c in frame.columns for c in COLUMNS):
        columns = ", ".join(map(str, frame.columns))
        raise SgmftError(f"{path}: none of the columns text, image, images (columns: {columns}); {HINT}")
    if len(frame) == 0:
        raise SgmftError(f"{path}: has no rows")
    ids = _ids(frame, path)
    labels = [_label(x) for x in frame["label"]] if "label" in frame.columns else [None] * len(frame)
    if "split" in frame.columns:
        splits, source = _split_column(frame["split"], ids, path), f"the split column of {path.name}"
    else:
        test = stratified_holdout(labels, test_fraction, seed)
        splits = np.where(test, "test", "train").tolist()
        source = f"stratified {test_fraction:.0%} test split of {path.name}, seed {seed}"
    column = lambda name: frame[name] if name in frame.columns else [None] * len(frame)  # noqa: E731
    pictures = [_pictures(path.parent, one, many) for one, many in zip(column("image"), column("images"))]
    posts = tuple(
        Post(id=i, text=_text(t), image="", label=lab, split=s, images=tuple(pics[:max_images]),
             beyond_cap=max(0, len(pics) - max_images))
        for i, t, pics, lab, s in zip(ids, column("text"), pictures, labels, splits)
    )
    names = tuple(sorted({lab for lab in labels if lab is not None}))
    return Manifest(path=path, posts=posts, labels=names, split_source=source)


def _read_table(path: Path) -> pd.DataFrame:
    if not path.exists():
        raise SgmftError(f"{path}: no such manifest file; pass --manifest PATH ({HINT})")
    kind = FORMATS.get(path.suffix.lower())
    if kind is None:
        raise SgmftError(f"{path}: unknown manifest extension {path.suffix!r}; use one of {', '.join(FORMATS)}")
    try:
        if kind in ("CSV", "TSV"):
            sep = "," if kind == "CSV" else "\t"
            return pd.read_csv(path, sep=sep, dtype=str, keep_default_na=False, encoding="utf-8-sig")
        if kind == "JSONL":
            return pd.read_json(path, lines=True, dtype=False, encoding="utf-8")
        return pd.read_parquet(path)
    except UnicodeDecodeError as e:
        raise SgmftError(f"{path}: cannot be read as {kind}: not UTF-8 text (byte {e.start}: {e.reason}; GBK and "
                         "UTF-16 are common culprits): save it as UTF-8 and run again") from None
    except (OSError, ValueError, pd.errors.ParserError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise SgmftError(f"{path}: cannot be read as {kind} ({first})") from None


def _missing(x) -> bool:
    return x is None or (isinstance(x, float) and np.isnan(x)) or (isinstance(x, str) and not x.strip())


def _id_string(x) -> str:
    if isinstance(x, (float, np.floating)) and float(x).is_integer():
        return str(int(x))  # JSONL/Parquet ids read as floats next to a missing value
    return str(x).strip()


def _ids(frame: pd.DataFrame, path: Path) -> list[str]:
    if "id" not in frame.columns:
        return [str(i) for i in range(len(frame))]  # 0-based row number
    blank = [k for k, x in enumerate(frame["id"]) if _missing(x)]
    if blank:
        raise SgmftError(
            f"{path}: {len(blank)} row(s) have an empty id (first: data row {blank[0] + 1}); fill them or drop the id column"
        )
    ids = [_id_string(x) for x in frame["id"]]
    counts = pd.Series(ids).value_counts()
    dups = counts[counts > 1]
    if len(dups):
        first = dups.index[0]
        rows = [k + 1 for k, i in enumerate(ids) if i == first][:5]
        raise SgmftError(
            f"{path}: {len(dups)} id(s) appear more than once, e.g. {first!r} {dups.iloc[0]} times "
            f"(data rows {', '.join(map(str, rows))}); ids must be unique"
        )
    return ids


def _split_column(column: pd.Series, ids: list[str], path: Path) -> list[str]:
    values = ["" if _missing(x) else str(x).strip().lower() for x in column]
    bad = [(i, v) for i, v in zip(ids, values) if v not in SPLITS]
    if bad:
        seen = sorted({v for _, v in bad})
        raise SgmftError(
            f"{path}: split column holds {', '.join(repr(v) for v in seen)} in {len(bad)} row(s) (first id {bad[0][0]!r}); "
            f"use train, val or test, or drop the column for an automatic split"
        )
    return values


def _label(x) -> str | None:
    return None if _missing(x) else _id_string(x)


def _text(x) -> str:
    return "" if _missing(x) else str(x)


def _pictures(folder: Path, image, images) -> list[str]:
    """The row's image paths, absolute, in order, each once: `image` first, then those of `images`."""
    paths = [] if _missing(image) else [str(image)]
    if isinstance(images, str):
        paths += images.split(IMAGE_SEPARATOR)
    elif images is not None and not _missing(images):
        paths += [str(x) for x in images if not _missing(x)]  # a list (JSONL) or an array (Parquet)
    absolute = [os.path.abspath(folder / p.strip()) for p in paths if p.strip()]  # absolute paths stay as they are
    return list(dict.fromkeys(absolute))
