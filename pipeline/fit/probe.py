"""The logistic-regression probe: a linear baseline on the concatenated cached features, C chosen on val."""
from __future__ import annotations

import csv
import time
from pathlib import Path

import numpy as np

from sgmft_cache import SgmftError, SplitData
from pipeline.fit.config import FitConfig
from pipeline.fit.data import FitData
from pipeline.fit.trainers import Scorer, Trained
from pipeline.head import INPUT_NORMS
from pipeline.rundir import C_SEARCH, PROBE_WEIGHTS, RunDir

C_GRID = tuple(10.0**k for k in range(-2, 5))  # inverse L2 strength; l2-normalised inputs need large C
SPLITS = ("train", "val", "test")


def probe_features(split: SplitData, input_norm: str) -> np.ndarray:
    """[text; image] per post, each half on the unit sphere when input_norm is "l2" (the head's default).

    A version-2 cache's post without a text (or an image) has zeros there, and they stay zeros: the probe reads
    the first image and the text as the cache holds them, with no placeholder (the head's learned one is its own).
    An input_norm outside INPUT_NORMS is refused as SGMFTHead refuses it, not read as raw features."""
    if input_norm not in INPUT_NORMS:
        raise ValueError(f"unknown input_norm {input_norm!r}; use one of {', '.join(INPUT_NORMS)}")
    text, image = split.text.numpy().astype(np.float64), split.image.numpy().astype(np.float64)
    if input_norm == "l2":
        unit = lambda x: x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)  # noqa: E731
        text, image = unit(text), unit(image)
    return np.concatenate([text, image], axis=1)  # (N, 2D)


def full_log_proba(model, x: np.ndarray, num_classes: int) -> np.ndarray:
    """log P(class) as [N, num_classes]; classes absent from train get -inf (probability 0)."""
    out = np.full((len(x), num_classes), -np.inf)
    out[:, model.classes_] = model.predict_log_proba(x)
    return out


class ProbeTrainer:
    """One scikit-learn logistic regression per C in C_GRID on train; the best on val is kept."""

    device = "cpu"

    def __init__(self, cfg: FitConfig, data: FitData):
        self.cfg, self.data = cfg, data
        self.x = {name: probe_features(getattr(data, name), cfg.input_norm) for name in SPLITS}
        self.y = {name: getattr(data, name).label.numpy() for name in SPLITS}
        self.settings = dict(model="sklearn LogisticRegression (lbfgs, multinomial, L2)", C_grid=list(C_GRID),
                             features="[text; image]", input_norm=cfg.input_norm, chosen_by="validation accuracy")

    def train(self, run: RunDir) -> Trained:
        from sklearn.linear_model import LogisticRegression  # 2 s of imports that only the probe needs

        x, y = self.x, self.y
        start = time.perf_counter()
        search, best = [], None
        for c in C_GRID:
            model = LogisticRegression(C=c, max_iter=2000).fit(x["train"], y["train"])
            row = dict(C=c, train_accuracy=model.score(x["train"], y["train"]),
                       val_accuracy=model.score(x["val"], y["val"]))
            search.append(row)
            if best is None or row["val_accuracy"] > best[1]["val_accuracy"]:  # ties keep the smaller C
                best = (model, row)
        _write_search(run.file(C_SEARCH), search)
        model, row = best
        labels = list(self.data.meta.labels)
        np.savez(run.file(PROBE_WEIGHTS), coef=model.coef_, intercept=model.intercept_, classes=model.classes_,
                 C=model.C, input_norm=self.cfg.input_norm, labels=np.asarray(labels, dtype=str),
                 cache_fingerprint=self.data.meta.fingerprint, run_id=run.run_id)
        log_proba = full_log_proba(model, x["test"], len(labels))
        selection = dict(best_epoch=None, epochs=0, probe_C=row["C"], seconds=time.perf_counter() - start)
        return Trained(row["val_accuracy"], f"C={row['C']:g}", selection, log_proba, x["test"])

    @staticmethod
    def scorer(run: RunDir, device=None) -> Scorer:
        """The saved multinomial logistic regression as scores whose softmax is sklearn's predict_proba."""
        file = run.file(PROBE_WEIGHTS)
        if not file.exists():
            raise SgmftError(f"{run.path}: a logreg-probe run without {PROBE_WEIGHTS}; fit it again")
        with np.load(file) as z:
            coef, intercept, classes = z["coef"], z["intercept"], z["classes"]
            input_norm, num_classes = str(z["input_norm"]), len(z["labels"])
            saved = {k: str(z[k]) for k in ("cache_fingerprint", "run_id") if k in z.files}
            run.check_trained(z["labels"].tolist(), saved.get("cache_fingerprint", run.read_config().fingerprint),
                              saved.get("run_id", ""), PROBE_WEIGHTS)

        def scores(data: SplitData) -> np.ndarray:
            raw = probe_features(data, input_norm) @ coef.T + intercept  # [N, classes seen in train]
            if coef.shape[0] == 1:  # two classes: sklearn keeps one score, P(second) = sigmoid(score)
                raw = np.concatenate([np.zeros_like(raw), raw], axis=1)
            out = np.full((len(data), num_classes), -np.inf)
            out[:, classes] = raw  # classes absent from train: probability 0
            return out

        return scores


def _write_search(path: Path, rows: list[dict]) -> None:
    with path.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=["C", "train_accuracy", "val_accuracy"])
        w.writeheader()
        w.writerows(rows)
