"""A post's image set: masked pooling over its images, and the input step of the head (normalise, then placeholders).

Masked values never reach the model: they are replaced (torch.where, so no gradient flows into them)
before anything reads them, and the modality a post lacks becomes a learned placeholder vector after the
input normalisation — a zero vector is never pushed through l2-normalisation and on into the head.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

IMAGE_POOLS = ("first", "mean", "attend")  # HeadConfig.images: the paper's first image, a masked mean, a sequence


def masked_mean(x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """Mean over dim 1 of x [B, L, D] at the positions where mask [B, L] is true (all when None) -> [B, D].

    A row without any true position gives zeros; masked values are replaced, not multiplied by 0, so a NaN
    there does not leak."""
    if mask is None:
        return x.mean(dim=1)
    kept = torch.where(mask[..., None], x, torch.zeros((), dtype=x.dtype, device=x.device))
    return kept.sum(dim=1) / mask.sum(dim=1, keepdim=True).clamp(min=1).to(x.dtype)


@dataclass(frozen=True)
class HeadInputs:
    """What the SIM and the fusion module see of a batch of posts."""

    t: torch.Tensor  # [B, D] text, normalised, the placeholder where the post has none
    v: torch.Tensor  # [B, D] the image the paper's equations use: the first, or the pooled set
    images: torch.Tensor  # [B, K, D] the image sequence (K = 1: just v), the placeholder at position 0 where none
    image_mask: torch.Tensor | None  # [B, K] true at real positions; None: every position is real


class ModalityInputs(nn.Module):
    """Normalise the features, pool the image set, and put a learned placeholder where a modality is missing."""

    def __init__(self, dim: int, input_norm: str, images: str):
        super().__init__()
        if images not in IMAGE_POOLS:
            raise ValueError(f"unknown image pooling {images!r}; use one of {', '.join(IMAGE_POOLS)}")
        self.input_norm, self.pool = input_norm, images
        # a point on the unit sphere, like an l2-normalised feature; learned when posts lack the modality
        self.text_placeholder = nn.Parameter(F.normalize(torch.randn(dim), dim=0))
        self.image_placeholder = nn.Parameter(F.normalize(torch.randn(dim), dim=0))

    def normalise(self, x: torch.Tensor) -> torch.Tensor:
        """The features as the SIM and the fusion see them (HeadConfig.input_norm), over the last dim."""
        return unit(x) if self.input_norm == "l2" else x

    def forward(self, text: torch.Tensor, image: torch.Tensor, has_text: torch.Tensor | None = None,
                has_image: torch.Tensor | None = None, images: torch.Tensor | None = None,
                image_mask: torch.Tensor | None = None) -> HeadInputs:
        """text, image [B, D] (image: the first); has_* [B] bool; images [B, K, D] with image_mask [B, K]."""
        if self.pool == "first" or images is None:
            images, image_mask = image[:, None], None if has_image is None else has_image[:, None]
        if image_mask is not None:
            has_image = image_mask.any(dim=1) if has_image is None else has_image & image_mask.any(dim=1)
            images = _blank(images, image_mask[..., None])
        t = self.normalise(text if has_text is None else _blank(text, has_text[:, None]))
        seq = self.normalise(images)  # (B, K, D)
        v = seq[:, 0] if self.pool == "first" else self._pooled(seq, image_mask)
        if has_text is not None:
            t = torch.where(has_text[:, None], t, self.text_placeholder.to(t.dtype))
        if has_image is not None:
            v, seq, image_mask = self._image_placeholder(v, seq, image_mask, has_image)
        if self.pool != "attend":
            seq, image_mask = v[:, None], None
        return HeadInputs(t, v, seq, image_mask)

    def _pooled(self, seq: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        """The masked mean of the normalised images, back on the unit sphere when input_norm is l2."""
        return self.normalise(masked_mean(seq, mask))

    def _image_placeholder(self, v: torch.Tensor, seq: torch.Tensor, mask: torch.Tensor | None,
                           has_image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Posts without an image: v and position 0 of the sequence become the placeholder, the only real one."""
        placeholder = self.image_placeholder.to(v.dtype)
        v = torch.where(has_image[:, None], v, placeholder)
        first = torch.zeros(seq.shape[:2], dtype=torch.bool, device=seq.device)
        first[:, 0] = True
        mask = torch.ones_like(first) if mask is None else mask
        mask = torch.where(has_image[:, None], mask, first)
        seq = torch.where((~has_image[:, None] & first)[..., None], placeholder, seq)
        return v, seq, mask


def _blank(x: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
    """x where `keep`, zeros elsewhere: what a masked value was has no influence and gets no gradient."""
    return torch.where(keep, x, torch.zeros((), dtype=x.dtype, device=x.device))


def unit(x: torch.Tensor) -> torch.Tensor:
    """x / ‖x‖ over the last axis, scaled by its largest entry first: ‖x‖² of features near 1e37 overflows
    float32 and would make every vector zero."""
    scale = x.abs().amax(dim=-1, keepdim=True).clamp_min(torch.finfo(x.dtype).tiny)
    return F.normalize(x / scale, dim=-1)
