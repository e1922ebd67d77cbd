"""`sgmft predict`: new, unlabelled posts + a finished run -> a CSV of predicted classes and probabilities.

Stage one runs for the new posts with the run's encoder and preprocessing (refused when the
fingerprint differs from the run's cache), then the run's head or probe. Every post with a usable
text or image is predicted (SPEC §7). The CSV has one row per manifest row, in its order: `id` (a
leading ' where it starts like a spreadsheet formula), `pred` (class name), `p_<class>` per class of
the run, `modalities` (text+image, text or image) and `images_used` (how many of its pictures),
`dropped_images` (pictures left out, and why) and `skipped_reason` — empty for predicted rows; for a
row with neither a usable text nor a usable image pred and the probabilities are empty and the reason
says why.
"""
from __future__ import annotations

import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from sgmft_cache import SgmftError, SplitData
from pipeline.device import resolve_device
from pipeline.extract import SplitSummary, skip_kind
from pipeline.predict.config import PredictConfig
from pipeline.predict.features import (cached_features, checked_plan, encode_new_posts, extract_config,
                                       new_posts)
from pipeline.predict.trained import TrainedRun, load_trained_run
from pipeline.rundir import spreadsheet_safe, write_bytes

PROB_PREFIX = "p_"
MODALITIES = {(True, True): "text+image", (True, False): "text", (False, True): "image"}  # (has text, has images)


@dataclass(frozen=True)
class PredictSummary:
    out: Path  # the predictions CSV
    cache: Path  # the new posts' feature cache
    run: TrainedRun
    table: pd.DataFrame  # what the CSV holds
    extraction: SplitSummary
    replaced_cache: bool  # a cache made by another run or other settings was replaced
    seconds: float

    @property
    def skipped(self) -> Counter:
        return Counter(skip_kind(r) for r in self.table["skipped_reason"] if r)

    def lines(self) -> list[str]:
        t, run = self.table, self.run
        done = t[t["pred"] != ""]
        head = [f"predicted {len(done)} of {len(t)} posts with {run.path} (variant {run.variant}, encoder "
                f"{run.encoder}, fingerprint {run.fingerprint}) in {self.seconds:.1f} s -> {self.out}"]
        if run.extraction.placeholder:
            head.append(f"  WARNING: placeholder encoder `{run.encoder}`: these predictions mean nothing about "
                        "the posts (random weights); they only show that the pipeline runs")
        if self.skipped:
            reasons = ", ".join(f"{n} {kind}" for kind, n in self.skipped.most_common())
            head.append(f"  skipped {sum(self.skipped.values())}: {reasons} (reasons in the CSV's skipped_reason column)")
        shapes = Counter(done["modalities"])
        several = int((done["images_used"] > 1).sum())
        head.append("  predicted from: " + ", ".join(f"{shapes[m]} {m}" for m in MODALITIES.values() if shapes[m])
                    + (f" ({several} with several images)" if several else ""))
        counts = Counter(done["pred"])
        head.append("  predicted classes: " + (", ".join(f"{c} {counts[c]}" for c in run.labels if counts[c]) or "none"))
        if self.replaced_cache:
            head.append(f"  replaced {self.cache}: it held features made by another run's encoder or settings")
        return head

    def text(self) -> str:
        return "\n".join(self.lines())


def predict(cfg: PredictConfig) -> PredictSummary:
    """Predict every post of cfg.data with the run in cfg.run; write cfg.out_path(); return what happened."""
    start = time.perf_counter()
    run = load_trained_run(cfg.run, resolve_device(cfg.device))
    out = cfg.out_path()
    check_writable(out, "the predictions", "--out")  # before any post is encoded
    check_writable(cfg.cache_path(), "the new posts' feature cache", "--cache")
    ecfg = extract_config(run, cfg)
    manifest = new_posts(cfg.data, run.labels, ecfg.max_images)
    plan = checked_plan(run, ecfg, manifest)  # before any model loads
    extraction, replaced = encode_new_posts(ecfg, manifest, plan)
    data, skipped, dropped = cached_features(ecfg.cache)
    table = prediction_table([p.id for p in manifest.posts], data, run.probabilities(data), skipped, run.labels,
                             dropped)
    write_predictions(out, table)
    return PredictSummary(out, Path(ecfg.cache), run, table, extraction, replaced, time.perf_counter() - start)


def write_predictions(out: Path, table: pd.DataFrame) -> None:
    """The CSV, whole or not at all; ids a spreadsheet would run as formulas (=, +, -, @) get a leading '."""
    csv = table.assign(id=table["id"].map(spreadsheet_safe)).to_csv(index=False, float_format="%.6f")
    write_bytes(out, csv.encode("utf-8"))


def check_writable(path: Path, what: str, option: str) -> None:
    """`path`'s folder exists (made if need be) and takes a new file, or one SgmftError saying so."""
    folder = path.parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as e:
        raise SgmftError(f"{folder}: cannot write {what} here ({e.strerror or e}); make it writable or pass "
                         f"{option} elsewhere") from None


def prediction_table(order: list[str], data: SplitData, probs: np.ndarray, skipped: dict[str, str],
                     labels: tuple[str, ...], dropped: dict[str, str] | None = None) -> pd.DataFrame:
    """One row per id of `order`: pred, p_<class> and what it was predicted from where it has features,
    else its skip reason."""
    row_of = {i: k for k, i in enumerate(data.ids)}
    missing = [i for i in order if i not in row_of and i not in skipped]
    if missing:
        raise RuntimeError(f"predict lost {len(missing)} post(s), e.g. {missing[:3]} (a bug in sgmft predict)")
    have = np.array([row_of.get(i, -1) for i in order], dtype=np.int64)
    found = have >= 0
    p = np.full((len(order), len(labels)), np.nan)
    p[found] = probs[have[found]]
    table = pd.DataFrame({"id": order, "pred": [labels[int(np.argmax(r))] if ok else "" for r, ok in zip(p, found)]})
    for c, name in enumerate(labels):
        table[f"{PROB_PREFIX}{name}"] = p[:, c]
    has_text, counts = data.has_text.numpy(), data.image_counts.numpy()
    table["modalities"] = [MODALITIES[bool(has_text[k]), bool(counts[k])] if k >= 0 else "" for k in have]
    table["images_used"] = [int(counts[k]) if k >= 0 else 0 for k in have]
    table["dropped_images"] = [(dropped or {}).get(i, "") for i in order]
    table["skipped_reason"] = ["" if ok else skipped[i] for i, ok in zip(order, found)]
    return table
