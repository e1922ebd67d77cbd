"""PredictConfig: every setting of `sgmft predict`; where predict runs stage one, its defaults are extract's."""
from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

from pipeline.extract import ExtractConfig
from pipeline.settings import help_of, required, setting


@dataclass(frozen=True)
class PredictConfig:
    run: str = required("Run directory of `sgmft fit` (a head's or the logreg-probe's); it records how its "
                       "features were made.")
    data: str = required("New posts: CSV, TSV, JSONL or Parquet with columns text, image and/or images (relative to "
                        "the file's folder, or absolute) and optionally id; label and split are ignored.")
    out: str | None = setting(None, "Predictions CSV: id, pred, p_<class> per class, modalities, images_used, "
                              "dropped_images, skipped_reason (default: "
                              "<data folder>/<data stem>.predictions.csv).")
    cache: str | None = setting(None, "Feature cache of the new posts, resumable (default: the CSV's path with "
                                ".cache.h5).")
    checkpoint: str | None = setting(None, "The run's cn_clip weights file on this machine (default: where the run's "
                                     "extract found them).")
    download_root: str | None = setting(None, "cn_clip's weights folder on this machine (default: the run's).")
    stopwords: str | None = setting(None, "Where the run's --stopwords file lies on this machine (default: its "
                                    "recorded path).")
    extra_stopwords: str | None = setting(None, "Where the run's --extra-stopwords file lies on this machine.")
    device: str = setting(ExtractConfig.device, "Encoders and head: " + help_of(ExtractConfig, "device"))
    precision: str = setting(ExtractConfig.precision, "Encoders: " + help_of(ExtractConfig, "precision"))
    batch_size: int = setting(ExtractConfig.batch_size, help_of(ExtractConfig, "batch_size"))
    workers: int | None = setting(ExtractConfig.workers, help_of(ExtractConfig, "workers"))
    quiet: bool = setting(False, "No progress bar.")

    def out_path(self) -> Path:
        data = Path(self.data)
        return Path(self.out) if self.out else data.with_name(f"{data.stem}.predictions.csv")

    def cache_path(self) -> Path:
        return Path(self.cache) if self.cache else self.out_path().with_suffix(".cache.h5")

    def to_dict(self) -> dict:
        return asdict(self)
