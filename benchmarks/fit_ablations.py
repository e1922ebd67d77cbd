"""The optimisations tried on the fit step, each timed in its own process (kept or not: see BENCHMARKS.md).

    python -m benchmarks.fit_ablations                 # D = 1024, batch 20, CPU
    python -m benchmarks.fit_ablations --variants adam-fused,compile

Variants: adam-default (torch.optim.Adam as constructed before, a per-parameter loop on CPU),
adam-foreach, adam-fused (what `fit` uses), adam-in-backward (one fused Adam per parameter, stepped
from a post-accumulate-grad hook as soon as its gradient exists, so the gradient is still in cache),
compile (adam-fused with the head under torch.compile; compile time reported apart).
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from benchmarks.fit_worker import train_step
from benchmarks.machine import Window
from pipeline.head import HeadConfig, SGMFTHead

VARIANTS = ("adam-default", "adam-foreach", "adam-fused", "adam-in-backward", "compile")
LR, BETAS = 1e-5, (0.9, 0.99)


def make_step(variant: str, head: SGMFTHead):
    """A function (t, v, y) -> None doing one training step the way `variant` does it."""
    model = torch.compile(head) if variant == "compile" else head
    if variant == "adam-in-backward":
        opts = {p: torch.optim.Adam([p], lr=LR, betas=BETAS, fused=True) for p in head.parameters()}

        def step_now(p: torch.nn.Parameter) -> None:
            opts[p].step()
            p.grad = None

        for p in head.parameters():
            p.register_post_accumulate_grad_hook(step_now)
        return lambda t, v, y: F.cross_entropy(model(t, v), y).backward()
    kind = {"adam-default": {}, "adam-foreach": dict(foreach=True)}.get(variant, dict(fused=True))
    opt = torch.optim.Adam(head.parameters(), lr=LR, betas=BETAS, **kind)

    return lambda t, v, y: train_step(model, opt, t, v, y)


def one(variant: str, dim: int, batch: int, steps: int, chunks: int, quiet_wait: float) -> dict:
    torch.manual_seed(0)
    head = SGMFTHead(HeadConfig(embed_dim=dim))
    t, v = torch.randn(steps * batch, dim), torch.randn(steps * batch, dim)
    y = torch.arange(steps * batch) % head.cfg.num_classes
    step = make_step(variant, head)
    batches = [(t[i : i + batch], v[i : i + batch], y[i : i + batch]) for i in range(0, steps * batch, batch)]
    start = time.perf_counter()
    for b in batches[:3]:  # warm-up; compiles when compiling
        step(*b)
    warmup = time.perf_counter() - start
    timings = []
    for _ in range(chunks):
        with Window(wait_s=quiet_wait) as w:
            for b in batches:
                step(*b)
        timings.append(dict(ms_per_step=1e3 * w.seconds / steps, foreign_load=w.foreign))
    clean = sorted(x["ms_per_step"] for x in timings if x["foreign_load"] <= 0.1) or [None]
    return dict(variant=variant, warmup_s=warmup, best_clean_ms=clean[0], chunks=timings)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--variants", default=",".join(VARIANTS))
    p.add_argument("--dim", type=int, default=1024)
    p.add_argument("--batch", type=int, default=20)
    p.add_argument("--steps", type=int, default=10, help="steps per timed chunk")
    p.add_argument("--chunks", type=int, default=6, help="timed chunks per variant; the fastest clean one is kept")
    p.add_argument("--quiet-wait", type=float, default=30.0, help="seconds a chunk may wait for idle CPUs")
    p.add_argument("--out", default="benchmarks/results/fit-ablations.json")
    p.add_argument("--one", help=argparse.SUPPRESS)  # run one variant here and print its JSON
    args = p.parse_args(argv)
    if args.one:
        print(json.dumps(one(args.one, args.dim, args.batch, args.steps, args.chunks, args.quiet_wait)))
        return
    results = []
    for variant in args.variants.split(","):
        cmd = [sys.executable, "-m", "benchmarks.fit_ablations", "--one", variant, *_passthrough(args)]
        out = subprocess.run(cmd, check=True, capture_output=True, text=True, cwd=Path(__file__).parents[1])
        results.append(json.loads(out.stdout.strip().splitlines()[-1]))
        r = results[-1]
        fastest = min(r["chunks"], key=lambda c: c["ms_per_step"])
        best = (f"{r['best_clean_ms']:.1f}" if r["best_clean_ms"]
                else f"{fastest['ms_per_step']:.1f} (under {fastest['foreign_load']:.0%} other load)")
        print(f"{variant:18} {best:>16} ms/step   warm-up (3 steps{', compiling' if variant == 'compile' else ''}) "
              f"{r['warmup_s']:.1f} s")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(dict(args=vars(args), torch=torch.__version__, results=results), indent=2))


def _passthrough(args: argparse.Namespace) -> list[str]:
    return [f"--dim={args.dim}", f"--batch={args.batch}", f"--steps={args.steps}", f"--chunks={args.chunks}",
            f"--quiet-wait={args.quiet_wait}"]


if __name__ == "__main__":
    main()
