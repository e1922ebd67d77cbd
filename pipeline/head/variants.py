"""Named variants of the head: rows of the paper's Tables 2-4 and simple strong baselines."""
from __future__ import annotations

from dataclasses import replace

from pipeline.head.model import HeadConfig

# name -> (what it is, the HeadConfig fields it changes from the full model)
VARIANTS: dict[str, tuple[str, dict]] = {
    "sgmft": ("full SG-MFT: SIM + SFM (Table 2, last row)", {}),
    "clip-only": ("classifier on CLIP features summed, no SIM, no SFM (Table 2)", dict(sim=False, fusion="sum")),
    "sfm-only": ("CLIP + SFM, no SIM (Table 2)", dict(sim=False)),
    "sim-only": ("CLIP + SIM, fused by sum, no SFM (Table 2)", dict(fusion="sum")),
    "asym-co-attention": ("SFM replaced by mPLUG asymmetric co-attention (Table 3)", dict(fusion="asym-co-attention")),
    "merge-attention": ("SFM replaced by merge-attention (Table 3)", dict(fusion="merge-attention")),
    "co-attention": ("SFM replaced by symmetric co-attention (Table 3)", dict(fusion="co-attention")),
    "image-wise-ffn": ("similarity-aware FFN guided by the image (Table 4)", dict(ffn_guide="image")),
    "text-only": ("baseline: classifier on the text feature alone", dict(sim=False, fusion="text")),
    "image-only": ("baseline: classifier on the image feature alone", dict(sim=False, fusion="image")),
    "concat-mlp": ("baseline: feature-level fusion, concatenation + MLP", dict(sim=False, fusion="concat")),
    "sigmoid-gate": ("ours: P^m as a per-channel sigmoid instead of a softmax over D", dict(gate="sigmoid")),
}


def variant_config(name: str, base: HeadConfig) -> HeadConfig:
    """The HeadConfig of variant `name`, on top of `base` (dims, heads, widths)."""
    if name not in VARIANTS:
        raise KeyError(name)
    return replace(base, **VARIANTS[name][1])
