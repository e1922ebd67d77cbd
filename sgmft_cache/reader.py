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
    """One split in memory: features as float32 tensors, rows in stored order."""

    ids: list[str]
    text: torch.Tensor  # [N, D] float32
    image: torch.Tensor  # [N, D] float32
    label: torch.Tensor  # [N] int64, -1 where unlabeled
    text_clean: list[str]

    def __len__(self) -> int:
        return len(self.ids)

    def subset(self, index: np.ndarray | torch.Tensor) -> "SplitData":
        index = torch.as_tensor(index, dtype=torch.long)
        pick = index.tolist()
        return SplitData(
            ids=[self.ids[i] for i in pick],
            text=self.text[index],
            image=self.image[index],
            label=self.label[index],
            text_clean=[self.text_clean[i] for i in pick],
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


def load_split(path: str | Path, split: str) -> SplitData:
    """Read `/<split>` into memory, refusing NaN/Inf features with the first offending id."""
    return load_cache(path, required=[split])[1][split]


def load_cache(
    path: str | Path, required: Sequence[str] = (), optional: Sequence[str] = ()
) -> tuple[L.CacheMeta, dict[str, SplitData]]:
    """Validate the file once; read the `required` splits and those of `optional` that are present."""
    meta = validate(path, require_splits=required)
    present = _split_names(path)
    wanted = list(required) + [s for s in optional if s in present and s not in required]
    return meta, {split: _read_split(path, split) for split in wanted}


def _split_names(path: str | Path) -> list[str]:
    with h5py.File(path, "r") as f:
        return [name for name, obj in f.items() if isinstance(obj, h5py.Group)]


def _read_split(path: str | Path, split: str) -> SplitData:
    with h5py.File(path, "r") as f:
        rows = L.read_rows(f[split])
    data = SplitData(
        ids=rows.ids.tolist(),
        text=torch.from_numpy(rows.text.astype(np.float32, copy=False)),
        image=torch.from_numpy(rows.image.astype(np.float32, copy=False)),
        label=torch.from_numpy(rows.label),
        text_clean=rows.text_clean.tolist(),
    )
    for name in L.FEATURES:
        bad = ~torch.isfinite(getattr(data, name)).all(dim=1)
        if bad.any():
            first = data.ids[int(bad.nonzero()[0])]
            raise CacheError(
                f"{path}: /{split}/{name} holds NaN or Inf in {int(bad.sum())} row(s), first id {first!r}; "
                "re-extract those posts"
            )
    return data
