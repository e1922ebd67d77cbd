"""SIM: the similarity-aware interaction module — polymerizer, interpolation attention, FFNs."""
from __future__ import annotations

import torch
from torch import nn

from pipeline.head.ffn import FeedForward, SimilarityFeedForward
from pipeline.head.interpolation import InterpolationAttention
from pipeline.head.polymerizer import modality_similarity


class SimilarityInteraction(nn.Module):
    """(t, v) -> (F_text^S, F_image^S), eqs. 1-16.

    `guide` names the modality whose FFN receives X_inter: "text" is the paper's text-wise
    block (P^e_ij = softmax_j(t_i v_j) mixes X_image^C); "image" swaps the roles (Table 4).
    """

    def __init__(self, dim: int, heads: int, hidden: int, gate: str = "softmax", guide: str = "text"):
        super().__init__()
        if guide not in ("text", "image"):
            raise ValueError(f"unknown FFN guide {guide!r}; use 'text' or 'image'")
        self.gate, self.guide = gate, guide
        self.attention = InterpolationAttention(dim, heads)
        self.ffn_text = SimilarityFeedForward(dim, hidden) if guide == "text" else FeedForward(dim, hidden)
        self.ffn_image = SimilarityFeedForward(dim, hidden) if guide == "image" else FeedForward(dim, hidden)

    def forward(self, t: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """t, v [B, D] -> F_text^S, F_image^S as [B, 1, D] sequences for the fusion module."""
        p_m = modality_similarity(t, v, self.gate)  # (1, 3)
        x_text, x_image = self.attention(t[:, None], v[:, None], p_m)  # (6-13)  (B, 1, D)
        x_text, x_image = x_text[:, 0], x_image[:, 0]
        if self.guide == "text":
            f_text, f_image = self.ffn_text(x_text, t, v, x_image), self.ffn_image(x_image)  # (14-16)
        else:
            f_text, f_image = self.ffn_text(x_text), self.ffn_image(x_image, v, t, x_text)
        return f_text[:, None], f_image[:, None]
