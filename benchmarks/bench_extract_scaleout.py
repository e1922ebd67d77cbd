"""Scale-out benchmark: `sgmft extract` as one process against `torchrun --nproc-per-node N` on the same machine.

    python -m benchmarks.bench_extract_scaleout                      # CPU: 1 process vs 2 ranks, RN50 random weights
    python -m benchmarks.bench_extract_scaleout --nproc 8 --device cuda --model ViT-H-14 --scale 20

The real command lines, end to end (start-up, model load, extraction, the shards' merge), wall clock,
alternated --repeats times on fresh caches. Inputs as bench_extract: the weibo_text posts (one shared
image) and the weibo_multimodal posts, read from ../shared/data at run time.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.bench_extract_data import weibo_posts, weibo_texts
from benchmarks.machine import describe

SGMFT = Path(sys.executable).with_name("sgmft")


def command(args, manifest: Path, cache: Path, nproc: int) -> list[str]:
    extract = [str(SGMFT), "extract", "--manifest", str(manifest), "--cache", str(cache), "--model", args.model,
               "--random-weights", "--device", args.device, "--batch-size", str(args.batch_size), "-q"]
    if nproc == 1:
        return extract
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", str(nproc),
            "--no-python", *extract]


def wall(cmd: list[str], env: dict) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, check=True, capture_output=True, env=env)
    return time.perf_counter() - start


def main(args) -> dict:
    import torch

    res: dict = dict(command="python -m benchmarks.bench_extract_scaleout " + " ".join(sys.argv[1:]),
                     machine=describe(torch.device(args.device)), load_before=os.getloadavg(), model=args.model)
    with tempfile.TemporaryDirectory() as tmp:
        folder, env = Path(tmp), {**os.environ, "SGMFT_HOME": tmp}
        inputs = dict(text=weibo_texts(folder / "text", args.text_rows), posts=weibo_posts(folder / "posts", args.scale))
        for name, posts in inputs.items():
            times: dict[int, list[float]] = {1: [], args.nproc: []}
            for k in range(args.repeats):
                for nproc in times:
                    cache = folder / f"{name}-{nproc}-{k}.h5"
                    times[nproc].append(wall(command(args, posts.manifest, cache, nproc), env))
                    cache.unlink()
            one, many = statistics.median(times[1]), statistics.median(times[args.nproc])
            res[name] = dict(posts=len(posts.texts), seconds=times, one_process_posts_per_s=len(posts.texts) / one,
                             ranks_posts_per_s=len(posts.texts) / many, speedup=one / many)
    res["load_after"] = os.getloadavg()
    return res


def parse() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--nproc", type=int, default=2, help="ranks of the torchrun launch")
    p.add_argument("--model", default="RN50", help="cn_clip model, at random weights")
    p.add_argument("--device", default="cpu", help="cpu or cuda (each rank takes cuda:LOCAL_RANK)")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--text-rows", type=int, default=None, help="only the first N weibo_text posts")
    p.add_argument("--scale", type=int, default=1, help="copies of each weibo_multimodal post, each its own image")
    p.add_argument("--repeats", type=int, default=2, help="alternated runs of each (median)")
    p.add_argument("--out", default="benchmarks/results/extract-scaleout.json")
    return p.parse_args()


if __name__ == "__main__":
    arguments = parse()
    results = main(arguments)
    for kind in ("text", "posts"):
        r = results[kind]
        print(f"{kind} ({r['posts']} posts): 1 process {r['one_process_posts_per_s']:.1f} posts/s, "
              f"{arguments.nproc} ranks {r['ranks_posts_per_s']:.1f} posts/s ({r['speedup']:.2f} x), end to end")
    print(f"load {results['load_before'][0]:.2f} -> {results['load_after'][0]:.2f}")
    Path(arguments.out).parent.mkdir(parents=True, exist_ok=True)
    Path(arguments.out).write_text(json.dumps(results, indent=2) + "\n")
    print(f"-> {arguments.out}")
