"""`sgmft report`: run directories -> report.md with the paper's tables beside ours, and PNG figures."""
from __future__ import annotations

import re
from pathlib import Path
from typing import Iterable

from sgmft_cache import SgmftError
from pipeline.variants import FULL
from pipeline.report import analysis, figures
from pipeline.metrics import POST_KINDS
from pipeline.report.guidance import DEAF, FLAT_PEAK, MEASURED, guidance_rows
from pipeline.report.kinds import kind_rows
from pipeline.report.config import ReportConfig
from pipeline.report.document import document, section_markdown
from pipeline.report.paper import ABLATIONS, BASELINES
from pipeline.report.runs import Run, by_fingerprint, load_runs
from pipeline.report.section import ReportSummary, Section
from pipeline.report.tables import Row, aggregate, best_row

TSNE_MIN_POINTS = 5  # fewer test posts than this make no map worth drawing


def report(runs: Iterable[str | Path] = (ReportConfig.runs,), out_dir: str | Path = ReportConfig.out,
           tsne: bool = ReportConfig.tsne) -> ReportSummary:
    """Read finished runs (run dirs or folders of them), write <out_dir>/report.md and figures per cache."""
    given = [Path(p) for p in runs]
    found = load_runs(given)
    if not found.runs:
        why = f" ({len(found.skipped)} unfinished run dir(s))" if found.skipped else ""
        raise SgmftError(f"{', '.join(map(str, given))}: no finished runs{why}; train some with `sgmft fit`")
    out_dir = Path(out_dir)
    groups = sorted(by_fingerprint(found.runs).items())
    sections = [_section(fp, group, out_dir / _slug(fp), tsne) for fp, group in groups]
    markdown = document([(s, section_markdown(s, out_dir, len(sections) == 1)) for s in sections], found.skipped)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "report.md"
    path.write_text(markdown, encoding="utf-8")
    return ReportSummary(out_dir, path, markdown, sections, found.skipped)


def _section(fingerprint: str, runs: list[Run], folder: Path, tsne: bool) -> Section:
    rows, notes = aggregate(runs)
    section = Section(fingerprint, folder, runs, rows, best_row(rows), notes)
    folder.mkdir(parents=True, exist_ok=True)
    _accuracy_figure(section)
    _best_variant_figures(section)
    _learning_curves(section)
    _guidance(section)
    _kinds(section)
    if tsne:
        _tsne_figures(section)
    return section


def _in_table_order(rows: list[Row]) -> list[Row]:
    """Rows in the order of the paper's tables and ours, then the others by name."""
    order = [row.variant for table in (*ABLATIONS, BASELINES) for row in table.rows if row.variant]
    rank = {v: i for i, v in reversed(list(enumerate(order)))}
    return sorted(rows, key=lambda r: (rank.get(r.variant, len(order)), r.key))


def _accuracy_figure(s: Section) -> None:
    paper = {row.variant: row.accuracy for table in ABLATIONS for row in table.rows if row.variant}
    rows = _in_table_order(s.rows)
    ours = [(100 * r.test_accuracy.mean, 100 * r.test_accuracy.std) for r in rows]
    s.figures["Test accuracy per variant, ours vs the paper"] = figures.accuracy_chart(
        [r.key for r in rows], ours, [paper.get(r.variant, float("nan")) for r in rows],
        s.folder / "accuracy.png", "Test accuracy: ours (bars) vs paper (◆, their data)")


def _best_variant_figures(s: Section) -> None:
    outputs = [out for _, out in analysis.with_outputs(s.best.runs)]
    if not outputs:
        s.notes.append(f"{s.best.key}: no test_outputs.npz, so no per-class table or confusion matrix")
        return
    k = len(s.labels)
    s.per_class, s.per_class_seeds = analysis.mean_per_class(outputs, k), len(outputs)
    counts = analysis.summed_confusion(outputs, k)
    title = f"{s.best.key}: test confusion, summed over {len(outputs)} seed(s)"
    s.figures[f"Confusion matrix of {s.best.key}"] = figures.confusion_figure(
        counts, analysis.row_share(counts), s.labels, s.folder / f"confusion_{_slug(s.best.key)}.png", title)


def _learning_curves(s: Section) -> None:
    """Of the best row that logged epochs (the probe has none), in validation order."""
    for row in sorted(s.rows, key=lambda r: -r.val_accuracy.mean):
        curves = [(run.seed, table) for run in row.runs if (table := run.epochs()) is not None]
        if curves:
            if row is not s.best:
                s.notes.append(f"learning curves show {row.key}: the best variant {s.best.key} logs no epochs")
            s.figures[f"Learning curves of {row.key}"] = figures.learning_curves(
                curves, s.folder / f"learning_curves_{_slug(row.key)}.png",
                f"{row.key}: loss and accuracy per epoch ({len(curves)} seed(s))")
            return
    s.notes.append("no run logged epochs, so no learning curves")


def _guidance(s: Section) -> None:
    """The similarity diagnostics of every row, and their figure where some row measured a SIM."""
    s.guidance = guidance_rows(_in_table_order(s.rows))
    measured = [g for g in s.guidance if g.state == MEASURED]
    if not measured:
        return
    m = [g.mean for g in measured]
    s.guidance_figure = figures.guidance_figure(
        [g.key for g in measured], ([x["p_m_peak"] for x in m], [x["p_e_peak"] for x in m]),
        ([x["text_on_image_grad"] for x in m], [x["image_on_text_grad"] for x in m]), max(g.dim for g in measured),
        (FLAT_PEAK, DEAF), s.folder / "guidance.png", "Is the similarity guidance active? (mean over seeds)")


def _kinds(s: Section) -> None:
    """Accuracy and macro-F1 by post kind of every row that recorded them, and their figure."""
    s.kinds = kind_rows(_in_table_order(s.rows))
    if not s.kinds:
        return
    cells = [[None if (a := k.accuracy[kind]) is None else (100 * a.mean, 100 * a.std) for kind in POST_KINDS]
             for k in s.kinds]
    s.kinds_figure = figures.kinds_figure([k.key for k in s.kinds], POST_KINDS, cells, s.folder / "by_kind.png",
                                          "Test accuracy by post kind (mean ± std over seeds; — no such test posts)")


def _tsne_figures(s: Section) -> None:
    """M_fuse of the test posts: the best variant's representative seed, and the full model beside it."""
    full = [r for r in s.rows if r.variant == FULL]
    for row in [s.best] + ([full[0]] if full and full[0] is not s.best else []):
        run = row.representative()
        out = run.outputs()
        if out is None or len(out["fusion"]) < TSNE_MIN_POINTS:
            s.notes.append(f"{run.path}: too few saved test posts for a t-SNE map")
            continue
        xy, label = analysis.tsne_map(out["fusion"], out["label"])
        title = f"t-SNE of M_fuse, test posts — {row.key}, seed {run.seed} ({len(xy)} posts)"
        s.figures[f"t-SNE of M_fuse: {row.key}"] = figures.tsne_figure(
            xy, label, s.labels, s.folder / f"tsne_{_slug(row.key)}.png", title)


def _slug(text: str) -> str:
    """A file-name-safe form of a fingerprint or a row key."""
    return re.sub(r"[^A-Za-z0-9._=-]+", "_", text).strip("_")[:80] or "runs"
