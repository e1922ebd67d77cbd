"""Finding finished run directories, reading what they saved (through pipeline.rundir), grouping them by cache."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

import numpy as np

from sgmft_cache import SgmftError
from pipeline.fit import FitConfig
from pipeline.rundir import CONFIG, EPOCHS, GUIDANCE, METRICS, TEST_OUTPUTS, Guidance, RunDir, RunMetrics


@dataclass(frozen=True)
class Run:
    """One finished run: its metrics.json, the fit settings that change what it measures, and its folder."""

    path: Path
    metrics: RunMetrics
    settings: dict = field(default_factory=dict)

    @property
    def variant(self) -> str:
        return self.metrics.variant

    @property
    def seed(self) -> int:
        return self.metrics.seed

    @property
    def fingerprint(self) -> str:
        return self.metrics.cache_fingerprint

    @property
    def cache_key(self) -> str:
        """Which cache the run was fitted on: how its features were made and, where recorded, which posts and
        labels it holds (runs made before content identities were recorded: the fingerprint alone)."""
        content = self.metrics.cache_content
        return f"{self.fingerprint}-{content[:12]}" if content else self.fingerprint

    def epochs(self):
        """epochs.csv as a table, or None where the run has none (the logistic-regression probe)."""
        return RunDir(self.path).read_epochs()

    def guidance(self) -> Guidance | None:
        """guidance.json (the similarity diagnostics), or None where the run has none."""
        return RunDir(self.path).read_guidance()

    def outputs(self) -> dict[str, np.ndarray] | None:
        """test_outputs.npz (label, pred, probs, fusion = M_fuse, ...), or None where it is missing."""
        return RunDir(self.path).read_outputs()


@dataclass(frozen=True)
class Found:
    runs: list[Run]
    skipped: list[str]  # "<dir>: why", for the report's notes


def find_run_dirs(root: Path) -> list[Path]:
    """Folders under `root` (itself included) that look like run directories; run dirs are not descended."""
    if RunDir.looks_like_run(root):
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
            run, why = _read(RunDir(run_dir))
            if run is None:
                skipped.append(f"{run_dir}: {why}")
            else:
                runs.append(run)
    return Found(_unique(runs), skipped)


def by_fingerprint(runs: list[Run]) -> dict[str, list[Run]]:
    """Runs grouped by the cache they were fitted on (Run.cache_key: fingerprint and content); a table never
    mixes two groups, so two caches made alike from other posts or labels are never averaged as seeds."""
    groups: dict[str, list[Run]] = {}
    for run in runs:
        groups.setdefault(run.cache_key, []).append(run)
    return groups


def _read(run: RunDir) -> tuple[Run | None, str]:
    if not run.finished:
        return None, f"no {METRICS} (unfinished or failed run), skipped"
    try:
        metrics = run.read_metrics()
    except KeyError as e:
        return None, f"{METRICS} lacks {e.args[0]}, skipped"
    except (OSError, ValueError, TypeError) as e:
        return None, f"{METRICS} unreadable ({type(e).__name__}), skipped"
    if run.file(CONFIG).exists():
        try:
            run.check_finished()
        except SgmftError as e:
            return None, f"{str(e).split(': ', 1)[-1]}, skipped"
        except (OSError, ValueError, KeyError, TypeError) as e:
            return None, f"{CONFIG} unreadable ({type(e).__name__}), skipped"
    unreadable = _unreadable(run)
    if unreadable:
        return None, f"{unreadable}, skipped"
    return Run(run.path, metrics, _settings(run)), ""


def _unreadable(run: RunDir) -> str:
    """Which saved file the report would fail on (a truncated npz, a garbage epochs.csv), in words; "" if none."""
    for name, read in ((EPOCHS, run.read_epochs), (TEST_OUTPUTS, run.read_outputs), (GUIDANCE, run.read_guidance)):
        try:
            read()
        except Exception as e:  # corrupt files fail in many ways: BadZipFile, EOFError, ValueError, zlib.error, ...
            return f"{name} unreadable ({type(e).__name__}: {str(e).splitlines()[0][:80] if str(e) else ''})"
    return ""


def _settings(run: RunDir) -> dict:
    try:
        fit = run.read_config().fit
    except (OSError, ValueError):
        return {}
    return FitConfig.measured(dict(fit))


def _unique(runs: list[Run]) -> list[Run]:
    """The same run directory reached twice (a root and a dir inside it) counts once."""
    seen, out = set(), []
    for run in runs:
        key = run.path.resolve()
        if key not in seen:
            seen.add(key)
            out.append(run)
    return out
