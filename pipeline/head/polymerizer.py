"""Similarity-aware feature polymerizer (eqs. 1-5) and the product X_inter = P^e X (eq. 14).

Each similarity may be multiplied by a temperature τ before its softmax (ours, not the paper's:
CLIP's learnable `logit_scale`); τ = 1 is the paper.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from pipeline.head.config import SCALES

Scale = float | torch.Tensor  # τ: 1.0 (the paper) or a learnable scalar


def modality_similarity(t: torch.Tensor, v: torch.Tensor, gate: str = "softmax", scale: Scale = 1.0) -> torch.Tensor:
    """P^m from S^m = t ⊙ v (eqs. 1, 3); t, v [B, D] -> [B, D].

    "softmax" is the paper's normalisation over the D entries (they sum to 1, so each is ~1/D);
    "sigmoid" is our named alternative that gates each channel independently.
    """
    s_m = scale * (t * v)  # (1), times τ_m
    if gate == "softmax":
        return torch.softmax(s_m, dim=-1)  # (3)
    if gate == "sigmoid":
        return torch.sigmoid(s_m)
    raise ValueError(f"unknown gate {gate!r}; use 'softmax' or 'sigmoid'")


def element_similarity(t: torch.Tensor, v: torch.Tensor, scale: Scale = 1.0) -> torch.Tensor:
    """P^e materialised (eqs. 2, 4-5): P^e_ij = softmax_j(τ t_i v_j); [B, D] -> [B, D, D]. Reference only."""
    s_e = (scale * t)[:, :, None] * v[:, None, :]  # (2) (B, D, D), times τ_e
    return torch.softmax(s_e, dim=-1)  # (4-5) row by row


def interpolate(t: torch.Tensor, v: torch.Tensor, x: torch.Tensor, scale: Scale = 1.0) -> torch.Tensor:
    """X_inter = P^e x without materialising P^e (eq. 14); t, v, x [B, D] -> [B, D].

    Row i of P^e is attention of the scalar query τ t_i over the scalar keys v_j with values x_j
    and scale 1, so one fused attention call with head size 1 computes it in O(B·D) memory. τ goes
    into the query (SDPA's own `scale` takes a number, not a learnable tensor).
    """
    as_seq = lambda z: z[:, None, :, None]  # noqa: E731  (B, 1 head, D elements, 1)
    return F.scaled_dot_product_attention(as_seq(scale * t), as_seq(v), as_seq(x), scale=1.0)[:, 0, :, 0]


def interpolate_reference(t: torch.Tensor, v: torch.Tensor, x: torch.Tensor, scale: Scale = 1.0) -> torch.Tensor:
    """X_inter = P^e x with P^e as a B×D×D tensor — the plain computation `interpolate` must equal."""
    return torch.bmm(element_similarity(t, v, scale), x[:, :, None]).squeeze(-1)


class Unscaled(nn.Module):
    """τ = 1: the similarity as the paper writes it."""

    def forward(self) -> float:
        return 1.0


class LearnedScale(nn.Module):
    """τ = exp(log τ), one learnable scalar (CLIP's logit_scale), so that training can sharpen a softmax."""

    def __init__(self, init: float):
        super().__init__()
        self.log_scale = nn.Parameter(torch.tensor(math.log(init)))

    def forward(self) -> torch.Tensor:
        return self.log_scale.exp()


def similarity_scale(kind: str, dim: int) -> nn.Module:
    """The τ of one similarity: `Unscaled` ("none") or a `LearnedScale` ("learned") initialised at τ = D.

    Why D: with l2-normalised features the entries of S^m and S^e are ~1/D, so at τ = 1 every softmax
    is flat. τ = D puts them at ~1. Measured on l2-normalised Gaussian pairs at D = 1024 (cosine 0 /
    0.3 / 0.6), P^m's max·D is 1.01 at τ = 1, 4-10 at τ = 256, 170-460 at τ = D (relative entropy
    0.77 / 0.55 / 0.39: several channels stand out, not one-hot) and 840-900 at τ = 4D (entropy
    < 0.08: nearly one-hot); P^e's rows: max·D 1.00 at τ = 1, 24 at τ = D. The start matters: Adam moves
    log τ by about lr a step at most, so at the paper's lr 1e-5 over its 20,400 steps τ changes by e^0.2 ≈ 1.2×
    at most (at lr 1e-3 in BENCHMARKS.md it grew from 64 to 82-87 in 8 epochs).
    """
    if kind not in SCALES:
        raise ValueError(f"unknown similarity scale {kind!r}; use one of {', '.join(SCALES)}")
    return LearnedScale(float(dim)) if kind == "learned" else Unscaled()
