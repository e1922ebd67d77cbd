"""Multi-head scaled dot-product attention over [batch, length, D], with an exact one-key shortcut.

Whether the shortcut is taken is chosen in one place for a whole model, `use_one_key_shortcut`
(SGMFTHead calls it with HeadConfig.fast_path); the modules that attend inherit `OneKeyShortcut`
and read the choice, so no constructor carries it.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def attend(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, heads: int,
           key_mask: torch.Tensor | None = None) -> torch.Tensor:
    """softmax(Q Kᵀ / sqrt(d_k)) V per head; q [B, Lq, D], k/v [B, Lk, D] -> [B, Lq, D].

    key_mask [B, Lk] (true = a real key) keeps padded keys out of every softmax; each row needs one real key."""
    b, lq, d = q.shape
    split = lambda x: x.view(b, x.shape[1], heads, d // heads).transpose(1, 2)  # noqa: E731  (B, h, L, D/h)
    mask = None if key_mask is None else key_mask[:, None, None, :]  # (B, 1, 1, Lk): the same for every head and query
    out = F.scaled_dot_product_attention(split(q), split(k), split(v), attn_mask=mask)  # (B, h, Lq, D/h)
    return out.transpose(1, 2).reshape(b, lq, d)


class OneKeyShortcut:
    """Mixin of the modules that attend: `one_key_shortcut` says whether attention over a single key skips Q and K."""

    one_key_shortcut: bool = True


def use_one_key_shortcut(model: nn.Module, enabled: bool) -> nn.Module:
    """Take the exact one-key shortcut (True) or the general path (False) in every attention of `model`."""
    for module in model.modules():
        if isinstance(module, OneKeyShortcut):
            module.one_key_shortcut = enabled
    return model


def project_and_attend(
    query: torch.Tensor,
    key_value: torch.Tensor,
    q_proj: nn.Module,
    k_proj: nn.Module,
    values: torch.Tensor,
    heads: int,
    shortcut: bool = True,
    key_mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """MultiHead(query W^Q, key_value W^K, values) before the output projection.

    `values` = key_value W^V is passed in computed, so that blocks sharing one value
    projection (SA and CA of eqs. 8-9) compute it once. With a single key the softmax is
    exactly 1 and every query receives that key's value: Q and K need not be computed. The shortcut
    looks at the sequence length only, never at the mask: over several keys (a post's image set, padded
    or not) attention always takes the general path; a one-key sequence always has its key real.
    """
    if shortcut and key_value.shape[1] == 1:
        return values.expand(-1, query.shape[1], -1)
    return attend(q_proj(query), k_proj(key_value), values, heads, key_mask)


class MultiHeadAttention(OneKeyShortcut, nn.Module):
    """Standard multi-head attention: queries from `query`, keys and values from `key_value`."""

    def __init__(self, dim: int, heads: int):
        super().__init__()
        if dim % heads:
            raise ValueError(f"embed_dim {dim} is not divisible by {heads} heads")
        self.heads = heads
        self.q, self.k, self.v = nn.Linear(dim, dim), nn.Linear(dim, dim), nn.Linear(dim, dim)
        self.out = nn.Linear(dim, dim)

    def forward(self, query: torch.Tensor, key_value: torch.Tensor, key_mask: torch.Tensor | None = None) -> torch.Tensor:
        mixed = project_and_attend(query, key_value, self.q, self.k, self.v(key_value), self.heads,
                                   self.one_key_shortcut, key_mask)
        return self.out(mixed)
