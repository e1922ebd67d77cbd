"""A train split larger than fit's memory budget, read from disk in shuffled chunks of rows, one group at a time.

The split's rows are cut into chunks of `chunk_rows` consecutive rows; each epoch the chunks are
shuffled (seeded) and packed into groups that fit the budget; a group is read (features in their
stored dtype) and trained on in its own shuffled order before the next is read. So a batch only
mixes posts of one group: the order is a two-level shuffle, not a uniform one over the split.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass, replace
from typing import Callable, Iterator

import h5py
import numpy as np
import torch

from sgmft_cache import SgmftError, SplitData, load_rows
from sgmft_cache import layout as L


def parse_memory(text: str) -> int:
    """Bytes of a memory budget: "50%" (of this machine's RAM), "8GiB", "512MiB", "2GB", or plain bytes."""
    text = str(text).strip()
    units = {"%": None, "KIB": 2**10, "MIB": 2**20, "GIB": 2**30, "TIB": 2**40, "KB": 1e3, "MB": 1e6, "GB": 1e9,
             "TB": 1e12, "B": 1}
    for unit, scale in units.items():
        if text.upper().endswith(unit):
            number = text[: -len(unit)].strip()
            try:
                value = float(number)
            except ValueError:
                break
            if not math.isfinite(value) or value <= 0:  # nan%, inf GiB: no budget
                break
            return int(value / 100 * ram_bytes()) if scale is None else int(value * scale)
    if text.isdigit() and int(text) > 0:
        return int(text)
    raise SgmftError(f"--max-memory {text!r}: give a share of RAM like 50% or a size like 8GiB, 512MiB")


def ram_bytes() -> int:
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def feature_bytes(path: str, split: str) -> int:
    """Stored bytes of a split's features (text, image, and its image sets where they are separate)."""
    with h5py.File(path, "r") as f:
        group = f[split]
        names = [*L.FEATURES] + ([L.IMAGES] if L.IMAGES in group else [])
        return sum(int(np.prod(group[n].shape)) * group[n].dtype.itemsize for n in names)


@dataclass(frozen=True)
class StreamedSplit:
    """Rows `rows` (increasing positions) of /<split>, read a group at a time; labels kept in memory."""

    path: str
    split: str
    rows: np.ndarray  # [N] positions in the split
    label: torch.Tensor  # [N] int64
    group_rows: int  # rows read at a time (the budget over the bytes of a row)
    chunk_rows: int = 4096  # consecutive rows shuffled as one

    @classmethod
    def open(cls, path: str, split: str, budget: int, chunk_rows: int = 4096) -> "StreamedSplit":
        with h5py.File(path, "r") as f:
            label = torch.from_numpy(f[split][L.LABEL][...].astype(np.int64))
        per_row = feature_bytes(path, split) / max(len(label), 1)  # stored bytes: batches are cast one at a time
        group = max(chunk_rows, int(budget // max(per_row, 1)) // chunk_rows * chunk_rows)
        return cls(path, split, np.arange(len(label), dtype=np.int64), label, group, chunk_rows)

    def __len__(self) -> int:
        return len(self.rows)

    def subset(self, index) -> "StreamedSplit":
        index = np.sort(np.asarray(index, dtype=np.int64))
        return replace(self, rows=self.rows[index], label=self.label[torch.from_numpy(index)])

    def load(self, index=None) -> SplitData:
        """Rows `index` of this subset (all of them when None) in memory, features in their stored dtype."""
        return load_rows(self.path, self.split, self.rows if index is None else self.rows[np.sort(index)])

    def groups(self, generator: torch.Generator) -> Iterator[SplitData]:
        """One epoch: the chunks in a seeded random order, packed into groups of about `group_rows` rows."""
        chunks = -(-len(self) // self.chunk_rows)
        order = torch.randperm(chunks, generator=generator).numpy()
        per_group = max(1, self.group_rows // self.chunk_rows)
        for start in range(0, chunks, per_group):
            picked = np.sort(order[start:start + per_group])
            index = np.concatenate([np.arange(c * self.chunk_rows, min((c + 1) * self.chunk_rows, len(self)))
                                    for c in picked])
            yield self.load(index)


def streamed_epoch(split: StreamedSplit, train_group: Callable[[SplitData], tuple[float, float]],
                   generator: torch.Generator) -> tuple[float, float]:
    """Train on every group of one epoch (`train_group` returns its mean loss and accuracy); the epoch's means."""
    seen, loss_sum, correct = 0, 0.0, 0.0
    for data in split.groups(generator):
        loss, acc = train_group(data)
        seen, loss_sum, correct = seen + len(data), loss_sum + loss * len(data), correct + acc * len(data)
        del data  # let the group go before the next one is read: one group in memory at a time
    return loss_sum / max(seen, 1), correct / max(seen, 1)
