"""HeadConfig: the shape and wiring of the SG-MFT head. Imports no torch, so a stage's config can read its defaults."""
from __future__ import annotations

from dataclasses import asdict, dataclass

INPUT_NORMS = ("l2", "none")  # "l2": features on CLIP's unit sphere; "none": the encoders' raw outputs
SCALES = ("none", "learned")  # a similarity as it is (paper), or times a learnable temperature τ (ours)
MAX_WIDTH = 65_536  # any width (D, d_h, classifier layers, classes) beyond this is refused before allocation
MAX_LAYERS = 64  # fusion layers, classifier layers
MAX_WEIGHTS = 1_000_000_000  # a rough upper bound on the head's weights (4 GB in float32); the paper's config: ~5e7 by this count


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
    scale_m: str = "none"  # τ_m in P^m = gate(τ_m S^m): "none" (paper, τ_m = 1) or "learned" (ours, CLIP's logit_scale)
    scale_e: str = "none"  # τ_e in P^e_i = softmax_j(τ_e S^e_i): "none" (paper) or "learned" (ours)
    fusion: str = "sfm"  # a name of head.fusion.FUSIONS: sfm, co-attention, merge-attention, sum, concat, ...
    fusion_layers: int = 2  # layers of the fusion module (paper: two)
    dropout: float = 0.0  # in the classifier; the paper names none
    input_norm: str = "l2"  # scaling of cached features before the head: "l2" (CLIP's space) or "none"
    fast_path: bool = True  # skip Q/K when attending over one key (exact; proven by a test)
    images: str = "first"  # a post's images: "first" (paper), "mean" (masked mean, ours), "attend" (a sequence, ours)

    def __post_init__(self) -> None:
        why = self.problem()
        if why:
            raise ValueError(f"head config {why}")

    def problem(self) -> str | None:
        """What makes this config absurd (a crafted or broken checkpoint), before any weight is allocated."""
        widths = dict(embed_dim=self.embed_dim, num_classes=self.num_classes, heads=self.heads,
                      ffn_hidden=self.ffn_hidden, fusion_layers=self.fusion_layers,
                      **{f"classifier_hidden[{i}]": w for i, w in enumerate(self.classifier_hidden)})
        for name, value in widths.items():
            if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= MAX_WIDTH:
                return f"{name}={value!r}: must be an integer in 1..{MAX_WIDTH}"
        if len(self.classifier_hidden) > MAX_LAYERS or self.fusion_layers > MAX_LAYERS:
            return f"has more than {MAX_LAYERS} layers"
        if not isinstance(self.dropout, (int, float)) or not 0 <= self.dropout < 1:
            return f"dropout={self.dropout!r}: must lie in [0, 1)"
        d, layers = self.embed_dim, self.fusion_layers + 2  # the SIM's attention and FFN count as about two layers
        weights = 2 * layers * d * (4 * d + 2 * self.ffn_hidden) + d * max(self.classifier_hidden, default=1) * 2
        if weights > MAX_WEIGHTS:
            return f"would need about {weights:.2g} weights (more than {MAX_WEIGHTS:.0e})"
        return None

    @classmethod
    def from_dict(cls, d: dict) -> "HeadConfig":
        d = dict(d)
        d["classifier_hidden"] = tuple(d.get("classifier_hidden", cls.classifier_hidden))
        return cls(**d)

    def to_dict(self) -> dict:
        return asdict(self)
