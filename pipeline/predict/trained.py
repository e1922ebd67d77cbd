"""A finished run of `sgmft fit`, loaded for prediction: its classifier and how its features were made.

The run directory is enough on its own: config.json records the cache's root attributes (model,
weights, preprocessing, extract settings) and checkpoint.pt (a head) or probe.npz (the logistic-
regression probe) holds the classifier. Runs made before fit recorded them fall back to the cache.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from sgmft_cache import CacheError, SgmftError, SplitData, validate
from pipeline.fit.checkpoint import load_checkpoint
from pipeline.fit.outputs import extraction_record
from pipeline.fit.probe import PROBE, probe_features

HEAD_BATCH = 1024  # posts per forward pass of the head


@dataclass(frozen=True)
class TrainedRun:
    path: Path
    variant: str
    labels: tuple[str, ...]  # class names; position = column of the probabilities
    fingerprint: str  # of the cache the run was fitted on
    extraction: dict  # the cache's root attributes (see pipeline.fit.outputs.extraction_record)
    probabilities: Callable[[SplitData], np.ndarray]  # features -> [N, len(labels)], rows sum to 1

    @property
    def encoder(self) -> str:
        return str(self.extraction.get("model", "?"))

    @property
    def encoder_note(self) -> str:
        return str(self.extraction.get("encoder_note", ""))


def load_trained_run(run_dir: str | Path, device: str | torch.device = "cpu") -> TrainedRun:
    """The run in `run_dir`, or one clear SgmftError saying why it cannot predict."""
    path = Path(run_dir)
    if not path.is_dir():
        raise SgmftError(f"{path}: no such run directory (give one written by `sgmft fit`, e.g. cache/runs/<name>)")
    config = _read_json(path / "config.json", path)
    if not (path / "metrics.json").exists():
        raise SgmftError(f"{path}: unfinished run (no metrics.json): `sgmft fit` did not finish it; train it again")
    variant = str(config.get("fit", {}).get("variant", "?"))
    apply = _probe(path) if variant == PROBE else _head(path, device)
    return TrainedRun(path, variant, tuple(config["labels"]), str(config["cache_fingerprint"]),
                      _extraction(path, config), apply)


def _read_json(file: Path, run_dir: Path) -> dict:
    if not file.exists():
        raise SgmftError(f"{run_dir}: not a run directory of `sgmft fit` (no {file.name}); pass --run <run directory>")
    try:
        config = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise SgmftError(f"{file}: unreadable ({type(e).__name__}: {e})") from None
    if not isinstance(config, dict) or "labels" not in config or "cache_fingerprint" not in config:
        raise SgmftError(f"{file}: not the config.json of an sgmft run (no labels or cache_fingerprint)")
    return config


def _extraction(path: Path, config: dict) -> dict:
    """config.json's record; for older runs the cache's own attributes, while it exists and still matches."""
    if "extraction" in config:
        return config["extraction"]
    cache = config.get("fit", {}).get("cache")
    try:
        meta = validate(cache) if cache else None
    except CacheError:
        meta = None
    if meta is None or meta.fingerprint != config["cache_fingerprint"]:
        raise SgmftError(f"{path}: the run does not record how its features were made (fit it again with this sgmft), "
                         f"and its cache {cache} is gone or was remade")
    return extraction_record(meta)


def _head(path: Path, device: str | torch.device) -> Callable[[SplitData], np.ndarray]:
    head, _ = load_checkpoint(path, device)

    @torch.no_grad()
    def probabilities(data: SplitData) -> np.ndarray:
        chunks = [torch.softmax(head(data.text[i:i + HEAD_BATCH].to(device), data.image[i:i + HEAD_BATCH].to(device)), 1)
                  for i in range(0, len(data), HEAD_BATCH)]
        return torch.cat(chunks).cpu().numpy() if chunks else np.zeros((0, head.cfg.num_classes), np.float32)

    return probabilities


def _probe(path: Path) -> Callable[[SplitData], np.ndarray]:
    """The probe's multinomial logistic regression, applied as sklearn's predict_proba does."""
    file = path / "probe.npz"
    if not file.exists():
        raise SgmftError(f"{path}: a logreg-probe run without probe.npz; fit it again")
    with np.load(file) as z:
        coef, intercept, classes = z["coef"], z["intercept"], z["classes"]
        input_norm, num_classes = str(z["input_norm"]), len(z["labels"])

    def probabilities(data: SplitData) -> np.ndarray:
        scores = probe_features(data, input_norm) @ coef.T + intercept  # [N, classes seen in train]
        if coef.shape[0] == 1:  # two classes: sklearn keeps one score, P(second) = sigmoid(score)
            scores = np.concatenate([np.zeros_like(scores), scores], axis=1)
        scores = np.exp(scores - scores.max(axis=1, keepdims=True))
        out = np.zeros((len(data), num_classes))
        out[:, classes] = scores / scores.sum(axis=1, keepdims=True)  # classes absent from train: 0
        return out

    return probabilities
