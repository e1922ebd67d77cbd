"""The one registry of what `sgmft fit` can train: every variant, how it is trained, its groups, its paper rows.

Sweep groups, the report's tables, the demo's list and the CLI's help are all read from here, so a
new variant is one `Variant(...)` entry below (plus its module, if it needs a new one). Pure data:
importing this loads neither torch nor scikit-learn.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping

NAN = float("nan")

# the paper's tables (arXiv 2405.05760, SPEC §5) and our baselines table, by id
TABLE_1, TABLE_2, TABLE_3, TABLE_4, BASELINE_TABLE = "table-1", "table-2", "table-3", "table-4", "baselines"

FULL = "sgmft"  # the paper's full model: fit's default variant

# groups a variant belongs to; `all` is every variant, in registry order
PAPER, BASELINES, OURS, DEMO = "paper", "baselines", "ours", "demo"


@dataclass(frozen=True)
class PaperRow:
    """A row of one of the report's comparison tables, as the paper names it."""

    table: str  # TABLE_1 ... BASELINE_TABLE
    position: int  # the row's place in its table, as in the paper
    name: str  # the row as the paper names it
    accuracy: float  # %, as published; NaN where the paper has no such row


@dataclass(frozen=True)
class Variant:
    name: str  # what `--variant` takes
    about: str  # one line: what it is
    trainer: str = "head"  # "head": the SG-MFT head changed by `head`; "probe": logistic regression (fit/probe.py)
    head: Mapping = field(default_factory=dict)  # HeadConfig fields changed from the full model
    groups: tuple[str, ...] = ()  # PAPER, BASELINES, OURS; DEMO: fitted by `sgmft demo`
    rows: tuple[PaperRow, ...] = ()  # the report rows it fills


def _registry(*variants: Variant) -> dict[str, Variant]:
    return {v.name: v for v in variants}


