"""ReportConfig: every setting of `sgmft report`."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from sgmft_cache import DEFAULT_CACHE
from pipeline.rundir import DEFAULT_RUNS
from pipeline.settings import setting

DEFAULT_OUT = str(Path(DEFAULT_CACHE).parent / "report")


@dataclass(frozen=True)
class ReportConfig:
    runs: str = setting(DEFAULT_RUNS, "Folder searched for run directories when none are given.")
    out: str = setting(DEFAULT_OUT, "Report folder: report.md and one sub-folder of PNG figures per cache.")
    tsne: bool = setting(True, "Draw the t-SNE maps of M_fuse (the slowest part).")
