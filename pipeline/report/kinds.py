"""The report's "By post kind": accuracy and macro-F1 of each row on text+image, text-only, image-only and
several-image test posts (each run's metrics.json by_kind), mean ± std over seeds; '—' where a kind has no posts."""
from __future__ import annotations

from dataclasses import dataclass

from pipeline.metrics import POST_KINDS
from pipeline.report.tables import Row, Stat


@dataclass(frozen=True)
class KindRow:
    """One report row on each post kind: its test posts, and accuracy / macro-F1 over the seeds that have any."""

    key: str
    seeds: int  # runs that recorded by_kind
    posts: dict[str, int]  # kind -> test posts (of the first recording run: every seed tests the same posts)
    accuracy: dict[str, Stat | None]  # kind -> mean ± std, None where the kind has no test posts
    macro_f1: dict[str, Stat | None]


def kind_rows(rows: list[Row]) -> list[KindRow]:
    """A KindRow for each row whose runs recorded by_kind (runs made before it did not), in the order given."""
    out = []
    for row in rows:
        records = [r.metrics.by_kind for r in row.runs if r.metrics.by_kind]
        if records:
            out.append(KindRow(row.key, len(records), {k: int(records[0].get(k, {}).get("posts", 0)) for k in POST_KINDS},
                               _stats(records, "accuracy"), _stats(records, "macro_f1")))
    return out


def _stats(records: list[dict], metric: str) -> dict[str, Stat | None]:
    stats = {}
    for kind in POST_KINDS:
        values = [r[kind][metric] for r in records if r.get(kind, {}).get(metric) is not None]
        stats[kind] = Stat.of(values) if values else None
    return stats


def kinds_markdown(rows: list[KindRow], figure: str | None) -> str:
    """The section: what the kinds are, the table (accuracy %, macro-F1 %), the figure (a relative path)."""
    header = ("| variant | seeds | " + " | ".join(f"{k}: acc %, macro-F1 %" for k in POST_KINDS)
              + " |\n|---|---:|" + "---|" * len(POST_KINDS))
    posts = "| test posts | | " + " | ".join(_posts(rows, k) for k in POST_KINDS) + " |"
    lines = [_line(r) for r in rows]
    parts = ["### By post kind",
             "Test accuracy and macro-F1 (%, mean ± std over seeds) on each kind of post: *text+image*, *text only* "
             "and *image only* split the test posts; *several images* (two or more, with or without a text) cuts "
             "across them. — where the test split has no post of that kind (unknown, not 0).",
             "\n".join([header, posts, *lines])]
    if figure:
        caption = "Test accuracy per variant, by post kind"
        parts.append(f"**{caption}**\n\n![{caption}]({figure})")
    return "\n\n".join(parts)


def _posts(rows: list[KindRow], kind: str) -> str:
    counts = sorted({r.posts[kind] for r in rows})
    return " / ".join(map(str, counts))


def _line(row: KindRow) -> str:
    cells = []
    for kind in POST_KINDS:
        acc, f1 = row.accuracy[kind], row.macro_f1[kind]
        cells.append("—" if acc is None else f"{acc.pct()}, {f1.pct() if f1 else '—'}")
    return f"| {row.key} | {row.seeds} | " + " | ".join(cells) + " |"
