"""Predicting under torchrun: each rank scores its share of the posts, rank 0 joins the shares into one CSV.

A rank's share is extract's (every world_size-th post, pipeline.extract.engine.select_rows), read
from the merged cache (only its rows, features in their stored dtype); each rank writes
`<out>.part-<r>-of-<N>.csv`, and once all have, rank 0 writes the CSV in manifest order and deletes
the parts. One process is the share of everything.
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import pandas as pd

from pipeline.extract import Ranks, select_rows
from pipeline.predict.features import cached_features
from pipeline.predict.table import PROB_PREFIX, prediction_table, write_predictions
from pipeline.predict.trained import TrainedRun


def part_path(out: Path, ranks: Ranks) -> Path:
    return out.with_name(f"{out.name}.part-{ranks.rank}-of-{ranks.world_size}.csv")


def predict_share(cache: str | Path, posts: Sequence, run: TrainedRun, ranks: Ranks, out: Path) -> pd.DataFrame:
    """This rank's rows of the CSV (its share, in manifest order); written as a part file when sharded."""
    share = [p.id for p in select_rows(posts, set(), ranks.rank, ranks.world_size)]
    data, skipped, dropped = cached_features(cache, share)
    table = prediction_table(share, data, run.probabilities(data), skipped, run.labels, dropped)
    if ranks.sharded:
        table.to_csv(part_path(out, ranks), index=False, float_format="%.17g")
    return table


def join_shares(out: Path, mine: pd.DataFrame, ranks: Ranks, order: Sequence[str]) -> pd.DataFrame:
    """Rank 0: every rank's part in manifest order, written to `out`; the other ranks return their own part."""
    if ranks.rank > 0:
        return mine
    if ranks.sharded:
        parts = [part_path(out, Ranks(r, ranks.world_size)) for r in range(ranks.world_size)]
        text = {c: str for c in mine.columns if not c.startswith(PROB_PREFIX) and c != "images_used"}
        read = [pd.read_csv(p, dtype=text, keep_default_na=False,
                            na_values={c: [""] for c in mine.columns if c.startswith(PROB_PREFIX)}) for p in parts]
        mine = pd.concat(read, ignore_index=True).set_index("id").loc[list(order)].reset_index()
    write_predictions(out, mine)
    if ranks.sharded:
        for part in parts:
            part.unlink(missing_ok=True)
    return mine
