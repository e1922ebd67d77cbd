"""The SG-MFT head: optional SIM, a fusion module, the five-layer classifier; returns logits."""
from __future__ import annotations

import torch
from torch import nn

from pipeline.head.attention import use_one_key_shortcut
from pipeline.head.classifier import classifier
from pipeline.head.config import INPUT_NORMS, HeadConfig
from pipeline.head.fusion import build_fusion
from pipeline.head.pooling import ModalityInputs
from pipeline.head.sim import SimilarityInteraction


class SGMFTHead(nn.Module):
    def __init__(self, cfg: HeadConfig | None = None):
        super().__init__()
        cfg = cfg or HeadConfig()
        if cfg.input_norm not in INPUT_NORMS:
            raise ValueError(f"unknown input_norm {cfg.input_norm!r}; use one of {', '.join(INPUT_NORMS)}")
        self.cfg = cfg
        d = cfg.embed_dim
        self.sim = (
            SimilarityInteraction(d, cfg.heads, cfg.ffn_hidden, cfg.gate, cfg.ffn_guide, cfg.scale_m, cfg.scale_e)
            if cfg.sim
            else None
        )
        self.fusion = build_fusion(cfg.fusion, d, cfg.heads, cfg.ffn_hidden, cfg.fusion_layers)
        self.classifier = classifier(self.fusion.out_dim, cfg.classifier_hidden, cfg.num_classes, cfg.dropout)
        self.inputs = ModalityInputs(d, cfg.input_norm, cfg.images)  # last: the other modules' init is as before
        use_one_key_shortcut(self, cfg.fast_path)  # the one place the attention path is chosen

    def normalise(self, t: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The features as the SIM and the fusion see them (HeadConfig.input_norm)."""
        return self.inputs.normalise(t), self.inputs.normalise(v)

    def fuse(self, t: torch.Tensor, v: torch.Tensor, has_text: torch.Tensor | None = None,
             has_image: torch.Tensor | None = None, images: torch.Tensor | None = None,
             image_mask: torch.Tensor | None = None) -> torch.Tensor:
        """M_fuse for F_text = t, F_image = v (the first image), each [B, D].

        has_text, has_image [B] bool say which modality a post has (default: both); a missing one is a
        learned placeholder. images [B, K, D] with image_mask [B, K] is the post's image set, read by the
        variants that pool or attend over it (HeadConfig.images); "first" reads v only.
        """
        x = self.inputs(t, v, has_text, has_image, images, image_mask)
        if self.sim is not None:
            text, image = self.sim(x.t, x.v, x.images, x.image_mask)  # (1-16)
        else:
            text, image = x.t[:, None], x.images  # (B, 1, D), (B, K, D)
        return self.fusion(text, image, x.image_mask)  # (17)

    def forward(self, t: torch.Tensor, v: torch.Tensor, has_text: torch.Tensor | None = None,
                has_image: torch.Tensor | None = None, images: torch.Tensor | None = None,
                image_mask: torch.Tensor | None = None) -> torch.Tensor:
        """Class logits [B, num_classes]; softmax and cross-entropy (eqs. 18-19) belong to the loss."""
        return self.classifier(self.fuse(t, v, has_text, has_image, images, image_mask))
