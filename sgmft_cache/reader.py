"""Loading one split of a validated cache into tensors."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import h5py
import numpy as np
import torch

from sgmft_cache import layout as L
from sgmft_cache.errors import CacheError
from sgmft_cache.validation import validate


@dataclass(frozen=True)
class SplitData:
    """One split in memory: features as float32 tensors, rows in stored order.

    The post-shape fields (SPEC §3 v2) default to the version-1 meaning: both modalities present,
    `images` = `image`, one image per post.
    """

    ids: list[str]
    text: torch.Tensor  # [N, D] float32, zeros where has_text is false
    image: torch.Tensor  # [N, D] float32: the first usable image, zeros where has_image is false
    label: torch.Tensor  # [N] int64, -1 where unlabeled
    text_clean: list[str]
    has_text: torch.Tensor = None  # [N] bool: the post had a usable text
    has_image: torch.Tensor = None  # [N] bool: the post had at least one usable image
    images: torch.Tensor = None  # [M, D] float32: every usable image of every post, post by post
    image_offsets: torch.Tensor = None  # [N+1] int64: post i's images are images[offsets[i]:offsets[i+1]]

    def __post_init__(self):
        n = len(self.ids)
        if self.has_text is None:
            object.__setattr__(self, "has_text", torch.ones(n, dtype=torch.bool))
        if self.has_image is None:
            has = torch.ones(n, dtype=torch.bool) if self.image_offsets is None else self.image_counts > 0
            object.__setattr__(self, "has_image", has)
        if self.images is None:
            object.__setattr__(self, "images", self.image if bool(self.has_image.all()) else self.image[self.has_image])
            offsets = torch.zeros(n + 1, dtype=torch.long)
            offsets[1:] = torch.cumsum(self.has_image.long(), 0)
            object.__setattr__(self, "image_offsets", offsets)

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def image_counts(self) -> torch.Tensor:
        """Usable images per post, [N] int64."""
        return self.image_offsets[1:] - self.image_offsets[:-1]

    def subset(self, index: np.ndarray | torch.Tensor) -> "SplitData":
        index = torch.as_tensor(index, dtype=torch.long).reshape(-1)
        pick = index.tolist()
        starts, counts = self.image_offsets[:-1][index], self.image_counts[index]
        offsets = torch.zeros(len(pick) + 1, dtype=torch.long)
        offsets[1:] = torch.cumsum(counts, 0)
        source = torch.repeat_interleave(starts - offsets[:-1], counts) + torch.arange(int(offsets[-1]))
        image = self.image[index]
        return SplitData(
            ids=[self.ids[i] for i in pick],
            text=self.text[index],
            image=image,
            label=self.label[index],
            text_clean=[self.text_clean[i] for i in pick],
            has_text=self.has_text[index],
            has_image=self.has_image[index],
            images=image if self.images is self.image else self.images[source],  # version 1: one tensor, not two
            image_offsets=offsets,
        )


def list_splits(path: str | Path) -> list[str]:
    """Names of the split groups in a validated cache."""
    validate(path)
    return _split_names(path)


def split_ids(path: str | Path, split: str) -> set[str]:
    """Ids with features in /<split> of a cache or chunk file (empty when the file or split is absent); not validated."""
    if not Path(path).is_file():
        return set()
    with h5py.File(path, "r") as f:
        return set(L.read_strings(f[split], L.ID).tolist()) if split in f else set()


def load_skipped(path: str | Path, split: str) -> dict[str, str]:
    """Ids of `/<split>` that were listed as skipped, each with its reason (empty when there are none)."""
    validate(path, require_splits=[split])
    with h5py.File(path, "r") as f:
        group = f[split]
        ids, reasons = L.read_strings(group, L.SKIPPED_ID), L.read_strings(group, L.SKIPPED_REASON)
    return dict(zip(ids.tolist(), reasons.tolist()))


def load_dropped_images(path: str | Path, split: str) -> dict[str, str]:
    """Ids of `/<split>` whose posts were kept without some of their pictures, each with why (empty when none)."""
    validate(path, require_splits=[split])
    with h5py.File(path, "r") as f:
        group = f[split]
        ids, notes = L.read_strings(group, L.ID), L.read_strings(group, L.DROPPED_IMAGES)
    return {i: n for i, n in zip(ids.tolist(), notes.tolist()) if n} if len(notes) == len(ids) else {}


def load_split(path: str | Path, split: str) -> SplitData:
    """Read `/<split>` into memory, refusing NaN/Inf features with the first offending id."""
    return load_cache(path, required=[split])[1][split]


def load_cache(
    path: str | Path, required: Sequence[str] = (), optional: Sequence[str] = (), keep_dtype: bool = False
) -> tuple[L.CacheMeta, dict[str, SplitData]]:
    """Validate the file once; read the `required` splits and those of `optional` that are present.

    `keep_dtype` keeps the features in their stored dtype (a float16 cache costs its float16 bytes; cast a
    batch at a time), else they are float32."""
    meta = validate(path, require_splits=required)
    present = _split_names(path)
    wanted = list(required) + [s for s in optional if s in present and s not in required]
    return meta, {split: _read_split(path, split, keep_dtype) for split in wanted}


def load_rows(path: str | Path, split: str, index: np.ndarray) -> SplitData:
    """Rows `index` (increasing positions) of a validated cache's /<split>, features in their stored dtype;
    refused, like a load, when one holds NaN or Inf."""
    from sgmft_cache import ragged as R
    from sgmft_cache.segments import read_rows

    index = np.asarray(index, dtype=np.int64)
    with h5py.File(path, "r") as f:
        group = f[split]
        get = lambda name, default=None: read_rows(group.get(name), index, default)  # noqa: E731
        counts = R.counts_of(group)
        starts = np.concatenate([[0], np.cumsum(counts)])[index]
        n = counts[index]
        offsets = np.concatenate([[0], np.cumsum(n)]).astype(np.int64)
        image_rows = np.repeat(starts - offsets[:-1], n) + np.arange(offsets[-1], dtype=np.int64)
        image = torch.from_numpy(get(L.IMAGE))
        # a version-1 split's image sets are its `image` rows: the same tensor, not read twice
        images = image if L.IMAGES not in group else torch.from_numpy(read_rows(group[L.IMAGES], image_rows))
        data = SplitData(
            ids=get(L.ID).tolist(), text=torch.from_numpy(get(L.TEXT)), image=image,
            label=torch.from_numpy(get(L.LABEL).astype(np.int64)), text_clean=get(L.TEXT_CLEAN).tolist(),
            has_text=torch.from_numpy(get(L.HAS_TEXT, True).astype(bool)),
            has_image=torch.from_numpy(get(L.HAS_IMAGE, True).astype(bool)),
            images=images, image_offsets=torch.from_numpy(offsets))
    _refuse_non_finite(path, split, data)
    return data


def positions_of(path: str | Path, split: str, ids) -> np.ndarray:
    """Positions (increasing) of the rows of /<split> whose id is in `ids`: what load_rows takes."""
    with h5py.File(path, "r") as f:
        stored = L.read_strings(f[split], L.ID)
    return np.flatnonzero(np.isin(stored.astype(str), np.asarray(list(ids), dtype=str)))


def _split_names(path: str | Path) -> list[str]:
    with h5py.File(path, "r") as f:
        return [name for name, obj in f.items() if isinstance(obj, h5py.Group)]


def _read_split(path: str | Path, split: str, keep_dtype: bool = False) -> SplitData:
    with h5py.File(path, "r") as f:
        rows = L.read_rows(f[split])
    as_tensor = torch.from_numpy if keep_dtype else lambda a: torch.from_numpy(a.astype(np.float32, copy=False))
    image = as_tensor(rows.image)
    data = SplitData(
        ids=rows.ids.tolist(),
        text=as_tensor(rows.text),
        image=image,
        label=torch.from_numpy(rows.label),
        text_clean=rows.text_clean.tolist(),
        has_text=torch.from_numpy(rows.has_text),
        has_image=torch.from_numpy(rows.has_image),
        images=image if rows.images is rows.image else as_tensor(rows.images),  # v1: the same rows
        image_offsets=torch.from_numpy(rows.image_offsets),
    )
    _refuse_non_finite(path, split, data)
    return data


def _refuse_non_finite(path: str | Path, split: str, data: SplitData) -> None:
    """A CacheError naming the first post whose features hold NaN or Inf (a load, a read by position)."""
    for name in (*L.FEATURES, L.IMAGES):
        if name == L.IMAGES and data.images is data.image:
            continue  # version 1: the same rows, checked once
        bad = _not_finite(getattr(data, name))
        if len(bad):
            row = int(bad[0])
            if name == L.IMAGES:  # the post that holds image row `row`
                row = int(torch.searchsorted(data.image_offsets, row, right=True)) - 1
            first = data.ids[row]
            raise CacheError(
                f"{path}: /{split}/{name} holds NaN or Inf in {len(bad)} row(s), first id {first!r}; "
                "re-extract those posts"
            )


def _not_finite(x: torch.Tensor, block: int = 8192) -> np.ndarray:
    """Rows of x holding NaN or Inf, checked a block at a time (no [N, D] temporary; numpy's isfinite, which
    is several times faster than torch's on CPU float16)."""
    a = x.numpy()
    bad = [start + np.flatnonzero(~np.isfinite(a[start:start + block]).all(axis=1)) for start in range(0, len(a), block)]
    return np.concatenate(bad) if bad else np.zeros(0, dtype=np.int64)