VARIANTS: dict[str, Variant] = _registry(
    Variant(FULL, "full SG-MFT: SIM + SFM + five-layer classifier (Table 2, last row)", groups=(PAPER, DEMO),
            rows=(PaperRow(TABLE_1, 6, "SG-MFT", 87.29), PaperRow(TABLE_2, 5, "+ CLIP + SIM + SFM (full)", 87.29),
                  PaperRow(TABLE_3, 4, "SFM (cross-attention, ours)", 87.29),
                  PaperRow(TABLE_4, 2, "text-wise (paper default)", 87.29))),
    Variant("clip-only", "no SIM, no SFM: the classifier on F_text ⊕ F_image (Table 2)",
            head=dict(sim=False, fusion="sum"), groups=(PAPER, DEMO),
            rows=(PaperRow(TABLE_2, 2, "+ CLIP features (classifier only)", 84.91),)),
    Variant("sfm-only", "no SIM: SFM on the raw features (Table 2)", head=dict(sim=False), groups=(PAPER, DEMO),
            rows=(PaperRow(TABLE_2, 3, "+ CLIP + SFM", 85.74),)),
    Variant("sim-only", "no SFM: M_fuse = F_text^S ⊕ F_image^S (Table 2)", head=dict(fusion="sum"),
            groups=(PAPER, DEMO), rows=(PaperRow(TABLE_2, 4, "+ CLIP + SIM", 86.94),)),
    Variant("text-only", "baseline: the classifier on the text feature alone", head=dict(sim=False, fusion="text"),
            groups=(BASELINES, DEMO), rows=(PaperRow(BASELINE_TABLE, 1, "text feature only", NAN),)),
    Variant("image-only", "baseline: the classifier on the image feature alone",
            head=dict(sim=False, fusion="image"), groups=(BASELINES, DEMO),
            rows=(PaperRow(BASELINE_TABLE, 2, "image feature only", NAN),)),
    Variant("concat-mlp", "baseline: feature-level fusion, the classifier on [text; image]",
            head=dict(sim=False, fusion="concat"), groups=(BASELINES, DEMO),
            rows=(PaperRow(BASELINE_TABLE, 3, "concatenation + MLP (feature-level fusion)", NAN),)),
    Variant("logreg-probe", "baseline: scikit-learn logistic regression on [text; image] (l2-normalised), "
            "C chosen on validation", trainer="probe", groups=(BASELINES, DEMO),
            rows=(PaperRow(BASELINE_TABLE, 4, "logistic-regression probe on [text; image]", NAN),)),
    Variant("asym-co-attention", "SFM replaced by mPLUG-style asymmetric co-attention: only text queries the "
            "image (Table 3)", head=dict(fusion="asym-co-attention"), groups=(PAPER,),
            rows=(PaperRow(TABLE_3, 1, "Asymmetric co-attention (mPLUG)", 86.32),)),
    Variant("merge-attention", "SFM replaced by self-attention over the concatenated [text; image] sequence "
            "(Table 3)", head=dict(fusion="merge-attention"), groups=(PAPER,),
            rows=(PaperRow(TABLE_3, 2, "Merge-attention (concatenate, then self-attention)", 86.35),)),
    Variant("co-attention", "SFM replaced by symmetric co-attention layers (Table 3)",
            head=dict(fusion="co-attention"), groups=(PAPER,), rows=(PaperRow(TABLE_3, 3, "Co-attention", 86.47),)),
    Variant("image-wise-ffn", "the similarity-aware FFN on the image side, roles of text and image swapped "
            "(Table 4)", head=dict(ffn_guide="image"), groups=(PAPER,),
            rows=(PaperRow(TABLE_4, 1, "image-wise (roles of text and image swapped)", 86.88),)),
    Variant("sigmoid-gate", "ours: P^m as a per-channel sigmoid instead of the paper's softmax over D",
            head=dict(gate="sigmoid"), groups=(OURS,)),
    Variant("sgmft-tau", "ours: the full model with learnable temperatures on S^m and S^e (CLIP's logit_scale), "
            "P^m = softmax(τ_m S^m), P^e_i = softmax(τ_e S^e_i), both initialised at τ = D",
            head=dict(scale_m="learned", scale_e="learned"), groups=(OURS,)),
    Variant("sgmft-tau-m", "ours: the full model with a learnable temperature on S^m only (τ_m, initialised at D)",
            head=dict(scale_m="learned"), groups=(OURS,)),
    Variant("sgmft-tau-e", "ours: the full model with a learnable temperature on S^e only (τ_e, initialised at D)",
            head=dict(scale_e="learned"), groups=(OURS,)),
    Variant("sigmoid-gate-tau", "ours: the per-channel sigmoid gate on τ_m S^m, and τ_e on S^e, both learnable "
            "(initialised at D)", head=dict(gate="sigmoid", scale_m="learned", scale_e="learned"), groups=(OURS,)),
    Variant("sgmft-raw", "ours: the full model on the encoders' raw features (input_norm none) instead of the "
            "l2-normalised ones: an ablation of the input scale", head=dict(input_norm="none"), groups=(OURS,)),
    Variant("sgmft-images", "ours: the full model over a post's whole image set — the images are a real sequence "
            "through SIM and SFM (self-attention over them, the text's cross-attention over them, padding masked); "
            "P^m and P^e from the pooled (masked-mean) image", head=dict(images="attend"), groups=(OURS, DEMO)),
    Variant("sgmft-mean-images", "ours: the paper's full model on the masked mean of a post's images instead of "
            "its first image", head=dict(images="mean"), groups=(OURS,)),
)


def group(name: str) -> tuple[str, ...]:
    """The variants of a group, in registry order; `all` is every variant."""
    return tuple(v.name for v in VARIANTS.values() if name == "all" or name in v.groups)


GROUP_NAMES = (PAPER, BASELINES, OURS, "all")  # the groups `--variants` takes (DEMO is the demo's own)


def names() -> list[str]:
    return list(VARIANTS)


def help_text() -> str:
    """The variants and groups in words, for `--help`."""
    return "; ".join(f"{v.name}: {v.about}" for v in VARIANTS.values())
