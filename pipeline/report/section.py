"""What the report holds: one Section per cache (fingerprint), and the summary of a whole report."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from pipeline.report.guidance import GuidanceRow
from pipeline.report.kinds import KindRow
from pipeline.report.runs import Run
from pipeline.report.tables import Row


@dataclass
class Section:
    """The report on the runs of one cache (fingerprint and content, Run.cache_key): tables never mix two of these."""

    fingerprint: str  # Run.cache_key of its runs: the cache fingerprint, plus the content identity where recorded
    folder: Path  # where this section's figures lie
    runs: list[Run]
    rows: list[Row]
    best: Row  # highest mean validation accuracy
    notes: list[str] = field(default_factory=list)
    figures: dict[str, Path] = field(default_factory=dict)  # caption -> PNG
    per_class: dict | None = None  # mean precision/recall/f1/support of the best row
    per_class_seeds: int = 0  # how many of the best row's runs saved test outputs for it
    guidance: list[GuidanceRow] = field(default_factory=list)  # similarity diagnostics per row
    guidance_figure: Path | None = None  # their figure, where some row has a SIM
    kinds: list[KindRow] = field(default_factory=list)  # accuracy and macro-F1 per post kind, per row
    kinds_figure: Path | None = None

    @property
    def encoder(self) -> str:
        return self.runs[0].metrics.encoder

    @property
    def encoder_note(self) -> str:
        return self.runs[0].metrics.encoder_note

    @property
    def placeholder(self) -> bool:
        """Some run's cache was made with random or synthetic weights."""
        return any(r.metrics.placeholder_encoder for r in self.runs)

    @property
    def labels(self) -> list[str]:
        return list(self.runs[0].metrics.labels)


@dataclass(frozen=True)
class ReportSummary:
    out_dir: Path
    report_path: Path  # report.md
    markdown: str  # what report.md holds, and what the command prints
    sections: list[Section]
    skipped: list[str]  # run dirs left out, with why

    @property
    def placeholder(self) -> bool:
        """True when any section's runs used a tiny/synthetic/random-weight encoder."""
        return any(s.placeholder for s in self.sections)
