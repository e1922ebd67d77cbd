"""The report's "Is the similarity guidance active?": each row's guidance.json (mean over seeds) and a verdict."""
from __future__ import annotations

import math
from dataclasses import dataclass

from pipeline import variants
from pipeline.report.tables import Row
from pipeline.rundir import GUIDANCE

FLAT_PEAK = 1.1  # max·D below this: no channel gets 10 % more than a uniform share, the softmax is flat
DEAF = 0.01  # a dependence ratio below this: the other modality moves a SIM output < 1 % as much as its own
MEASURED, NO_SIM, NOT_MEASURED = "measured", "no SIM", "not measured"
NUMBERS = ("tau_m", "tau_e", "p_m_entropy", "p_m_peak", "p_e_entropy", "p_e_peak", "text_on_image_grad",
           "image_on_text_grad", "text_on_image_swap", "image_on_text_swap")  # Guidance fields the report shows


@dataclass(frozen=True)
class GuidanceRow:
    """One report row's similarity diagnostics: the mean of each number over its measured seeds."""

    key: str  # the report row
    state: str  # MEASURED, NO_SIM or NOT_MEASURED
    seeds: int  # runs measured
    mean: dict[str, float]  # Guidance field -> mean over those runs (empty unless MEASURED)
    dim: int = 0  # D

    @property
    def flat(self) -> bool:
        return self.mean["p_m_peak"] < FLAT_PEAK and self.mean["p_e_peak"] < FLAT_PEAK

    @property
    def deaf(self) -> bool:
        return max(self.mean["text_on_image_grad"], self.mean["image_on_text_grad"]) < DEAF

    @property
    def verdict(self) -> str:
        if self.state != MEASURED:
            return self.state
        if self.deaf:
            return "**no**: " + ("P^m, P^e flat; " if self.flat else "") + "each modality deaf to the other"
        return "**yes**: " + ("P^m, P^e flat, yet " if self.flat else "") + "the modalities reach each other"


def guidance_rows(rows: list[Row]) -> list[GuidanceRow]:
    """A GuidanceRow per report row, in the order given."""
    return [_guidance_row(row) for row in rows]


def _guidance_row(row: Row) -> GuidanceRow:
    known = variants.VARIANTS.get(row.variant)
    if known is not None and known.trainer != "head":
        return GuidanceRow(row.key, NO_SIM, 0, {})
    records = [g for g in (run.guidance() for run in row.runs) if g is not None]
    if not records:
        return GuidanceRow(row.key, NOT_MEASURED, 0, {})
    if not any(g.sim for g in records):
        return GuidanceRow(row.key, NO_SIM, 0, {}, records[0].dim)
    measured = [g for g in records if g.sim]
    mean = {k: sum(getattr(g, k) for g in measured) / len(measured) for k in NUMBERS}
    return GuidanceRow(row.key, MEASURED, len(measured), mean, measured[0].dim)


HEADER = ("| variant | seeds | τ_m, τ_e | P^m: H/log D, max·D | P^e rows: H/log D, max·D | text ← image: grad, "
          "swap | image ← text: grad, swap | guided? |\n|---|---:|---|---|---|---|---|---|")


def guidance_markdown(rows: list[GuidanceRow], figure: str | None) -> str:
    """The section: what the numbers mean, the table, the figure (a relative path) when there is one."""
    dims = sorted({r.dim for r in rows if r.dim})
    parts = ["### Is the similarity guidance active?", _explanation(dims), HEADER + "\n" + "\n".join(map(_line, rows))]
    if figure:
        caption = "Similarity guidance per variant: peaks of P^m and P^e, and cross-modal dependence"
        parts.append(f"**{caption}**\n\n![{caption}]({figure})")
    return "\n\n".join(parts)


def _explanation(dims: list[int]) -> str:
    d = f"D = {', '.join(map(str, dims))}" if dims else "D"
    return (f"Measured at the end of each head run on up to 128 validation posts ({GUIDANCE}; mean over the seeds). "
            f"**P^m** (eq. 3) and the rows of **P^e** (eqs. 4-5) of the guided FFN: entropy relative to log D "
            f"(1 = uniform, 0 = one channel) and max·D (1 = uniform, D = one channel; {d}); a sigmoid gate is read "
            f"as its shares. **text ← image**: how much F_text^S depends on the image feature against how much it "
            f"depends on the text — *grad* ‖∂F_text^S/∂v‖·‖v‖ / ‖∂F_text^S/∂t‖·‖t‖, *swap* the change in F_text^S "
            f"when v is another post's over the change when t is; **image ← text** the mirror. Near 0: the other "
            f"modality does not reach that output, and the SIM is two separate towers. **guided?** says *no* where "
            f"both gradient ratios are below {DEAF} (flat: max·D below {FLAT_PEAK} for P^m and P^e). "
            f"τ = 1 is the paper (no temperature).")


def _line(row: GuidanceRow) -> str:
    if row.state != MEASURED:
        return f"| {row.key} | — | " + f"{row.state} | " * 5 + f"{row.verdict} |"
    m = row.mean
    cells = [f"{short(m['tau_m'])}, {short(m['tau_e'])}", f"{m['p_m_entropy']:.4f}, {short(m['p_m_peak'])}",
             f"{m['p_e_entropy']:.4f}, {short(m['p_e_peak'])}",
             f"{short(m['text_on_image_grad'])}, {short(m['text_on_image_swap'])}",
             f"{short(m['image_on_text_grad'])}, {short(m['image_on_text_swap'])}"]
    return f"| {row.key} | {row.seeds} | " + " | ".join(cells) + f" | {row.verdict} |"


def short(x: float) -> str:
    """A diagnostic number for a table cell or a bar label: 1.01, 24, 482, 1024, 0.0534, 9.52e-06."""
    if math.isnan(x):
        return "—"
    return f"{x:.2f}" if 1 <= x < 10 else f"{x:.4g}" if x >= 1000 else f"{x:.3g}"
