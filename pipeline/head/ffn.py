"""Feed-forward blocks: the similarity-aware FFN (eqs. 14-16) and the ordinary one."""
from __future__ import annotations

import torch
from torch import nn

from pipeline.head.polymerizer import Scale, interpolate


class FeedForward(nn.Module):
    """LayerNorm(ReLU(x W1 + b1) W2 + b2 + x): the image-side block of the SIM."""

    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.w1, self.w2 = nn.Linear(dim, hidden), nn.Linear(hidden, dim)
        self.norm = nn.LayerNorm(dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(self.w2(torch.relu(self.w1(x))) + x)


class SimilarityFeedForward(nn.Module):
    """FFN whose hidden layer also sees X_inter = P^e X_other^C (eqs. 14-16)."""

    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.w1, self.w2 = nn.Linear(dim, hidden), nn.Linear(hidden, dim)  # W1 + b1, W2 + b2
        self.w3 = nn.Linear(dim, hidden, bias=False)  # W3
        self.norm = nn.LayerNorm(dim)

    def forward(self, x: torch.Tensor, query: torch.Tensor, key: torch.Tensor, other: torch.Tensor,
                scale: Scale = 1.0) -> torch.Tensor:
        """x = X_text^C [B, D]; P^e_ij = softmax_j(τ query_i key_j) mixes `other` = X_image^C [B, D]."""
        x_inter = interpolate(query, key, other, scale)  # (14)
        hidden = torch.relu(self.w1(x) + self.w3(x_inter))  # (15)
        return self.norm(self.w2(hidden) + x)  # (16)
