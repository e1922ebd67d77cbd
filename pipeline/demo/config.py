"""DemoConfig: every setting of `sgmft demo`."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from sgmft_cache import DEFAULT_CACHE, SgmftError
from pipeline import variants
from pipeline.extract import ExtractConfig
from pipeline.fit import FitConfig
from pipeline.settings import help_of, setting

REAL_MODEL = "ViT-H-14"  # the paper's encoder, used when its weights are already on this machine
AUTO_ENCODER = "auto"
MIN_POSTS = 70  # 10 per class
TINY_EPOCHS, TINY_LR = 20, 1e-3  # the tiny encoder's 64-wide random features need a larger step than the paper's


def number(x: float) -> str:
    """1e-05 as 1e-5, as people write it."""
    return f"{x:g}".replace("e-0", "e-")


PAPER = f"the paper's {FitConfig.epochs} at {number(FitConfig.lr)}"


@dataclass(frozen=True)
class DemoConfig:
    out: str = setting(str(Path(DEFAULT_CACHE).parent / "demo"), "Folder for everything the demo makes: posts, cache, "
                       "runs, report, predictions.")
    posts: int = setting(560, "Posts to generate, balanced over the 7 classes; 20 % become the test split.")
    new_posts: int = setting(12, "Fresh posts for the predict step (three broken rows are added to them).")
    seed: int = setting(0, "Seeds the posts, splits and fits: same seed, same demo.")
    encoder: str = setting(AUTO_ENCODER, f"auto: {REAL_MODEL} when its weights are already in cn_clip's folder, else "
                           "tiny (random weights); or a cn_clip model name, or tiny.")
    download_root: str | None = setting(None, "cn_clip's weights folder searched by auto (default ~/.cache/clip).")
    variants: tuple[str, ...] = setting(variants.group(variants.DEMO), "Variants and groups to fit, as "
                                        "`sgmft fit --variants` (default: "
                                        f"{', '.join(variants.group(variants.DEMO))}).")
    epochs: int | None = setting(None, f"Epochs per fit (default: {TINY_EPOCHS} with tiny, the paper's "
                                 f"{FitConfig.epochs} with real weights).")
    lr: float | None = setting(None, f"Learning rate (default: {number(TINY_LR)} with tiny, the paper's "
                               f"{number(FitConfig.lr)} "
                               "with real weights).")
    workers: int | None = setting(ExtractConfig.workers, help_of(ExtractConfig, "workers"))
    tsne: bool = setting(True, "Draw the report's t-SNE maps.")
    quiet: bool = setting(False, "No progress bars.")

    def __post_init__(self) -> None:
        if self.posts < MIN_POSTS:
            raise SgmftError(f"--posts {self.posts}: the demo needs at least {MIN_POSTS} posts (10 per class)")
