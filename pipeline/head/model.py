"""The SG-MFT head: optional SIM, a fusion module, the five-layer classifier; returns logits."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from pipeline.head.attention import use_one_key_shortcut
from pipeline.head.classifier import classifier
from pipeline.head.config import INPUT_NORMS, HeadConfig
from pipeline.head.fusion import build_fusion
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
        use_one_key_shortcut(self, cfg.fast_path)  # the one place the attention path is chosen

    def normalise(self, t: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The features as the SIM and the fusion see them (HeadConfig.input_norm)."""
        if self.cfg.input_norm == "l2":
            return _unit(t), _unit(v)
        return t, v

    def fuse(self, t: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """M_fuse for F_text = t, F_image = v, each [B, D]."""
        t, v = self.normalise(t, v)
        if self.sim is not None:
            text, image = self.sim(t, v)  # (1-16)
        else:
            text, image = t[:, None], v[:, None]  # (B, 1, D)
        return self.fusion(text, image)  # (17)

    def forward(self, t: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """Class logits [B, num_classes]; softmax and cross-entropy (eqs. 18-19) belong to the loss."""
        return self.classifier(self.fuse(t, v))


def _unit(x: torch.Tensor) -> torch.Tensor:
    """x / ‖x‖ over the last axis, scaled by its largest entry first: ‖x‖² of features near 1e37 overflows
    float32 and would make every vector zero."""
    scale = x.abs().amax(dim=-1, keepdim=True).clamp_min(torch.finfo(x.dtype).tiny)
    return F.normalize(x / scale, dim=-1)
