"""What a fit run leaves in its directory: config, per-epoch metrics, predictions, metrics.json."""
from __future__ import annotations

import csv
import json
import os
import time
from pathlib import Path

import numpy as np

from sgmft_cache import CacheMeta

EPOCH_FIELDS = ("epoch", "train_loss", "train_accuracy", "val_loss", "val_accuracy", "seconds")


def new_run_dir(out: str | None, cache: str, variant: str, seed: int) -> Path:
    """`out` if given, else a fresh <cache folder>/runs/<time>-<variant>-seed<seed>."""
    if out:
        path = Path(out)
    else:
        stamp = time.strftime("%Y%m%d-%H%M%S")
        base = Path(cache).parent / "runs" / f"{stamp}-{variant}-seed{seed}"
        path, k = base, 1
        while path.exists():
            k += 1
            path = base.with_name(f"{base.name}-{k}")
    path.mkdir(parents=True, exist_ok=True)
    return path


EXTRACTION_ATTRS = ("weights", "arch", "encoder_note", "precision")  # cache root attrs kept as they are
EXTRACTION_JSON_ATTRS = ("extract_config", "preprocessing")  # cache root attrs holding JSON


def extraction_record(meta: CacheMeta) -> dict:
    """How the cache's features were made (its root attributes), kept in the run so that `sgmft predict`
    can make the same features for new posts when the cache itself is gone."""
    record = dict(model=meta.model, embed_dim=meta.embed_dim, fingerprint=meta.fingerprint, labels=list(meta.labels))
    record.update({k: meta.extra[k] for k in EXTRACTION_ATTRS if k in meta.extra})
    record.update({k: json.loads(meta.extra[k]) for k in EXTRACTION_JSON_ATTRS if k in meta.extra})
    return record


def write_json(path: Path, obj: dict) -> None:
    """Write JSON under a temporary name and rename, so a reader never sees half a file."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(obj, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    os.replace(tmp, path)


class EpochLog:
    """epochs.csv, one row per finished epoch, flushed as it goes."""

    def __init__(self, path: Path):
        self.path = path
        with path.open("w", newline="") as f:
            csv.writer(f).writerow(EPOCH_FIELDS)

    def append(self, row: dict) -> None:
        with self.path.open("a", newline="") as f:
            csv.writer(f).writerow([_fmt(row[k]) for k in EPOCH_FIELDS])


def _fmt(x) -> str:
    return f"{x:.6g}" if isinstance(x, float) else str(x)


def write_predictions(
    run_dir: Path, ids: list[str], y_true: np.ndarray, logits: np.ndarray, fusion: np.ndarray, labels: list[str]
) -> np.ndarray:
    """predictions.csv (id,label,pred as class names) and test_outputs.npz (probabilities, M_fuse)."""
    pred = logits.argmax(axis=1)
    with (run_dir / "predictions.csv").open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["id", "label", "pred"])
        for i, t, p in zip(ids, y_true, pred):
            w.writerow([i, labels[t], labels[p]])
    probs = np.exp(logits - logits.max(axis=1, keepdims=True))
    probs /= probs.sum(axis=1, keepdims=True)
    np.savez_compressed(
        run_dir / "test_outputs.npz",
        ids=np.asarray(ids, dtype=str), label=y_true, pred=pred, probs=probs.astype(np.float32),
        fusion=fusion.astype(np.float32), labels=np.asarray(labels, dtype=str),
    )
    return pred
