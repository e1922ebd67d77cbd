"""Runs -> one row per variant (mean ± std over seeds), and the markdown tables of the report."""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from pipeline.metrics import TEST_ACCURACY, TEST_METRICS
from pipeline.report.paper import ABLATIONS, BASELINES, PAPER_LABEL, TABLE_1, PaperTable, paper_variants
from pipeline.report.runs import Run
from pipeline.rundir import METRICS, RunDir

TABLE_METRICS = tuple(m for m in TEST_METRICS if m.in_tables)  # a column each, in registry order


@dataclass(frozen=True)
class Stat:
    mean: float
    std: float  # sample std (ddof 1); NaN for a single seed
    n: int

    @classmethod
    def of(cls, values: list[float]) -> "Stat":
        a = np.asarray(values, dtype=float)
        return cls(float(a.mean()), float(a.std(ddof=1)) if len(a) > 1 else float("nan"), len(a))

    def pct(self) -> str:
        """"87.29 ± 0.41" in percent; "87.29 ± —" for one seed (no spread to show)."""
        return self.shown(100.0)

    def shown(self, scale: float = 1.0) -> str:
        spread = "—" if math.isnan(self.std) else f"{scale * self.std:.2f}"
        return f"{scale * self.mean:.2f} ± {spread}"


@dataclass(frozen=True)
class Row:
    """All seeds of one variant with one set of fit settings."""

    key: str  # variant, plus the settings that tell it apart from other rows of the same variant
    variant: str
    runs: tuple[Run, ...]  # sorted by seed
    scores: dict[str, Stat]  # test_<metric> -> its mean ± std, for each metric of TABLE_METRICS
    val_accuracy: Stat

    @property
    def test_accuracy(self) -> Stat:
        return self.scores[TEST_ACCURACY.key]

    @property
    def seeds(self) -> list[int]:
        return [r.seed for r in self.runs]

    def representative(self) -> Run:
        """The seed with the highest validation accuracy (lowest seed on ties) — never chosen by test."""
        return max(self.runs, key=lambda r: (r.metrics.val_accuracy, -r.seed))

    def scores_in_words(self) -> str:
        """"test accuracy 87.29 ± 0.41 %, macro-F1 86.10 ± 0.52 %"."""
        return ", ".join(f"{m.words} {_shown(m, self.scores[m.key])}{' %' if m.percent else ''}" for m in TABLE_METRICS)


def aggregate(runs: list[Run]) -> tuple[list[Row], list[str]]:
    """Rows sorted by variant; a (row, seed) fitted twice keeps the newest run, the others are noted."""
    keys = _row_keys(runs)
    groups: dict[str, dict[int, Run]] = {}
    notes = []
    for run in sorted(runs, key=lambda r: RunDir(r.path).file(METRICS).stat().st_mtime):
        seen = groups.setdefault(keys[id(run)], {})
        if run.seed in seen:
            notes.append(f"{seen[run.seed].path}: superseded by the newer {run.path} (same variant, settings, seed)")
        seen[run.seed] = run
    rows = [_row(key, [by_seed[s] for s in sorted(by_seed)]) for key, by_seed in groups.items()]
    return sorted(rows, key=lambda r: r.key), notes


def best_row(rows: list[Row]) -> Row:
    """Highest mean validation accuracy (then more seeds, then name): the test split plays no part."""
    return min(rows, key=lambda r: (-r.val_accuracy.mean, -r.val_accuracy.n, r.key))


def comparison_tables(rows: list[Row]) -> str:
    """Tables 2-4 with the paper's numbers beside ours, our baselines, other variants, Table 1 as context."""
    parts = [_table(t, rows) for t in (*ABLATIONS, BASELINES)]
    others = [r for r in rows if r.variant not in paper_variants()]
    if others:
        parts.append(_table(PaperTable("Other variants and settings (ours)", ()), others))
    parts.append(_table(TABLE_1, rows))
    return "\n\n".join(parts)


def per_class_table(labels: list[str], scores: dict[str, np.ndarray], n_seeds: int) -> str:
    """precision / recall / F1 (%) and test support per class, averaged over n seeds; F1 "—" where a class
    does not count for macro-F1 (neither a test label nor predicted in any seed: pipeline.metrics)."""
    lines = ["| class | precision % | recall % | F1 % | test posts |", "|---|---:|---:|---:|---:|"]
    counted = scores.get("counted", np.ones(len(labels), dtype=bool))
    for c, name in enumerate(labels):
        p, r, f = (100 * scores[k][c] for k in ("precision", "recall", "f1"))
        f1 = f"{f:.2f}" if counted[c] else "—"
        lines.append(f"| {name} | {p:.2f} | {r:.2f} | {f1} | {int(scores['support'][c])} |")
    note = "macro-F1 is the mean F1 of the classes that count: a test label or a prediction; — marks the others"
    return "\n".join(lines) + f"\n\n(mean over {n_seeds} seed(s); {note})"


HEADER = ("| paper's row | our variant | " + " | ".join(m.title for m in TABLE_METRICS)
          + " | seeds | val acc % | paper acc % † |\n|---|---|" + "---:|" * (len(TABLE_METRICS) + 3))


def _table(table: PaperTable, rows: list[Row]) -> str:
    lines = [f"### {table.title}", "", HEADER]
    if table.rows:
        for paper in table.rows:
            ours = [r for r in rows if r.variant == paper.variant] or [None]  # one line per settings row
            lines += [_line(paper.name, paper.variant, row, paper.accuracy) for row in ours]
    else:
        lines += [_line("—", r.key, r, float("nan")) for r in rows]
    return "\n".join(lines) + f"\n\n† {PAPER_LABEL}; — where the paper has no such row or we have no run."


def _line(name: str, variant: str | None, row: Row | None, paper: float) -> str:
    paper_cell = "—" if math.isnan(paper) else f"{paper:.2f}"
    if row is None:
        ours = variant or "— (not reproducible on these features)"
        return f"| {name} | {ours} | " + "— | " * len(TABLE_METRICS) + f"0 | — | {paper_cell} |"
    cells = " | ".join(_shown(m, row.scores[m.key]) for m in TABLE_METRICS)
    return f"| {name} | {row.key} | {cells} | {row.test_accuracy.n} | {row.val_accuracy.pct()} | {paper_cell} |"


def _shown(metric, stat: Stat) -> str:
    return stat.pct() if metric.percent else stat.shown()


def _row(key: str, runs: list[Run]) -> Row:
    scores = {m.key: Stat.of([r.metrics.scores[m.key] for r in runs]) for m in TABLE_METRICS}
    return Row(key, runs[0].variant, tuple(runs), scores, Stat.of([r.metrics.val_accuracy for r in runs]))


def _row_keys(runs: list[Run]) -> dict[int, str]:
    """variant, or "variant (lr=0.001, epochs=6)" where runs of a variant differ in fit settings."""
    keys = {}
    for variant in {r.variant for r in runs}:
        mine = [r for r in runs if r.variant == variant]
        names = sorted({k for r in mine for k in r.settings})
        differ = [k for k in names if len({repr(r.settings.get(k)) for r in mine}) > 1]
        for r in mine:
            extra = ", ".join(f"{k}={r.settings.get(k)}" for k in differ)
            keys[id(r)] = f"{variant} ({extra})" if extra else variant
    return keys
