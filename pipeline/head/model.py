"""The SG-MFT head: optional SIM, a fusion module, the five-layer classifier; returns logits."""
from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

from pipeline.head.classifier import classifier
from pipeline.head.fusion import build_fusion
from pipeline.head.sim import SimilarityInteraction


@dataclass(frozen=True)
class HeadConfig:
    embed_dim: int = 1024  # D: width of the cached text and image features
    num_classes: int = 7  # d_cls: the paper's seven semantic locations
    heads: int = 8  # h, paper §4.3
    ffn_hidden: int = 1024  # d_h of every FFN; unstated in the paper, D keeps the head small
    classifier_hidden: tuple[int, ...] = (512, 256, 128, 64)  # four hidden widths -> five FC layers (MC)
    sim: bool = True  # similarity-aware interaction module (polymerizer + interpolation attention + FFN)
    ffn_guide: str = "text"  # whose FFN takes X_inter: "text" (paper) or "image" (Table 4)
    gate: str = "softmax"  # P^m: softmax over D (paper) or per-channel "sigmoid"
    fusion: str = "sfm"  # sfm | co-attention | asym-co-attention | merge-attention | sum | concat | text | image
    fusion_layers: int = 2  # layers of the fusion module (paper: two)
    dropout: float = 0.0  # in the classifier; the paper names none
    input_norm: str = "l2"  # scaling of cached features before the head: "l2" (CLIP's space) or "none"
    fast_path: bool = True  # skip Q/K when attending over one key (exact; proven by a test)

    @classmethod
    def from_dict(cls, d: dict) -> "HeadConfig":
        d = dict(d)
        d["classifier_hidden"] = tuple(d.get("classifier_hidden", cls.classifier_hidden))
        return cls(**d)

    def to_dict(self) -> dict:
        return asdict(self)


class SGMFTHead(nn.Module):
    def __init__(self, cfg: HeadConfig | None = None):
        super().__init__()
        cfg = cfg or HeadConfig()
        if cfg.input_norm not in ("l2", "none"):
            raise ValueError(f"unknown input_norm {cfg.input_norm!r}; use 'l2' or 'none'")
        self.cfg = cfg
        d = cfg.embed_dim
        self.sim = (
            SimilarityInteraction(d, cfg.heads, cfg.ffn_hidden, cfg.gate, cfg.ffn_guide, cfg.fast_path)
            if cfg.sim
            else None
        )
        self.fusion = build_fusion(cfg.fusion, d, cfg.heads, cfg.ffn_hidden, cfg.fusion_layers, cfg.fast_path)
        self.classifier = classifier(self.fusion.out_dim, cfg.classifier_hidden, cfg.num_classes, cfg.dropout)

    def fuse(self, t: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """M_fuse for F_text = t, F_image = v, each [B, D]."""
        if self.cfg.input_norm == "l2":
            t, v = F.normalize(t, dim=-1), F.normalize(v, dim=-1)
        if self.sim is not None:
            text, image = self.sim(t, v)  # (1-16)
        else:
            text, image = t[:, None], v[:, None]  # (B, 1, D)
        return self.fusion(text, image)  # (17)

    def forward(self, t: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """Class logits [B, num_classes]; softmax and cross-entropy (eqs. 18-19) belong to the loss."""
        return self.classifier(self.fuse(t, v))
