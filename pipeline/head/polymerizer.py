"""Similarity-aware feature polymerizer (eqs. 1-5) and the product X_inter = P^e X (eq. 14)."""
from __future__ import annotations

import torch
import torch.nn.functional as F


def modality_similarity(t: torch.Tensor, v: torch.Tensor, gate: str = "softmax") -> torch.Tensor:
    """P^m from S^m = t ⊙ v (eqs. 1, 3); t, v [B, D] -> [B, D].

    "softmax" is the paper's normalisation over the D entries (they sum to 1, so each is ~1/D);
    "sigmoid" is our named alternative that gates each channel independently.
    """
    s_m = t * v  # (1)
    if gate == "softmax":
        return torch.softmax(s_m, dim=-1)  # (3)
    if gate == "sigmoid":
        return torch.sigmoid(s_m)
    raise ValueError(f"unknown gate {gate!r}; use 'softmax' or 'sigmoid'")


def element_similarity(t: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """P^e materialised (eqs. 2, 4-5): P^e_ij = softmax_j(t_i v_j); [B, D] -> [B, D, D]. Reference only."""
    s_e = t[:, :, None] * v[:, None, :]  # (2) (B, D, D)
    return torch.softmax(s_e, dim=-1)  # (4-5) row by row


def interpolate(t: torch.Tensor, v: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """X_inter = P^e x without materialising P^e (eq. 14); t, v, x [B, D] -> [B, D].

    Row i of P^e is attention of the scalar query t_i over the scalar keys v_j with values x_j
    and scale 1, so one fused attention call with head size 1 computes it in O(B·D) memory.
    """
    as_seq = lambda z: z[:, None, :, None]  # noqa: E731  (B, 1 head, D elements, 1)
    return F.scaled_dot_product_attention(as_seq(t), as_seq(v), as_seq(x), scale=1.0)[:, 0, :, 0]


def interpolate_reference(t: torch.Tensor, v: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """X_inter = P^e x with P^e as a B×D×D tensor — the plain computation `interpolate` must equal."""
    return torch.bmm(element_similarity(t, v), x[:, :, None]).squeeze(-1)
