"""Scale benchmark (issue 13): commit, merge, load, batch gather and one epoch at N posts, ours beside the reference.

    python -m benchmarks.bench_scale                                 # N = 100k, 300k, 1M; D = 1024, fp16
    python -m benchmarks.bench_scale --sizes 100000 300000 --reference-max 100000
    python -m benchmarks.bench_scale --sizes 2000 --dim 32 --out /tmp/s.json --plot /tmp/s.png   # toy

Synthetic rows (ids, Gaussian features, labels), written in chunks of --chunk rows. Every figure is
taken in a fresh process (benchmarks/scale_worker.py) so that its peak RSS is its own; the
reference (benchmarks/reference_cache.py: the code before issue 13) runs in the same invocation,
up to --reference-max posts. Each process's address space is capped (--memory-limit-gib): a step that
needs more (the reference holds every feature in memory, several times over) is recorded as out of memory.
Writes a JSON of every measurement and a PNG of each figure against N.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
IMPLS = ("ours", "reference")
KINDS = ("commit", "merge", "load", "prepare", "gather", "epoch", "epoch_streamed")
PLOTTED = (("commit", "seconds"), ("commit", "growth_mib"), ("merge", "seconds"), ("merge", "growth_mib"),
           ("load", "seconds"), ("load", "growth_mib"), ("gather", "rows_per_s"), ("epoch", "seconds"))


def worker(spec: dict, memory_limit_gib: float | None = None) -> dict:
    """One measurement in a fresh process, its address space capped at `memory_limit_gib` (a step that needs more
    fails with MemoryError, recorded as its error, instead of the kernel's OOM killer picking a process); the
    load average around it."""
    def cap() -> None:
        if memory_limit_gib:
            limit = int(memory_limit_gib * 2**30)
            resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

    before = os.getloadavg()[0]
    proc = subprocess.run([sys.executable, "-m", "benchmarks.scale_worker", json.dumps(spec)], cwd=ROOT,
                          capture_output=True, text=True, preexec_fn=cap)
    load = dict(load_before=round(before, 2), load_after=round(os.getloadavg()[0], 2))
    if proc.returncode:
        return dict(error=(proc.stderr.strip().splitlines() or [f"exit {proc.returncode}"])[-1], **load)
    return {**json.loads(proc.stdout.strip().splitlines()[-1]), **load}


def kinds_of(impl: str) -> tuple[str, ...]:
    """The reference has no streamed reading, and no carve-out of its own (fit's prepare is ours)."""
    return KINDS if impl == "ours" else tuple(k for k in KINDS if k not in ("epoch_streamed", "prepare"))


def run_size(args, n: int, folder: Path) -> list[dict]:
    """Every measurement at one N, in a folder emptied afterwards."""
    base = dict(dir=str(folder), n=n, dim=args.dim, dtype=args.dtype, chunk=args.chunk, seed=0, batch=args.batch,
                gather_batches=args.gather_batches, max_memory_mib=args.stream_memory_mib)
    folder.mkdir(parents=True, exist_ok=True)
    worker({**base, "kind": "shards", "impl": "none"}, args.memory_limit_gib)
    rows = []
    for impl in IMPLS:
        if impl == "reference" and n > args.reference_max:
            continue
        wanted = args.reference_kinds or args.kinds if impl == "reference" else args.kinds
        for kind in (k for k in kinds_of(impl) if k in wanted):
            result = worker({**base, "kind": kind, "impl": impl}, args.memory_limit_gib)
            rows.append(dict(n=n, impl=impl, kind=kind, **result))
            print(json.dumps(rows[-1]), flush=True)
    shutil.rmtree(folder, ignore_errors=True)
    return rows


def table(rows: list[dict]) -> list[str]:
    """Markdown: one line per N and measurement, ours beside the reference and their ratio."""
    lines = ["| N | measurement | ours | reference | ours / reference |", "|---|---|---|---|---|"]
    cell = {(r["n"], r["impl"], r["kind"]): r for r in rows}
    failed = {(r["n"], r["impl"], r["kind"]) for r in rows if "error" in r}
    figures = [(k, "seconds") for k in KINDS] + [(k, "growth_mib") for k in ("commit", "merge", "load", "prepare", "epoch", "epoch_streamed")] + [
        ("gather", "rows_per_s"), ("load", "resident_feature_mib"), ("prepare", "resident_feature_mib"),
        ("prepare", "resident_mib")]
    for n in sorted({r["n"] for r in rows}):
        for kind, field in figures:
            ours, theirs = (cell.get((n, impl, kind), {}).get(field) for impl in IMPLS)
            if ours is None and theirs is None and not any((n, impl, kind) in failed for impl in IMPLS):
                continue
            ratio = f"{ours / theirs:.2f}" if ours is not None and theirs else "—"
            shown = [_failure(cell[(n, impl, kind)]) if (n, impl, kind) in failed else _fmt(v)
                     for impl, v in zip(IMPLS, (ours, theirs))]
            lines.append(f"| {n:,} | {kind} {field} | {shown[0]} | {shown[1]} | {ratio} |")
    return lines


def _failure(row: dict) -> str:
    error = row["error"]
    return "out of memory" if "MemoryError" in error or "Cannot allocate memory" in error else "failed"


def _fmt(value) -> str:
    if value is None:
        return "—"
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.2f}"


def plot(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 4, figsize=(16, 7))
    for ax, (kind, field) in zip(axes.flat, PLOTTED):
        for impl, style in zip(IMPLS, ("o-", "s--")):
            pts = sorted((r["n"], r[field]) for r in rows if r["impl"] == impl and r["kind"] == kind and field in r)
            if pts:
                ax.plot(*zip(*pts), style, label=impl)
        if kind == "epoch":
            pts = sorted((r["n"], r["seconds"]) for r in rows if r["kind"] == "epoch_streamed" and "seconds" in r)
            if pts:
                ax.plot(*zip(*pts), "^:", label="ours, streamed")
        ax.set(title=f"{kind}: {field}", xlabel="posts N", xscale="log", yscale="log")
        ax.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def earlier_rows(path: Path) -> list[dict]:
    """The measurements of an earlier run: its JSON's rows, or the JSON lines it printed (a run cut short)."""
    text = path.read_text()
    if path.suffix == ".json":
        return json.loads(text)["rows"]
    lines = (json.loads(line) for line in text.splitlines() if line.startswith("{"))
    return [row for row in lines if "kind" in row and "n" in row]


def parse(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", type=int, nargs="+", default=[100_000, 300_000, 1_000_000])
    p.add_argument("--dim", type=int, default=1024)
    p.add_argument("--dtype", default="float16", choices=["float16", "float32"])
    p.add_argument("--chunk", type=int, default=4096, help="rows per staged chunk (and per generated block)")
    p.add_argument("--batch", type=int, default=20, help="fit's batch size (paper: 20)")
    p.add_argument("--gather-batches", type=int, default=20_000)
    p.add_argument("--stream-memory-mib", type=float, default=256.0, help="--max-memory of the streamed epoch")
    p.add_argument("--kinds", nargs="+", default=list(KINDS), choices=KINDS, help="measurements to take")
    p.add_argument("--reference-kinds", nargs="+", default=None, choices=KINDS,
                   help="measurements of the reference (default: --kinds)")
    p.add_argument("--reference-max", type=int, default=1_000_000, help="largest N the reference runs at")
    p.add_argument("--memory-limit-gib", type=float, default=18.0,
                   help="address-space cap of each measuring process, GiB (0: none; importing torch alone takes about 4); past it a step fails as out of memory")
    p.add_argument("--combine", nargs="+", default=None, metavar="FILE",
                   help="no measuring: join earlier runs (their JSON, or the JSON lines they printed) into --out/--plot")
    p.add_argument("--dir", default=None, help="scratch folder (default: a temporary one)")
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "scale.json"))
    p.add_argument("--plot", default=str(ROOT / "benchmarks" / "results" / "scale.png"))
    return p.parse_args(argv)


def main(argv=None) -> list[dict]:
    from benchmarks.machine import describe

    import torch

    args = parse(argv)
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    if args.combine:
        rows = [row for file in args.combine for row in earlier_rows(Path(file))]
    else:
        scratch = Path(args.dir or tempfile.mkdtemp(prefix="sgmft-scale-"))
        rows = [row for n in args.sizes for row in run_size(args, n, scratch / f"n{n}")]
    result = dict(commit=commit, machine=describe(torch.device("cpu")), settings=vars(args), rows=rows)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=1))
    plot(rows, Path(args.plot))
    print("\n".join(table(rows)))
    return rows


if __name__ == "__main__":
    main()
