"""Finding finished run directories, reading what they saved, and grouping them by cache fingerprint."""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

import numpy as np
import pandas as pd

from sgmft_cache import SgmftError

REQUIRED = ("variant", "seed", "test_accuracy", "test_macro_f1", "val_accuracy", "cache_fingerprint", "labels")
# fit settings that do not change what a run measures; every other differing setting splits a table row
NOT_SETTINGS = {"cache", "variant", "seed", "device", "out", "quiet"}
PLACEHOLDER_ENCODERS = ("tiny", "synthetic", "random")  # words that mark a stand-in, not Chinese-CLIP


@dataclass(frozen=True)
class Run:
    """One finished run: its metrics.json, fit settings (config.json) and where its arrays lie."""

    path: Path
    metrics: dict
    settings: dict = field(default_factory=dict)

    @property
    def variant(self) -> str:
        return self.metrics["variant"]

    @property
    def seed(self) -> int:
        return int(self.metrics["seed"])

    @property
    def fingerprint(self) -> str:
        return str(self.metrics["cache_fingerprint"])

    def epochs(self) -> pd.DataFrame | None:
        """epochs.csv as a table, or None where the run has none (the logistic-regression probe)."""
        path = self.path / "epochs.csv"
        if not path.exists():
            return None
        table = pd.read_csv(path)
        return table if len(table) else None

    def outputs(self) -> dict[str, np.ndarray] | None:
        """test_outputs.npz (label, pred, probs, fusion = M_fuse, ...), or None where it is missing."""
        path = self.path / "test_outputs.npz"
        if not path.exists():
            return None
        with np.load(path) as z:
            return {k: z[k] for k in z.files}


@dataclass(frozen=True)
class Found:
    runs: list[Run]
    skipped: list[str]  # "<dir>: why", for the report's notes


def is_placeholder_encoder(encoder: str, note: str = "") -> bool:
    """True for the tiny/synthetic/random-weight stand-ins whose accuracy means nothing about SG-MFT."""
    text = f"{encoder} {note}".lower()
    return any(word in text for word in PLACEHOLDER_ENCODERS)


def find_run_dirs(root: Path) -> list[Path]:
    """Folders under `root` (itself included) that look like run directories; run dirs are not descended."""
    if _looks_like_run(root):
        return [root]
    found: list[Path] = []
    for child in sorted(p for p in root.iterdir() if p.is_dir()):
        found += find_run_dirs(child)
    return found


def load_runs(paths: Iterable[str | Path]) -> Found:
    """Every run under `paths` (run dirs or folders of them); incomplete or unreadable ones are noted."""
    runs, skipped = [], []
    for given in paths:
        root = Path(given)
        if not root.is_dir():
            raise SgmftError(f"{root}: no such folder (give a run directory or a folder of them, e.g. cache/runs)")
        for run_dir in find_run_dirs(root):
            run, why = _read(run_dir)
            if run is None:
                skipped.append(f"{run_dir}: {why}")
            else:
                runs.append(run)
    return Found(_unique(runs), skipped)


def by_fingerprint(runs: list[Run]) -> dict[str, list[Run]]:
    """Runs grouped by the cache they were fitted on; a table never mixes two groups."""
    groups: dict[str, list[Run]] = {}
    for run in runs:
        groups.setdefault(run.fingerprint, []).append(run)
    return groups


def _looks_like_run(path: Path) -> bool:
    return any((path / name).exists() for name in ("metrics.json", "config.json", "epochs.csv"))


def _read(run_dir: Path) -> tuple[Run | None, str]:
    path = run_dir / "metrics.json"
    if not path.exists():
        return None, "no metrics.json (unfinished or failed run), skipped"
    try:
        metrics = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        return None, f"metrics.json unreadable ({type(e).__name__}), skipped"
    missing = [k for k in REQUIRED if k not in metrics]
    if missing:
        return None, f"metrics.json lacks {', '.join(missing)}, skipped"
    return Run(run_dir, metrics, _settings(run_dir)), ""


def _settings(run_dir: Path) -> dict:
    try:
        fit = json.loads((run_dir / "config.json").read_text(encoding="utf-8")).get("fit", {})
    except (OSError, ValueError):
        return {}
    return {k: v for k, v in fit.items() if k not in NOT_SETTINGS}


def _unique(runs: list[Run]) -> list[Run]:
    """The same run directory reached twice (a root and a dir inside it) counts once."""
    seen, out = set(), []
    for run in runs:
        key = run.path.resolve()
        if key not in seen:
            seen.add(key)
            out.append(run)
    return out
