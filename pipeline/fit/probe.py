"""The logistic-regression probe: a linear baseline on the concatenated cached features, C chosen on val."""
from __future__ import annotations

import csv
import time
from pathlib import Path

import numpy as np
from sklearn.linear_model import LogisticRegression

from pipeline.fit.config import FitConfig
from pipeline.fit.data import CachedSplits, FitData, prepare
from pipeline.fit.outputs import extraction_record, new_run_dir, write_json, write_predictions
from pipeline.metrics import accuracy, macro_f1
from sgmft_cache import SplitData

PROBE = "logreg-probe"
C_GRID = tuple(10.0**k for k in range(-2, 5))  # inverse L2 strength; l2-normalised inputs need large C


def probe_features(split: SplitData, input_norm: str) -> np.ndarray:
    """[text; image] per post, each half on the unit sphere when input_norm is "l2" (the head's default)."""
    text, image = split.text.numpy().astype(np.float64), split.image.numpy().astype(np.float64)
    if input_norm == "l2":
        unit = lambda x: x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)  # noqa: E731
        text, image = unit(text), unit(image)
    return np.concatenate([text, image], axis=1)  # (N, 2D)


def full_log_proba(model: LogisticRegression, x: np.ndarray, num_classes: int) -> np.ndarray:
    """log P(class) as [N, num_classes]; classes absent from train get -inf (probability 0)."""
    out = np.full((len(x), num_classes), -np.inf)
    out[:, model.classes_] = model.predict_log_proba(x)
    return out


def fit_probe(cfg: FitConfig, splits: CachedSplits) -> tuple[Path, dict]:
    """Fit one probe per C in C_GRID on train, keep the best on val, evaluate on test; same run contract."""
    data = prepare(splits, cfg.val_fraction, cfg.seed)
    x = {name: probe_features(getattr(data, name), cfg.input_norm) for name in ("train", "val", "test")}
    y = {name: getattr(data, name).label.numpy() for name in ("train", "val", "test")}
    run_dir = new_run_dir(cfg.out, cfg.cache, cfg.variant, cfg.seed)
    write_json(run_dir / "config.json", _config(cfg, data))
    start = time.perf_counter()
    search, best = [], None
    for c in C_GRID:
        model = LogisticRegression(C=c, max_iter=2000).fit(x["train"], y["train"])
        row = dict(C=c, train_accuracy=model.score(x["train"], y["train"]),
                   val_accuracy=model.score(x["val"], y["val"]))
        search.append(row)
        if best is None or row["val_accuracy"] > best[1]["val_accuracy"]:  # ties keep the smaller C
            best = (model, row)
    _write_search(run_dir / "c_search.csv", search)
    model, row = best
    labels = list(data.meta.labels)
    log_proba = full_log_proba(model, x["test"], len(labels))
    pred = write_predictions(run_dir, data.test.ids, y["test"], log_proba, x["test"], labels)
    np.savez(run_dir / "probe.npz", coef=model.coef_, intercept=model.intercept_, classes=model.classes_,
             C=model.C, input_norm=cfg.input_norm, labels=np.asarray(labels, dtype=str))
    metrics = _metrics(cfg, data, y["test"], pred, log_proba, row)
    metrics["seconds"] = time.perf_counter() - start
    write_json(run_dir / "metrics.json", metrics)  # written last: its presence marks a finished run
    return run_dir, metrics


def _metrics(cfg: FitConfig, data: FitData, y_true: np.ndarray, pred: np.ndarray, log_proba: np.ndarray,
             row: dict) -> dict:
    labels = list(data.meta.labels)
    test_loss = float(-np.mean(log_proba[np.arange(len(y_true)), y_true]))
    return dict(
        variant=cfg.variant, seed=cfg.seed, test_accuracy=accuracy(y_true, pred),
        test_macro_f1=macro_f1(y_true, pred, len(labels)), test_loss=test_loss,
        val_accuracy=row["val_accuracy"], best_epoch=None, epochs=0, probe_C=row["C"],
        cache=str(cfg.cache), cache_fingerprint=data.meta.fingerprint, encoder=data.meta.model,
        encoder_note=data.meta.extra.get("encoder_note", ""), labels=labels, val_source=data.val_source,
        train_size=len(data.train), val_size=len(data.val), test_size=len(data.test), device="cpu",
    )


def _config(cfg: FitConfig, data: FitData) -> dict:
    probe = dict(model="sklearn LogisticRegression (lbfgs, multinomial, L2)", C_grid=list(C_GRID),
                 features="[text; image]", input_norm=cfg.input_norm, chosen_by="validation accuracy")
    return dict(fit=cfg.to_dict(), probe=probe, val_source=data.val_source, cache_fingerprint=data.meta.fingerprint,
                encoder=data.meta.model, labels=list(data.meta.labels), extraction=extraction_record(data.meta))


def _write_search(path: Path, rows: list[dict]) -> None:
    with path.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=["C", "train_accuracy", "val_accuracy"])
        w.writeheader()
        w.writerows(rows)
