"""FitConfig: every setting of `sgmft fit`, with the paper's defaults (§4.3)."""
from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class FitConfig:
    cache: str = "cache/feats.h5"  # feature cache written by `sgmft extract`
    variant: str = "sgmft"  # head variant, see `sgmft fit --help` / pipeline.head.variants
    epochs: int = 30  # paper §4.3
    lr: float = 1e-5  # Adam learning rate, paper §4.3
    betas: tuple[float, float] = (0.9, 0.99)  # Adam β, paper §4.3
    batch_size: int = 20  # paper §4.3
    heads: int = 8  # h, paper §4.3
    ffn_hidden: int = 1024  # d_h of the FFNs (unstated in the paper)
    input_norm: str = "l2"  # "l2": features on CLIP's unit sphere; "none": raw encoder outputs
    seed: int = 0  # seeds the validation carve-out, initialisation and batch order
    val_fraction: float = 0.1  # share of train held out for checkpoint choice when the cache has no val split
    device: str = "auto"  # "auto" = cuda when present, else cpu
    out: str | None = None  # run directory; default <cache folder>/runs/<time>-<variant>-seed<seed>
    quiet: bool = False  # no progress bar

    def to_dict(self) -> dict:
        return asdict(self)
