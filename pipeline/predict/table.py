"""The predictions CSV: one row per post, what it was predicted as and from what, written whole."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from sgmft_cache import SplitData
from pipeline.rundir import spreadsheet_safe, write_bytes

PROB_PREFIX = "p_"
MODALITIES = {(True, True): "text+image", (True, False): "text", (False, True): "image"}  # (has text, has images)


def write_predictions(out: Path, table: pd.DataFrame) -> None:
    """The CSV, whole or not at all; ids a spreadsheet would run as formulas (=, +, -, @) get a leading '."""
    csv = table.assign(id=table["id"].map(spreadsheet_safe)).to_csv(index=False, float_format="%.6f")
    write_bytes(out, csv.encode("utf-8"))


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
