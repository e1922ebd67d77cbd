"""The straightforward reference the fit benchmark is measured against: same equations, written the long way.

What makes it "straightforward" (and what `pipeline.head` / `pipeline.fit` do instead):
- P^e is materialised as a B×D×D tensor and multiplied (eq. 14), instead of one fused attention call;
- every multi-head attention projects Q, K and V and takes the softmax, even over a single key,
  instead of the exact one-key fast path;
- a per-sample `Dataset` reads the HDF5 cache row by row through h5py behind a shuffling DataLoader,
  instead of gathering batches from tensors already in memory;
- `torch.optim.Adam` with its default (per-parameter loop) implementation.

It reuses the parameters of an `SGMFTHead` (same names, same initialisation), so both compute the same
function of the same weights; tests/test_benchmark_reference.py checks equal logits and gradients.
"""
from __future__ import annotations

import math
from pathlib import Path

import h5py
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Dataset

from pipeline.head import SGMFTHead
from pipeline.head.polymerizer import element_similarity
from sgmft_cache import layout as L


def multi_head(query: torch.Tensor, key_value: torch.Tensor, attn_q: nn.Linear, attn_k: nn.Linear,
               attn_v: nn.Linear, heads: int) -> torch.Tensor:
    """softmax(Q Kᵀ / sqrt(d_k)) V over h heads, projections included; [B, L, D] -> [B, Lq, D]."""
    q, k, v = attn_q(query), attn_k(key_value), attn_v(key_value)
    b, lq, d = q.shape
    split = lambda x: x.view(b, x.shape[1], heads, d // heads).transpose(1, 2)  # noqa: E731  (B, h, L, D/h)
    scores = split(q) @ split(k).transpose(-1, -2) / math.sqrt(d // heads)  # (B, h, Lq, Lk)
    return (scores.softmax(dim=-1) @ split(v)).transpose(1, 2).reshape(b, lq, d)


class ReferenceHead(nn.Module):
    """The full SG-MFT head (text-wise FFN, softmax P^m, two-layer SFM) over `head`'s parameters."""

    def __init__(self, head: SGMFTHead):
        super().__init__()
        c = head.cfg
        if not (c.sim and c.fusion == "sfm" and c.ffn_guide == "text" and c.gate == "softmax"):
            raise ValueError("the reference implements the full paper head only (variant 'sgmft')")
        self.head = head

    def forward(self, t: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        h, heads = self.head, self.head.cfg.heads
        if h.cfg.input_norm == "l2":
            t, v = F.normalize(t, dim=-1), F.normalize(v, dim=-1)
        p_m = torch.softmax(t * v, dim=-1)[:, None]  # (1, 3)  (B, 1, D)
        p_e = element_similarity(t, v)  # (2, 4-5)  (B, D, D) materialised
        m = h.sim.attention
        ts, vs = t[:, None], v[:, None]  # (B, 1, D)
        sa_image = m.sa_image(multi_head(vs, vs, m.image.q, m.image.k, m.image.v, heads))  # (8, 10)
        ca_image = m.ca_image(multi_head(ts, vs, m.text.q, m.image.k, m.image.v, heads))  # (9, 11)
        sa_text = m.sa_text(multi_head(ts, ts, m.text.q, m.text.k, m.text.v, heads))
        ca_text = m.ca_text(multi_head(vs, ts, m.image.q, m.text.k, m.text.v, heads))
        x_image = m.norm_image(ca_image * p_m + sa_image * (1 - p_m) + vs)[:, 0]  # (12-13)
        x_text = m.norm_text(ca_text * p_m + sa_text * (1 - p_m) + ts)[:, 0]
        x_inter = torch.bmm(p_e, x_image[:, :, None])[:, :, 0]  # (14)
        f = h.sim.ffn_text
        f_text = f.norm(f.w2(torch.relu(f.w1(x_text) + f.w3(x_inter))) + x_text)  # (15-16)
        g = h.sim.ffn_image
        f_image = g.norm(g.w2(torch.relu(g.w1(x_image))) + x_image)
        text, image = f_text[:, None], f_image[:, None]
        for t2i, i2t in zip(h.fusion.text_to_image, h.fusion.image_to_text):
            a, b = t2i.attn, i2t.attn
            text, image = (
                t2i.norm(text + a.out(multi_head(text, image, a.q, a.k, a.v, heads))),
                i2t.norm(image + b.out(multi_head(image, text, b.q, b.k, b.v, heads))),
            )
        return h.classifier((text + image)[:, 0])  # (17-18)


class H5Rows(Dataset):
    """One post per item, read from the HDF5 cache on demand: (text [D], image [D], label)."""

    def __init__(self, path: str | Path, split: str = "train"):
        self.path, self.split = str(path), split
        with h5py.File(self.path, "r") as f:
            self.n = len(f[split][L.LABEL])
        self.file: h5py.File | None = None  # opened lazily, once per worker process

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor, int]:
        if self.file is None:
            self.file = h5py.File(self.path, "r")
        g = self.file[self.split]
        return torch.from_numpy(g[L.TEXT][i]).float(), torch.from_numpy(g[L.IMAGE][i]).float(), int(g[L.LABEL][i])


def reference_loader(path: str | Path, batch_size: int, seed: int = 0, split: str = "train") -> DataLoader:
    return DataLoader(H5Rows(path, split), batch_size=batch_size, shuffle=True,
                      generator=torch.Generator().manual_seed(seed))


def reference_optimizer(model: nn.Module, lr: float = 1e-5, betas=(0.9, 0.99)) -> torch.optim.Optimizer:
    return torch.optim.Adam(model.parameters(), lr=lr, betas=betas)  # the defaults a user gets
