"""The paper's published accuracies (arXiv 2405.05760, Tables 1-4; SPEC §5), as the report's comparison tables.

The rows our variants reproduce come from the variant registry (pipeline/variants.py); the rows
no variant can reproduce on these features (other methods, the CNN baseline) are listed here.
"""
from __future__ import annotations

from dataclasses import dataclass

from pipeline import variants as V

PAPER_LABEL = "paper: their (non-public) Weibo data, single run"

TITLES = {
    V.TABLE_1: "Table 1 — other methods (context only: their own features and training)",
    V.TABLE_2: "Table 2 — ablation",
    V.TABLE_3: "Table 3 — fusion module instead of SFM",
    V.TABLE_4: "Table 4 — similarity-aware FFN guided by",
    V.BASELINE_TABLE: "Baselines beyond the paper (same cached features)",
}
NOT_REPRODUCIBLE = (  # other methods with their own features and training, and the paper's pre-CLIP baseline
    V.PaperRow(V.TABLE_1, 1, "mPLUG", 84.56),
    V.PaperRow(V.TABLE_1, 2, "UniS-MMC", 86.62),
    V.PaperRow(V.TABLE_1, 3, "BridgeTower", 86.59),
    V.PaperRow(V.TABLE_1, 4, "BalanceMLA", 85.24),
    V.PaperRow(V.TABLE_1, 5, "feature-level fusion CNNs", 86.25),
    V.PaperRow(V.TABLE_2, 1, "Baseline (classifier on CNN + word-embedding features)", 78.23),
)


@dataclass(frozen=True)
class TableRow:
    name: str  # the row as the paper names it
    variant: str | None  # our variant that reproduces it on the same features; None = not reproducible here
    accuracy: float  # %, as published (NaN: no such row in the paper)


@dataclass(frozen=True)
class PaperTable:
    title: str
    rows: tuple[TableRow, ...]


def paper_table(table: str) -> PaperTable:
    """Table `table` in the paper's row order: the registry's rows and the ones no variant reproduces."""
    rows = [(r, None) for r in NOT_REPRODUCIBLE if r.table == table]
    rows += [(r, v.name) for v in V.VARIANTS.values() for r in v.rows if r.table == table]
    rows.sort(key=lambda pair: pair[0].position)
    return PaperTable(TITLES[table], tuple(TableRow(r.name, name, r.accuracy) for r, name in rows))


TABLE_1 = paper_table(V.TABLE_1)
ABLATIONS = tuple(paper_table(t) for t in (V.TABLE_2, V.TABLE_3, V.TABLE_4))
BASELINES = paper_table(V.BASELINE_TABLE)


def paper_variants() -> set[str]:
    """Variants that have a row in the ablation or baseline tables."""
    return {row.variant for table in (*ABLATIONS, BASELINES) for row in table.rows if row.variant}
