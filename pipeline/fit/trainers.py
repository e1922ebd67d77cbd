"""How a variant is trained: the trainer kinds of the registry (pipeline/variants.py) and what each returns.

A trainer is built from the fit settings and the prepared data (every check before a run directory
exists), trains into a run directory, and returns the test posts' class scores; run.py does the
rest, the same for every kind. A kind's module is imported only when one of its variants runs, so
a head's `sgmft fit` never loads scikit-learn.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Mapping, Protocol

import numpy as np

from pipeline import variants

if TYPE_CHECKING:
    import torch

    from sgmft_cache import SplitData
    from pipeline.fit.config import FitConfig
    from pipeline.fit.data import FitData
    from pipeline.rundir import RunDir

KINDS = {"head": "pipeline.fit.head_trainer:HeadTrainer", "probe": "pipeline.fit.probe:ProbeTrainer"}

Scorer = Callable[["SplitData"], np.ndarray]  # features of posts -> class scores [N, C] (logits or log-probabilities)


@dataclass(frozen=True)
class Trained:
    """What training left to evaluate: the chosen model's validation accuracy and its test-split outputs."""

    val_accuracy: float  # of the chosen checkpoint (epoch, or C)
    chosen: str  # how it was chosen, in words: "epoch 8", "C=1"
    selection: Mapping  # the same for metrics.json: best_epoch and epochs, probe_C, ...
    test_scores: np.ndarray  # [N_test, C] logits or log-probabilities
    fusion: np.ndarray  # [N_test, D_fuse] M_fuse (the probe: its input [text; image])


class Trainer(Protocol):
    device: str  # where it trains
    settings: Mapping  # its own settings, for config.json

    def __init__(self, cfg: "FitConfig", data: "FitData") -> None: ...

    def train(self, run: "RunDir") -> Trained: ...

    @staticmethod
    def scorer(run: "RunDir", device: "torch.device") -> Scorer: ...


def trainer_class(variant: str) -> type[Trainer]:
    """The trainer of a registered variant, its module imported now."""
    module, name = KINDS[variants.VARIANTS[variant].trainer].split(":")
    return getattr(importlib.import_module(module), name)
