"""FitConfig: every setting of `sgmft fit`, with the paper's defaults (§4.3), and their checks."""
from __future__ import annotations

from dataclasses import asdict, dataclass

from sgmft_cache import DEFAULT_CACHE, SgmftError
from pipeline import variants
from pipeline.device import AUTO
from pipeline.head import INPUT_NORMS, HeadConfig
from pipeline.settings import setting, unmeasured

MAX_IMAGES = 9  # images per post an image-set head reads by default (extract's --max-images default)


@dataclass(frozen=True)
class FitConfig:
    cache: str = setting(DEFAULT_CACHE, "Feature cache written by `sgmft extract`.", measured=False)
    variant: str = setting(variants.FULL, f"What to train ({variants.FULL}: the paper's full model): one of "
                           f"{', '.join(variants.names())}.", measured=False)
    epochs: int = setting(30, "Training epochs (paper: 30).")
    lr: float = setting(1e-5, "Adam learning rate (paper: 1e-5).")
    betas: tuple[float, float] = setting((0.9, 0.99), "Adam β (paper: 0.9, 0.99).")
    batch_size: int = setting(20, "Posts per step (paper: 20).")
    heads: int = setting(HeadConfig.heads, "Attention heads h (paper: 8).")
    ffn_hidden: int = setting(HeadConfig.ffn_hidden, "FFN hidden width d_h (unstated in the paper).")
    input_norm: str = setting(HeadConfig.input_norm, "'l2' puts features on CLIP's unit sphere; 'none' keeps raw "
                              "outputs.")
    modality_dropout: float = setting(0.0, "Training only: a post with both text and image loses one of them (either, "
                                      "evenly; never both) with this probability at each step, so that one head also "
                                      "serves text-only and image-only posts (ours; 0 = the paper).")
    max_images: int = setting(MAX_IMAGES, "Images per post that sgmft-images and sgmft-mean-images read (the first "
                              "N of the cache's); the other variants read the first image only.")
    seed: int = setting(0, "Seeds the val carve-out, initialisation and batch order.", measured=False)
    val_fraction: float = setting(0.1, "Share of train held out for checkpoint choice when the cache has no "
                                  "val split.")
    device: str = setting(AUTO, "auto (cuda when present), cpu, cuda, cuda:N.", measured=False)
    out: str | None = setting(None, "Run directory; for a sweep the folder of <variant>-seed<seed> runs "
                              "(default: <cache folder>/runs/<time>-<variant>-seed<seed>).", measured=False)
    overwrite: bool = setting(False, "Delete the run files in --out first; without it an --out holding a run is "
                              "refused.", measured=False)
    quiet: bool = setting(False, "No progress bar.", measured=False)

    def __post_init__(self) -> None:
        if self.variant not in variants.VARIANTS:
            raise SgmftError(f"unknown variant {self.variant!r}; choose from {', '.join(variants.names())}")
        problems = [
            (self.epochs < 1, f"--epochs {self.epochs}: must be 1 or more"),
            (self.lr < 0, f"--lr {self.lr}: must not be negative"),
            (self.batch_size < 1, f"--batch-size {self.batch_size}: must be 1 or more"),
            (self.heads < 1, f"--heads {self.heads}: must be 1 or more"),
            (self.ffn_hidden < 1, f"--ffn-hidden {self.ffn_hidden}: must be 1 or more"),
            (self.input_norm not in INPUT_NORMS, f"--input-norm {self.input_norm}: choose {' or '.join(INPUT_NORMS)}"),
            (not 0.0 <= self.modality_dropout < 1.0, f"--modality-dropout {self.modality_dropout}: must lie in [0, 1)"),
            (self.max_images < 1, f"--max-images {self.max_images}: must be 1 or more"),
            (not 0.0 < self.val_fraction < 1.0, f"--val-fraction {self.val_fraction}: must lie between 0 and 1"),
        ]
        for bad, message in problems:
            if bad:
                raise SgmftError(message)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def measured(cls, saved: dict) -> dict:
        """The settings of a saved config that change what a run measures (not paths, device, seed, ...)."""
        skip = unmeasured(cls)
        return {k: v for k, v in saved.items() if k not in skip}
