"""Sweeps: several (variant, seed) runs on one cache loaded once, each into its own run directory."""
from __future__ import annotations

import re
import traceback
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable

from sgmft_cache import SgmftError
from pipeline import variants
from pipeline.fit.config import FitConfig
from pipeline.fit.data import load_cached_splits
from pipeline.fit.run import fit
from pipeline.metrics import TEST_METRICS

GROUPS = {name: variants.group(name) for name in variants.GROUP_NAMES}  # what --variants takes besides names
PAPER = GROUPS[variants.PAPER]  # every row of Tables 2-4


@dataclass(frozen=True)
class SweepRun:
    variant: str
    seed: int
    run_dir: Path | None  # None when the run failed before making one
    metrics: dict | None  # None when the run failed
    error: str | None = None  # one line: why it failed


def all_variant_names() -> list[str]:
    return variants.names()


def expand_variants(spec: str) -> list[str]:
    """"a,b,paper" -> variant names in order, groups (paper, baselines, all) expanded, duplicates dropped."""
    names: list[str] = []
    for item in (s.strip() for s in spec.split(",")):
        if not item:
            continue
        if item not in GROUPS and item not in all_variant_names():
            raise SgmftError(f"unknown variant {item!r}; choose from {', '.join(all_variant_names())} "
                             f"or a group: {', '.join(GROUPS)}")
        names += [n for n in GROUPS.get(item, (item,)) if n not in names]
    if not names:
        raise SgmftError("--variants names no variant")
    return names


def parse_seeds(spec: str) -> list[int]:
    """"0,1,2" or "0-4" (inclusive) or a mix -> distinct seeds in order."""
    seeds: list[int] = []
    for item in (s.strip() for s in spec.split(",") if s.strip()):
        match = re.fullmatch(r"(\d+)(?:-(\d+))?", item)
        if not match:
            raise SgmftError(f"--seeds {spec!r}: give integers like 0,1,2 or a range 0-4")
        lo, hi = int(match[1]), int(match[2] or match[1])
        seeds += [s for s in range(lo, hi + 1) if s not in seeds]
    if not seeds:
        raise SgmftError(f"--seeds {spec!r} names no seed")
    return seeds


def sweep(
    base: FitConfig,
    variants: list[str],
    seeds: list[int],
    on_run: Callable[[SweepRun], None] = lambda run: None,
) -> list[SweepRun]:
    """Fit every (variant, seed); a run that fails is recorded with its error and the others go on.

    With `base.out` set, runs go to <out>/<variant>-seed<seed>; otherwise to fit's default folders.
    """
    splits = load_cached_splits(base.cache, base.max_memory)  # once, for every run
    done = []
    for variant in variants:
        for seed in seeds:
            out = str(Path(base.out) / f"{variant}-seed{seed}") if base.out else None
            cfg = replace(base, variant=variant, seed=seed, out=out)
            try:
                result = fit(cfg, splits)
                run = SweepRun(variant, seed, result.run_dir, result.metrics)
            except Exception as e:  # one broken variant must not cost the others (Ctrl-C still stops all)
                run = SweepRun(variant, seed, Path(out) if out else None, None, _one_line(e))
            on_run(run)
            done.append(run)
    return done


def describe(m: dict) -> str:
    """One line for the terminal about a finished run (metrics.json), whatever trained it."""
    scores = ", ".join(f"{metric.words} {m[metric.key]:.4f}" for metric in TEST_METRICS if metric.in_summary)
    return f"{m['variant']} seed {m['seed']}: {scores} (val {m['val_accuracy']:.4f} at {m['chosen']})"


def _one_line(e: BaseException) -> str:
    where = traceback.extract_tb(e.__traceback__)[-1] if e.__traceback__ else None
    at = f" (at {Path(where.filename).name}:{where.lineno})" if where and not isinstance(e, SgmftError) else ""
    return f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}{at}"
