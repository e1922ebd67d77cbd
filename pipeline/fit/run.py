"""`sgmft fit`: train a variant on a cache, choose by validation accuracy, evaluate on test — the same for every trainer."""
from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from sgmft_cache import SgmftWarning, SplitData, content_identity

from pipeline.fit.config import FitConfig
from pipeline.fit.data import CachedSplits, FitData, load_cached_splits, prepare
from pipeline.fit.trainers import Scorer, Trained, trainer_class
from pipeline.metrics import post_kinds, scores_by_kind, split_scores
from pipeline.rundir import RunConfig, RunDir, RunMetrics


@dataclass(frozen=True)
class FitResult:
    run_dir: Path
    metrics: dict  # what metrics.json holds


def fit(cfg: FitConfig, splits: CachedSplits | None = None) -> FitResult:
    """Train one variant with one seed; `splits` (loaded from cfg.cache) lets a sweep load the cache once."""
    if splits is not None and str(splits.path) != str(cfg.cache):
        raise ValueError(f"fit: splits loaded from {splits.path} given for a run on {cfg.cache}")
    # loaded here, the whole train split is let go once carved into train and val (a sweep keeps its own copy)
    data = prepare(splits or load_cached_splits(cfg.cache, cfg.max_memory), cfg.val_fraction, cfg.seed)
    warn_unseen(data, cfg.cache)
    trainer = trainer_class(cfg.variant)(cfg, data)  # every check, before the run directory exists
    content = content_identity(cfg.cache)  # which posts and labels: the report never averages two caches
    run = RunDir.create(cfg.out, cfg.cache, cfg.variant, cfg.seed, cfg.overwrite)
    run.write_config(RunConfig.of(cfg.to_dict(), data.meta, val_source=data.val_source, device=trainer.device,
                                  trainer=trainer.settings, torch=torch.__version__, cache_content=content))
    trained = trainer.train(run)
    metrics = _finish(cfg, data, run, trained, trainer.device, content)
    return FitResult(run.path, metrics.to_json())


def warn_unseen(data: FitData, cache: str) -> None:
    """Test posts of a class with no training post count as errors whatever the head learns: say so."""
    unseen = sorted(set(data.test.label.tolist()) - set(data.train.label.tolist()))
    if unseen:
        names = ", ".join(data.meta.labels[c] for c in unseen)
        warnings.warn(f"{cache}: test posts of class(es) {names} have no training post, so no head can predict them "
                      "and every one counts as an error", UnseenClassWarning, stacklevel=3)


class UnseenClassWarning(SgmftWarning):
    """Test labels that train never shows."""


def _finish(cfg: FitConfig, data: FitData, run: RunDir, trained: Trained, device: str, content: str) -> RunMetrics:
    labels = list(data.meta.labels)
    y_true = data.test.label.numpy()
    run.write_test_outputs(data.test.ids, y_true, trained.test_scores, trained.fusion, labels)
    meta = data.meta
    metrics = RunMetrics(
        variant=cfg.variant, seed=cfg.seed, scores=split_scores(y_true, trained.test_scores, len(labels)),
        val_accuracy=trained.val_accuracy, chosen=trained.chosen, selection=trained.selection, cache=str(cfg.cache),
        cache_fingerprint=meta.fingerprint, encoder=meta.model, encoder_note=meta.provenance.encoder_note,
        placeholder_encoder=meta.placeholder, labels=tuple(labels), val_source=data.val_source,
        train_size=len(data.train), val_size=len(data.val), test_size=len(data.test), device=device,
        run_id=run.run_id, cache_content=content,
        by_kind=scores_by_kind(y_true, trained.test_scores, test_kinds(data.test), len(labels)))
    run.write_metrics(metrics)  # last: its presence marks a finished run
    return metrics


def test_kinds(split: SplitData) -> dict[str, np.ndarray]:
    """The post kinds of a split's posts (text+image, text only, image only, several images)."""
    return post_kinds(split.has_text.numpy(), split.has_image.numpy(), split.image_counts.numpy())


def load_scorer(run_dir: str | Path, device: torch.device) -> Scorer:
    """Class scores of a finished run's trained model (a head's logits, the probe's log-probabilities)."""
    run = RunDir(Path(run_dir))
    return trainer_class(run.read_config().variant).scorer(run, device)
