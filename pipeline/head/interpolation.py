"""Similarity-aware feature interpolation attention for both modalities (eqs. 6-13)."""
from __future__ import annotations

import torch
from torch import nn

from pipeline.head.attention import OneKeyShortcut, project_and_attend


class QKV(nn.Module):
    """The query/key/value projections of one modality: W^Q, W^K, W^V (eqs. 6-7)."""

    def __init__(self, dim: int):
        super().__init__()
        self.q, self.k, self.v = nn.Linear(dim, dim), nn.Linear(dim, dim), nn.Linear(dim, dim)


class InterpolationAttention(OneKeyShortcut, nn.Module):
    """X^C for text and image: self- and cross-attention blended channel-wise by P^m (eqs. 8-13)."""

    def __init__(self, dim: int, heads: int):
        super().__init__()
        if dim % heads:
            raise ValueError(f"embed_dim {dim} is not divisible by {heads} heads")
        self.heads = heads
        self.text, self.image = QKV(dim), QKV(dim)  # (6), (7): shared by the SA and CA that use them
        self.sa_image, self.ca_image = nn.Linear(dim, dim), nn.Linear(dim, dim)  # W^s, W^c (10-11)
        self.sa_text, self.ca_text = nn.Linear(dim, dim), nn.Linear(dim, dim)
        self.norm_image, self.norm_text = nn.LayerNorm(dim), nn.LayerNorm(dim)

    def forward(self, t: torch.Tensor, v: torch.Tensor, p_m: torch.Tensor, image_mask: torch.Tensor | None = None,
                pooled: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """t [B, 1, D], v [B, K, D] (image_mask [B, K]); p_m [B, D] -> (X_text^C [B, 1, D], X_image^C [B, K, D]).

        With one image (K = 1) these are the paper's equations. Over an image set (ours): SA_image is
        self-attention over the images, CA_image the text's query over them, one vector that eq. 12 blends
        into every image position; CA_text is the text read by the pooled image `pooled` [B, D] (over a
        single text key every query reads the same value, so which image asks does not matter).
        """
        p_m = p_m[:, None, :]  # (B, 1, D): one weight per channel, shared by all positions
        query_image = v if pooled is None else pooled[:, None]  # (B, 1, D) over an image set
        val_t, val_i = self.text.v(t), self.image.v(v)
        mix = lambda query, kv, qkv_q, qkv_kv, values, mask=None: project_and_attend(  # noqa: E731
            query, kv, qkv_q.q, qkv_kv.k, values, self.heads, self.one_key_shortcut, mask
        )
        sa_image = self.sa_image(mix(v, v, self.image, self.image, val_i, image_mask))  # (8, 10)
        ca_image = self.ca_image(mix(t, v, self.text, self.image, val_i, image_mask))  # (9, 11): query from text
        x_image = ca_image * p_m + sa_image * (1 - p_m)  # (12)
        sa_text = self.sa_text(mix(t, t, self.text, self.text, val_t))
        ca_text = self.ca_text(mix(query_image, t, self.image, self.text, val_t))  # query from image
        x_text = ca_text * p_m + sa_text * (1 - p_m)
        return self.norm_text(x_text + t), self.norm_image(x_image + v)  # (13)
