"""The HeadConfig of each head-trained variant of the registry (pipeline/variants.py)."""
from __future__ import annotations

from dataclasses import replace

from pipeline import variants as registry
from pipeline.head.config import HeadConfig

VARIANTS = tuple(v.name for v in registry.VARIANTS.values() if v.trainer == "head")  # the variants that are heads


def variant_config(name: str, base: HeadConfig) -> HeadConfig:
    """The HeadConfig of variant `name`, on top of `base` (dims, heads, widths)."""
    if name not in VARIANTS:
        raise KeyError(name)
    return replace(base, **registry.VARIANTS[name].head)
