"""The paper's published accuracies (arXiv 2405.05760, Tables 1-4; SPEC §5) and which variant reproduces each row."""
from __future__ import annotations

from dataclasses import dataclass

PAPER_LABEL = "paper: their (non-public) Weibo data, single run"


@dataclass(frozen=True)
class PaperRow:
    name: str  # the row as the paper names it
    variant: str | None  # our variant that reproduces it on the same features; None = not reproducible here
    accuracy: float  # %, as published


@dataclass(frozen=True)
class PaperTable:
    title: str
    rows: tuple[PaperRow, ...]


TABLE_1 = PaperTable("Table 1 — other methods (context only: their own features and training)", (
    PaperRow("mPLUG", None, 84.56),
    PaperRow("UniS-MMC", None, 86.62),
    PaperRow("BridgeTower", None, 86.59),
    PaperRow("BalanceMLA", None, 85.24),
    PaperRow("feature-level fusion CNNs", None, 86.25),
    PaperRow("SG-MFT", "sgmft", 87.29),
))

ABLATIONS = (
    PaperTable("Table 2 — ablation", (
        PaperRow("Baseline (classifier on CNN + word-embedding features)", None, 78.23),
        PaperRow("+ CLIP features (classifier only)", "clip-only", 84.91),
        PaperRow("+ CLIP + SFM", "sfm-only", 85.74),
        PaperRow("+ CLIP + SIM", "sim-only", 86.94),
        PaperRow("+ CLIP + SIM + SFM (full)", "sgmft", 87.29),
    )),
    PaperTable("Table 3 — fusion module instead of SFM", (
        PaperRow("Asymmetric co-attention (mPLUG)", "asym-co-attention", 86.32),
        PaperRow("Merge-attention (concatenate, then self-attention)", "merge-attention", 86.35),
        PaperRow("Co-attention", "co-attention", 86.47),
        PaperRow("SFM (cross-attention, ours)", "sgmft", 87.29),
    )),
    PaperTable("Table 4 — similarity-aware FFN guided by", (
        PaperRow("image-wise (roles of text and image swapped)", "image-wise-ffn", 86.88),
        PaperRow("text-wise (paper default)", "sgmft", 87.29),
    )),
)

BASELINES = PaperTable("Baselines beyond the paper (same cached features)", (
    PaperRow("text feature only", "text-only", float("nan")),
    PaperRow("image feature only", "image-only", float("nan")),
    PaperRow("concatenation + MLP (feature-level fusion)", "concat-mlp", float("nan")),
    PaperRow("logistic-regression probe on [text; image]", "logreg-probe", float("nan")),
))


def paper_variants() -> set[str]:
    """Variants that have a row in the ablation or baseline tables."""
    return {row.variant for table in (*ABLATIONS, BASELINES) for row in table.rows if row.variant}
