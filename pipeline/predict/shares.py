"""Predicting under torchrun: each rank scores its share of the posts, rank 0 joins the shares into one CSV.

A rank's share is extract's (every world_size-th post, pipeline.extract.engine.select_rows), read
from the merged cache; each rank writes `<out>.part-<r>-of-<N>.csv`, and once all have, rank 0
writes the CSV in manifest order and deletes the parts. One process is the share of everything.
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from sgmft_cache import load_skipped, load_split
from pipeline.extract import Ranks, select_rows
from pipeline.predict.features import SPLIT
from pipeline.predict.trained import TrainedRun

PROB_PREFIX = "p_"


def part_path(out: Path, ranks: Ranks) -> Path:
    return out.with_name(f"{out.name}.part-{ranks.rank}-of-{ranks.world_size}.csv")


def predict_share(cache: str | Path, posts: Sequence, run: TrainedRun, ranks: Ranks, out: Path) -> pd.DataFrame:
    """This rank's rows of the CSV (its share, in manifest order); written as a part file when sharded."""
    share = [p.id for p in select_rows(posts, set(), ranks.rank, ranks.world_size)]
    data, skipped = load_split(cache, SPLIT), load_skipped(cache, SPLIT)
    wanted = set(share)
    data = data.subset(np.array([k for k, i in enumerate(data.ids) if i in wanted], dtype=np.int64))
    table = prediction_table(share, data.ids, run.probabilities(data), skipped, run.labels)
    if ranks.sharded:
        table.to_csv(part_path(out, ranks), index=False, float_format="%.17g")
    return table


def join_shares(out: Path, mine: pd.DataFrame, ranks: Ranks, order: Sequence[str]) -> pd.DataFrame:
    """Rank 0: every rank's part in manifest order, written to `out`; the other ranks return their own part."""
    if ranks.rank > 0:
        return mine
    if ranks.sharded:
        parts = [part_path(out, Ranks(r, ranks.world_size)) for r in range(ranks.world_size)]
        read = [pd.read_csv(p, dtype={"id": str, "pred": str, "skipped_reason": str}, keep_default_na=False,
                            na_values={c: [""] for c in mine.columns if c.startswith(PROB_PREFIX)}) for p in parts]
        mine = pd.concat(read, ignore_index=True).set_index("id").loc[list(order)].reset_index()
    out.parent.mkdir(parents=True, exist_ok=True)
    mine.to_csv(out, index=False, float_format="%.6f")
    if ranks.sharded:
        for part in parts:
            part.unlink(missing_ok=True)
    return mine


def prediction_table(order: list[str], ids: list[str], probs: np.ndarray, skipped: dict[str, str],
                     labels: tuple[str, ...]) -> pd.DataFrame:
    """One row per id of `order`: pred and p_<class> where it has features, else its skip reason."""
    row_of = {i: k for k, i in enumerate(ids)}
    missing = [i for i in order if i not in row_of and i not in skipped]
    if missing:
        raise RuntimeError(f"predict lost {len(missing)} post(s), e.g. {missing[:3]} (a bug in sgmft predict)")
    have = [row_of.get(i, -1) for i in order]
    p = np.full((len(order), len(labels)), np.nan)
    found = np.array([k >= 0 for k in have], dtype=bool)
    p[found] = probs[[k for k in have if k >= 0]]
    table = pd.DataFrame({"id": order, "pred": [labels[int(np.argmax(r))] if ok else "" for r, ok in zip(p, found)]})
    for c, name in enumerate(labels):
        table[f"{PROB_PREFIX}{name}"] = p[:, c]
    table["skipped_reason"] = ["" if ok else skipped[i] for i, ok in zip(order, found)]
    return table
