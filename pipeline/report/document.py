"""The words of report.md: what the numbers are, how they were chosen, the tables, figures and notes."""
from __future__ import annotations

import os
import re
from pathlib import Path

from pipeline.report.guidance import guidance_markdown
from pipeline.report.kinds import kinds_markdown
from pipeline.report.paper import PAPER_LABEL
from pipeline.report.section import Section
from pipeline.report.tables import comparison_tables, per_class_table

RULE = "!" * 78


def banner(encoder: str, note: str) -> str:
    """The loud warning for a tiny / synthetic / random-weight encoder."""
    lines = [
        RULE,
        f"!!  PLACEHOLDER ENCODER: these runs used encoder `{encoder}`" + (f" ({note})" if note else ""),
        "!!  This is NOT Chinese-CLIP. The accuracies below say NOTHING about SG-MFT or about",
        "!!  semantic location prediction; they only show that the pipeline runs end to end.",
        RULE,
    ]
    return "```\n" + "\n".join(lines) + "\n```"


def document(sections: list[tuple[Section, str]], skipped: list[str]) -> str:
    """report.md: a header, one part per cache fingerprint, and the run dirs that were left out."""
    parts = ["# sgmft report"]
    loud = {(s.encoder, s.encoder_note) for s, _ in sections if s.placeholder}
    parts += [banner(encoder, note) for encoder, note in sorted(loud)]
    fps = ", ".join(f"`{s.fingerprint}`" for s, _ in sections)
    parts.append(f"{sum(len(s.runs) for s, _ in sections)} finished run(s) from {len(sections)} feature cache(s) "
                 f"({fps}). Runs of different caches are reported apart and never share a table.")
    parts += [text for _, text in sections]
    if skipped:
        parts += ["## Run directories left out", "\n".join(f"- {line}" for line in skipped)]
    return "\n\n".join(parts) + "\n"


def section_markdown(s: Section, out_dir: Path, alone: bool = False) -> str:
    """One cache's part: what the numbers mean, the comparison tables, the best variant, figures, notes."""
    parts = [f"## Cache `{s.fingerprint}` — encoder `{s.encoder}`"]
    if s.placeholder and not alone:  # a single section shares the document's banner
        parts.append(banner(s.encoder, s.encoder_note))
    parts.append(_what_this_is(s))
    parts.append(comparison_tables(s.rows))
    if s.kinds:
        parts.append(kinds_markdown(s.kinds, s.kinds_figure and _rel(s.kinds_figure, out_dir)))
    parts.append(_best(s))
    if s.guidance:
        parts.append(guidance_markdown(s.guidance, s.guidance_figure and _rel(s.guidance_figure, out_dir)))
    parts += ["### Figures", *(f"**{cap}**\n\n![{cap}]({_rel(p, out_dir)})" for cap, p in s.figures.items())]
    if s.notes:
        parts += ["### Notes", "\n".join(f"- {n}" for n in s.notes)]
    return "\n\n".join(parts)


def _what_this_is(s: Section) -> str:
    m = s.runs[0].metrics
    sizes = ", ".join(f"{name} {'?' if n is None else n}" for name, n in (
        ("train", m.train_size), ("val", m.val_size), ("test", m.test_size))) + " posts"
    return "\n".join([
        f"- **Ours**: test accuracy and macro-F1 on this cache's test split, as mean ± sample std over the "
        f"seeds of each row (the `seeds` column gives n; ± — means one seed). {len(s.runs)} run(s), "
        f"{len(s.rows)} row(s); {sizes}.",
        f"- **Validation protocol**: each run's checkpoint epoch (the probe: its C) was chosen by validation "
        f"accuracy on {_val_sources(s)}; the test split was never used for any choice.",
        f"- **Encoder**: `{s.encoder}`" + (f" — {s.encoder_note}" if s.encoder_note else "") + ".",
        f"- **Paper numbers** (column †) are the paper's ({PAPER_LABEL}): set beside ours for orientation, "
        f"not a like-for-like comparison.",
        f"- Classes: {', '.join(s.labels)}.",
        *READINGS,
    ])


READINGS = (  # where the paper leaves a choice open, what our variants read it as
    "- **Our reading of `clip-only`** (Table 2, \"+ CLIP features (classifier only)\"): the five-layer classifier "
    "on the *sum* F_text ⊕ F_image (D wide), the same ⊕ as eq. 17; the concatenation [F_text; F_image] (2D wide) "
    "is the separate baseline `concat-mlp`.",
    "- **Our reading of the SFM** (eq. 17): each of its cross-attentions sits in a residual with a LayerNorm, "
    "LayerNorm(x + CA(x, other)), as in the SIM's eqs. 13 and 16; the paper states neither for the SFM.",
)


def _val_sources(s: Section) -> str:
    """The distinct validation sources; per-seed carve-outs are folded into one phrase."""
    sources = {re.sub(r"seed \d+", "seed = the run's seed", r.metrics.val_source) for r in s.runs}
    return "; ".join(sorted(sources))


def _best(s: Section) -> str:
    b = s.best
    head = (f"### Best variant: `{b.key}` — chosen by mean **validation** accuracy ({b.val_accuracy.pct()} %, "
            f"{b.val_accuracy.n} seed(s)), not by test accuracy\n\n"
            f"{_sentence(b.scores_in_words())}.")
    tied = [r.key for r in s.rows if r is not b and r.val_accuracy.mean == b.val_accuracy.mean]
    if tied:
        head += f" Tied on validation accuracy with {', '.join(tied)}; the first by seeds, then name, is shown."
    if s.per_class is None:
        return head
    return head + "\n\nPer-class precision, recall and F1 on the test split:\n\n" + per_class_table(
        s.labels, s.per_class, s.per_class_seeds)


def _sentence(text: str) -> str:
    return text[:1].upper() + text[1:]


def _rel(path: Path, out_dir: Path) -> str:
    return Path(os.path.relpath(path, out_dir)).as_posix()
