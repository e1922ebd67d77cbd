"""PredictConfig: every setting of `sgmft predict`."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

from pipeline.extract.config import default_workers


@dataclass(frozen=True)
class PredictConfig:
    run: str  # run directory of `sgmft fit`: its head (or probe) and how its features were made
    data: str  # new posts: a manifest with text and image (id optional; label and split ignored)
    out: str | None = None  # predictions CSV; default <data folder>/<data stem>.predictions.csv
    cache: str | None = None  # feature cache of the new posts; default the CSV's path with .cache.h5
    checkpoint: str | None = None  # the run's cn_clip weights file on this machine (default: as the run was made)
    download_root: str | None = None  # cn_clip's weights folder on this machine (default: as the run was made)
    stopwords: str | None = None  # where the run's --stopwords file lies on this machine (default: its saved path)
    extra_stopwords: str | None = None  # where the run's --extra-stopwords file lies on this machine
    device: str = "auto"  # encoders and head: auto (cuda when present), cpu, cuda, cuda:N
    precision: str = "auto"  # encoders: auto = fp16 on CUDA, fp32 on CPU; or fp32, fp16, bf16
    batch_size: int = 64  # posts per encoder batch
    workers: int = field(default_factory=default_workers)  # image decoding processes; 0 = in the main process
    quiet: bool = False  # no progress bar

    def out_path(self) -> Path:
        data = Path(self.data)
        return Path(self.out) if self.out else data.with_name(f"{data.stem}.predictions.csv")

    def cache_path(self) -> Path:
        return Path(self.cache) if self.cache else self.out_path().with_suffix(".cache.h5")

    def to_dict(self) -> dict:
        return asdict(self)
