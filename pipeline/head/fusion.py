"""Fusion modules: the SFM (eq. 17) and the alternatives of Tables 2-3, all (text, image, image_mask) -> M_fuse."""
from __future__ import annotations

import functools
from typing import Callable

import torch
from torch import nn

from pipeline.head.attention import MultiHeadAttention
from pipeline.head.ffn import FeedForward
from pipeline.head.pooling import masked_mean

Mask = torch.Tensor | None  # [B, L_image] true at a post's real image positions; None: all real

FUSIONS: dict[str, Callable[..., nn.Module]] = {}  # HeadConfig.fusion -> module class, filled by @fusion


def fusion(name: str, **preset):
    """Register a fusion module under `name` (with constructor arguments `preset`, e.g. which modality)."""

    def register(cls):
        FUSIONS[name] = functools.partial(cls, **preset) if preset else cls
        return cls

    return register


class AttentionSublayer(nn.Module):
    """LayerNorm(x + MultiHead(x, context)); self-attention when context is x itself."""

    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.attn, self.norm = MultiHeadAttention(dim, heads), nn.LayerNorm(dim)

    def forward(self, x: torch.Tensor, context: torch.Tensor, context_mask: Mask = None) -> torch.Tensor:
        return self.norm(x + self.attn(x, context, context_mask))


@fusion("sfm")
class SimilarityFusion(nn.Module):
    """SFM: layers of symmetric cross-attention, then M_fuse = CA(X_text) ⊕ CA(X_image) (eq. 17)."""

    def __init__(self, dim: int, heads: int, hidden: int, layers: int = 2):
        super().__init__()
        self.text_to_image = nn.ModuleList(AttentionSublayer(dim, heads) for _ in range(layers))
        self.image_to_text = nn.ModuleList(AttentionSublayer(dim, heads) for _ in range(layers))
        self.out_dim = dim

    def forward(self, text: torch.Tensor, image: torch.Tensor, image_mask: Mask = None) -> torch.Tensor:
        for t2i, i2t in zip(self.text_to_image, self.image_to_text):
            text, image = t2i(text, image, image_mask), i2t(image, text)  # both read the previous layer
        return text.mean(dim=1) + masked_mean(image, image_mask)  # (17) ⊕ = element-wise sum; (B, L, D) -> (B, D)


class CoAttentionLayer(nn.Module):
    """One stream of a co-attention layer: self-attention, cross-attention to the other stream, FFN."""

    def __init__(self, dim: int, heads: int, hidden: int):
        super().__init__()
        self.self_attn = AttentionSublayer(dim, heads)
        self.cross_attn = AttentionSublayer(dim, heads)
        self.ffn = FeedForward(dim, hidden)

    def forward(self, x: torch.Tensor, other: torch.Tensor, x_mask: Mask = None, other_mask: Mask = None) -> torch.Tensor:
        return self.ffn(self.cross_attn(self.self_attn(x, x, x_mask), other, other_mask))


@fusion("co-attention")
class CoAttention(nn.Module):
    """Symmetric co-attention (METER/ViLBERT style): both streams attend to each other every layer."""

    def __init__(self, dim: int, heads: int, hidden: int, layers: int = 2):
        super().__init__()
        self.text_layers = nn.ModuleList(CoAttentionLayer(dim, heads, hidden) for _ in range(layers))
        self.image_layers = nn.ModuleList(CoAttentionLayer(dim, heads, hidden) for _ in range(layers))
        self.out_dim = dim

    def forward(self, text: torch.Tensor, image: torch.Tensor, image_mask: Mask = None) -> torch.Tensor:
        for text_layer, image_layer in zip(self.text_layers, self.image_layers):
            text, image = text_layer(text, image, None, image_mask), image_layer(image, text, image_mask)
        return text.mean(dim=1) + masked_mean(image, image_mask)


@fusion("asym-co-attention")
class AsymmetricCoAttention(nn.Module):
    """mPLUG-style: only the text stream queries the image; the image features pass unchanged."""

    def __init__(self, dim: int, heads: int, hidden: int, layers: int = 2):
        super().__init__()
        self.text_layers = nn.ModuleList(CoAttentionLayer(dim, heads, hidden) for _ in range(layers))
        self.out_dim = dim

    def forward(self, text: torch.Tensor, image: torch.Tensor, image_mask: Mask = None) -> torch.Tensor:
        for layer in self.text_layers:
            text = layer(text, image, None, image_mask)
        return text.mean(dim=1)  # the text stream carries the fused representation


@fusion("merge-attention")
class MergeAttention(nn.Module):
    """Concatenate the two streams along the sequence, then self-attention layers over both."""

    def __init__(self, dim: int, heads: int, hidden: int, layers: int = 2):
        super().__init__()
        self.attn = nn.ModuleList(AttentionSublayer(dim, heads) for _ in range(layers))
        self.ffn = nn.ModuleList(FeedForward(dim, hidden) for _ in range(layers))
        self.out_dim = dim

    def forward(self, text: torch.Tensor, image: torch.Tensor, image_mask: Mask = None) -> torch.Tensor:
        n_text = text.shape[1]
        x = torch.cat([text, image], dim=1)  # (B, L_t + L_i, D): attention over a real sequence
        mask = None if image_mask is None else torch.cat([image_mask.new_ones(text.shape[:2]), image_mask], dim=1)
        for attn, ffn in zip(self.attn, self.ffn):
            x = ffn(attn(x, x, mask))
        return x[:, :n_text].mean(dim=1) + masked_mean(x[:, n_text:], image_mask)  # text ⊕ image positions


@fusion("sum")
class SumFusion(nn.Module):
    """No fusion module: M_fuse = text ⊕ image."""

    def __init__(self, dim: int, *_, **__):
        super().__init__()
        self.out_dim = dim

    def forward(self, text: torch.Tensor, image: torch.Tensor, image_mask: Mask = None) -> torch.Tensor:
        return text.mean(dim=1) + masked_mean(image, image_mask)


@fusion("concat")
class ConcatFusion(nn.Module):
    """Feature-level fusion: M_fuse = [text; image] (2D wide)."""

    def __init__(self, dim: int, *_, **__):
        super().__init__()
        self.out_dim = 2 * dim

    def forward(self, text: torch.Tensor, image: torch.Tensor, image_mask: Mask = None) -> torch.Tensor:
        return torch.cat([text.mean(dim=1), masked_mean(image, image_mask)], dim=-1)


@fusion("text", modality="text")
@fusion("image", modality="image")
class SelectFusion(nn.Module):
    """One modality alone (text-only / image-only baselines)."""

    def __init__(self, dim: int, *_, modality: str = "text", **__):
        super().__init__()
        self.modality, self.out_dim = modality, dim

    def forward(self, text: torch.Tensor, image: torch.Tensor, image_mask: Mask = None) -> torch.Tensor:
        return text.mean(dim=1) if self.modality == "text" else masked_mean(image, image_mask)



def build_fusion(name: str, dim: int, heads: int, hidden: int, layers: int) -> nn.Module:
    if name not in FUSIONS:
        raise ValueError(f"unknown fusion {name!r}; choose from {', '.join(FUSIONS)}")
    return FUSIONS[name](dim, heads, hidden, layers=layers)
