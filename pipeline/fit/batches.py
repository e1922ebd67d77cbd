"""A split as the head reads it, batch by batch: features in their stored dtype, masks, per-batch image sets."""
from __future__ import annotations

from dataclasses import dataclass

import torch

from sgmft_cache import SplitData
from pipeline.fit.config import MAX_IMAGES


@dataclass(frozen=True)
class Batches:
    """A split's features, masks and labels. Features stay in their stored dtype (float16 caches take half the
    memory) and are cast to float32 one batch at a time, on `device`."""

    text: torch.Tensor  # [N, D] the post's text feature, zeros where it has none
    image: torch.Tensor  # [N, D] its first image, zeros where it has none
    label: torch.Tensor  # [N]
    has_text: torch.Tensor | None = None  # [N] bool; None: every post has a text
    has_image: torch.Tensor | None = None  # [N] bool; None: every post has an image
    images: torch.Tensor | None = None  # [M, D] every image of every post, post by post; None: image sets unused
    offsets: torch.Tensor | None = None  # [N + 1] int64: post i's images are images[offsets[i]:offsets[i + 1]]
    max_images: int = MAX_IMAGES  # K at most: a post's images beyond the first K are not read
    device: torch.device | None = None  # where batches are computed (default: where the tensors are)

    @classmethod
    def of(cls, split: SplitData, device: torch.device, image_sets: bool = False, max_images: int = MAX_IMAGES,
           stay: bool = False) -> "Batches":
        """The split on `device` (with `stay`, left where it is and moved a batch at a time); `image_sets`
        also carries every image of every post, for the heads that read them."""
        where = split.label.device if stay else device
        move = lambda x: x.to(where)  # noqa: E731
        sets = (move(split.images), move(split.image_offsets)) if image_sets else (None, None)
        return cls(move(split.text), move(split.image), move(split.label), move(split.has_text),
                   move(split.has_image), *sets, max_images=max_images, device=torch.device(device))

    def __len__(self) -> int:
        return len(self.label)

    def inputs(self, idx: torch.Tensor, has_text: torch.Tensor | None = None,
               has_image: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """The head's keyword inputs for the posts `idx`, float32 on the compute device; masks given here
        (modality dropout) replace the split's own."""
        device = self.device or self.label.device
        idx = idx.to(self.label.device)
        take = lambda x: x[idx].to(device, non_blocking=True)  # noqa: E731
        out = dict(t=take(self.text).float(), v=take(self.image).float())
        has_text = has_text if has_text is not None else (take(self.has_text) if self.has_text is not None else None)
        has_image = has_image if has_image is not None else (take(self.has_image) if self.has_image is not None else None)
        out.update(has_text=has_text, has_image=has_image)
        if self.images is not None:
            out["images"], out["image_mask"] = self._image_sets(idx, device)
        return {k: v for k, v in out.items() if v is not None}

    def masks(self, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(has_text, has_image) [B] of the posts `idx`, on the compute device; all true where the split has none."""
        device = self.device or self.label.device
        idx = idx.to(self.label.device)
        full = torch.ones(len(idx), dtype=torch.bool, device=device)
        pick = lambda m: full if m is None else m[idx].to(device)  # noqa: E731
        return pick(self.has_text), pick(self.has_image)

    def _image_sets(self, idx: torch.Tensor, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        """([B, K, D] float32 image sets, [B, K] mask): K = the batch's most images, at most max_images."""
        start = self.offsets[idx]
        count = (self.offsets[idx + 1] - start).clamp(max=self.max_images)
        k = max(int(count.max()) if len(idx) else 1, 1)
        pos = torch.arange(k, device=start.device)
        mask = pos[None, :] < count[:, None]  # (B, K)
        if len(self.images) == 0:
            return torch.zeros(len(idx), k, self.image.shape[1], device=device), mask.to(device)
        where = (start[:, None] + pos[None, :]).clamp(max=len(self.images) - 1)  # padding reads a real row, masked
        return self.images[where].to(device, non_blocking=True).float(), mask.to(device)


def drop_modalities(has_text: torch.Tensor, has_image: torch.Tensor, p: float,
                    generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Modality dropout: a post with both modalities loses one of them (text or image, evenly) with probability p;
    a post with one keeps it. Draws on the CPU from `generator`, so a seed gives the same drops on any device."""
    n = len(has_text)
    drop = (torch.rand(n, generator=generator) < p).to(has_text.device) & has_text & has_image
    image_goes = (torch.rand(n, generator=generator) < 0.5).to(has_text.device)
    return has_text & ~(drop & ~image_goes), has_image & ~(drop & image_goes)
