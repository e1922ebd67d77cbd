"""SIM: the similarity-aware interaction module — polymerizer, interpolation attention, FFNs."""
from __future__ import annotations

import torch
from torch import nn

from pipeline.head.ffn import FeedForward, SimilarityFeedForward
from pipeline.head.interpolation import InterpolationAttention
from pipeline.head.pooling import masked_mean
from pipeline.head.polymerizer import element_similarity, modality_similarity, similarity_scale


class SimilarityInteraction(nn.Module):
    """(t, v) -> (F_text^S, F_image^S), eqs. 1-16.

    `guide` names the modality whose FFN receives X_inter: "text" is the paper's text-wise
    block (P^e_ij = softmax_j(t_i v_j) mixes X_image^C); "image" swaps the roles (Table 4).
    `scale_m`, `scale_e` ("none" or "learned") put a temperature τ on S^m and S^e (ours).
    """

    def __init__(self, dim: int, heads: int, hidden: int, gate: str = "softmax", guide: str = "text",
                 scale_m: str = "none", scale_e: str = "none"):
        super().__init__()
        if guide not in ("text", "image"):
            raise ValueError(f"unknown FFN guide {guide!r}; use 'text' or 'image'")
        self.gate, self.guide = gate, guide
        self.tau_m, self.tau_e = similarity_scale(scale_m, dim), similarity_scale(scale_e, dim)
        self.attention = InterpolationAttention(dim, heads)
        self.ffn_text = SimilarityFeedForward(dim, hidden) if guide == "text" else FeedForward(dim, hidden)
        self.ffn_image = SimilarityFeedForward(dim, hidden) if guide == "image" else FeedForward(dim, hidden)

    def p_m(self, t: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """P^m [B, D] (eqs. 1, 3)."""
        return modality_similarity(t, v, self.gate, self.tau_m())

    def p_e(self, t: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """P^e [B, D, D] of the guided FFN, materialised (eqs. 2, 4-5): for diagnostics, not the forward pass."""
        query, key = (t, v) if self.guide == "text" else (v, t)
        return element_similarity(query, key, self.tau_e())

    def forward(self, t: torch.Tensor, v: torch.Tensor, images: torch.Tensor | None = None,
                image_mask: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """t, v [B, D] -> F_text^S [B, 1, D], F_image^S [B, K, D] as sequences for the fusion module.

        v is the image of the paper's equations; `images` [B, K, D] (mask [B, K]) a post's image set
        (ours; default: v alone). P^m and P^e come from t and v — over a set, v is the pooled image —
        and X_inter mixes the masked mean of X_image^C; the image FFN runs on every image position.
        """
        seq = v[:, None] if images is None else images  # (B, K, D)
        x_text, x_image = self.attention(t[:, None], seq, self.p_m(t, v), image_mask, v)  # (6-13)
        x_text = x_text[:, 0]  # (B, D)
        tau_e = self.tau_e()
        if self.guide == "text":
            f_text = self.ffn_text(x_text, t, v, masked_mean(x_image, image_mask), tau_e)  # (14-16)
            return f_text[:, None], self.ffn_image(x_image)
        f_text = self.ffn_text(x_text)
        b, k, d = x_image.shape
        f_image = self.ffn_image(x_image.reshape(b * k, d), seq.reshape(b * k, d),  # each image position guided
                                 t.repeat_interleave(k, 0), x_text.repeat_interleave(k, 0), tau_e)
        return f_text[:, None], f_image.view(b, k, d)
