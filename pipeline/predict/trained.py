"""A finished run of `sgmft fit`, loaded for prediction: its trained model and how its features were made.

The run directory is enough on its own: config.json records the cache's provenance (model, weights,
preprocessing, extract settings) and the run's trainer knows its own files (a head's checkpoint.pt,
the probe's probe.npz). Runs made before fit recorded the provenance fall back to the cache.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from sgmft_cache import CacheError, CacheMeta, SgmftError, SplitData, validate
from pipeline.fit import load_scorer
from pipeline.metrics import softmax
from pipeline.rundir import CONFIG, METRICS, RunConfig, RunDir


@dataclass(frozen=True)
class TrainedRun:
    path: Path
    variant: str
    labels: tuple[str, ...]  # class names; position = column of the probabilities
    fingerprint: str  # of the cache the run was fitted on
    extraction: CacheMeta  # the root attributes of that cache: model, provenance, ...
    scores: object  # features -> class scores [N, len(labels)] (pipeline.fit.trainers.Scorer)

    @property
    def encoder(self) -> str:
        return self.extraction.model

    @property
    def encoder_note(self) -> str:
        return self.extraction.provenance.encoder_note

    def probabilities(self, data: SplitData) -> np.ndarray:
        """[N, len(labels)], rows summing to 1."""
        if not len(data):
            return np.zeros((0, len(self.labels)))
        return softmax(self.scores(data))


def load_trained_run(run_dir: str | Path, device: str | torch.device = "cpu") -> TrainedRun:
    """The run in `run_dir`, or one clear SgmftError saying why it cannot predict."""
    run = RunDir(Path(run_dir))
    if not run.path.is_dir():
        raise SgmftError(f"{run.path}: no such run directory (give one written by `sgmft fit`, e.g. cache/runs/<name>)")
    config = _read_config(run)
    if not run.finished:
        raise SgmftError(f"{run.path}: unfinished run (no {METRICS}): `sgmft fit` did not finish it; train it again")
    try:
        run.check_finished()
    except (OSError, ValueError, KeyError) as e:
        raise SgmftError(f"{run.file(METRICS)}: unreadable ({type(e).__name__}: {e}); fit the run again") from None
    scores = load_scorer(run.path, device)
    return TrainedRun(run.path, config.variant, config.labels, config.fingerprint, _extraction(run, config), scores)


def _read_config(run: RunDir) -> RunConfig:
    file = run.file(CONFIG)
    if not file.exists():
        raise SgmftError(f"{run.path}: not a run directory of `sgmft fit` (no {CONFIG}); pass --run <run directory>")
    try:
        config = run.read_config()
    except (OSError, ValueError) as e:
        raise SgmftError(f"{file}: unreadable ({type(e).__name__}: {e})") from None
    if not config.labels or not config.fingerprint:
        raise SgmftError(f"{file}: not the {CONFIG} of an sgmft run (no labels or cache_fingerprint)")
    return config


def _extraction(run: RunDir, config: RunConfig) -> CacheMeta:
    """config.json's record; for older runs the cache's own attributes, while it exists and still matches."""
    if config.extraction:
        return CacheMeta.from_record(config.extraction)
    cache = config.fit.get("cache")
    try:
        meta = validate(cache) if cache else None
    except CacheError:
        meta = None
    if meta is None or meta.fingerprint != config.fingerprint:
        raise SgmftError(f"{run.path}: the run does not record how its features were made (fit it again with this "
                         f"sgmft), and its cache {cache} is gone or was remade")
    return meta
