"""Extraction benchmark: what `sgmft extract` runs, against cn_clip's own recipe and against the encoders alone.

    python -m benchmarks.bench_extract                                    # CPU: RN50 at random weights
    python -m benchmarks.bench_extract --device cuda --model ViT-H-14 --precision bf16 --scale 20 --batch-size 256

Offline, on real posts read from ../shared/data at run time, with a real cn_clip architecture at seeded
random weights. The same posts become the same vectors three ways, each timed warm (median of --repeats,
interleaved so that all three see the same machine):
- reference: cn_clip's recipe as its README shows it: tokenize(texts, context_length=52), fixed batches in
  manifest order, images opened and transformed in the main process, encode_text / encode_image (the
  texts cleaned as SPEC §2 first, in the main process: the same T_user the engine encodes);
- engine: `extract_split`, the stage function of `sgmft extract` (decoding workers, texts sorted by length,
  duplicates encoded once, staged chunks, commit);
- forward: the engine's encoder calls alone, on token ids and pixels already in (device) memory.
Texts: the 2,400 real posts of weibo_text (the engine gets each with one shared small image: decoded per
row, encoded once; the reference encodes texts only). Posts: the 74 real text+image posts of weibo_multimodal
(--scale k: k copies, each with its own cropped image file and numbered text, for a GPU's appetite).
The figures go to --out as JSON, and are printed.
"""
from __future__ import annotations

import argparse
import functools
import json
import os
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from itertools import count
from pathlib import Path
from typing import Callable

import torch

from benchmarks.bench_extract_data import Posts, encoder_flops, weibo_posts, weibo_texts
from benchmarks.machine import Window, describe, matmul_peak, sync_fn
from sgmft_cache import CacheMeta

GPU_PEAK_TFLOPS = {  # dense fp16/bf16 tensor-core peaks from NVIDIA's data sheets, by torch.cuda.get_device_name
    "H100 80GB HBM3": 989.4, "H100 SXM": 989.4, "H100 PCIe": 756.0, "H100 NVL": 835.0, "H200": 989.4,
    "A100": 312.0, "L40S": 362.0, "A10G": 70.0, "L4": 121.0,
}


def reference_texts(encoder, cleaner, posts: Posts, batch: int, n: int) -> Callable[[], None]:
    from cn_clip.clip import tokenize

    texts = posts.texts[:n]

    def run() -> None:
        with torch.no_grad(), encoder._autocast():
            for start in range(0, len(texts), batch):
                ids = tokenize([cleaner(t) for t in texts[start:start + batch]], context_length=52)
                encoder.model.encode_text(ids.to(encoder.device)).float().cpu()
    return run


def reference_posts(encoder, cleaner, posts: Posts, batch: int, n: int) -> Callable[[], None]:
    from cn_clip.clip import image_transform, tokenize
    from PIL import Image

    preprocess = image_transform(encoder.weights.resolution)
    texts, images = posts.texts[:n], posts.images[:n]

    def run() -> None:
        with torch.no_grad(), encoder._autocast():
            for start in range(0, len(texts), batch):
                pixels = torch.stack([preprocess(Image.open(p)) for p in images[start:start + batch]])
                ids = tokenize([cleaner(t) for t in texts[start:start + batch]], context_length=52)
                encoder.model.encode_image(pixels.to(encoder.device)).float().cpu()
                encoder.model.encode_text(ids.to(encoder.device)).float().cpu()
    return run


def engine(encoder, prepare, posts: Posts, args, folder: Path) -> Callable[[], None]:
    from pipeline.extract import ExtractConfig, Job, extract_split, read_manifest
    from pipeline.extract.memo import Memos

    manifest = read_manifest(posts.manifest)
    meta = CacheMeta(model=args.model, embed_dim=encoder.embed_dim, labels=manifest.labels, fingerprint="bench")
    cfg = ExtractConfig(manifest=str(posts.manifest), batch_size=args.batch_size, workers=args.workers,
                        quiet=True, threads=args.engine_threads)
    numbers = count()

    def run() -> None:
        cache = folder / f"{posts.name}-{next(numbers)}.h5"
        extract_split(Job(replace(cfg, cache=str(cache)), manifest, meta, encoder, prepare,
                          Memos.empty(encoder.embed_dim)), "train")
        cache.unlink()
    return run


class Recorder:
    """Records the engine's encoder calls during one run, so that the forward replays exactly them."""

    def __init__(self, encoder):
        self.encoder, self.images, self.texts = encoder, [], []

    def __enter__(self) -> "Recorder":
        encode_images, encode_texts = self.encoder.encode_images, self.encoder.encode_texts
        self.encoder.encode_images = lambda pixels: self.images.append(pixels.clone()) or encode_images(pixels)
        self.encoder.encode_texts = lambda tokens, batch: self.texts.append((tokens, batch)) or encode_texts(tokens, batch)
        return self

    def __exit__(self, *exc) -> None:
        del self.encoder.encode_images, self.encoder.encode_texts  # the class's methods again

    def forward(self) -> Callable[[], None]:
        """The recorded calls on pixels already on the encoder's device and token ids in memory."""
        pixels = [p.to(self.encoder.device) for p in self.images]

        def run() -> None:
            for batch in pixels:
                self.encoder.encode_images(batch)
            for tokens, batch_size in self.texts:
                self.encoder.encode_texts(tokens, batch_size)
        return run

    def text_tokens(self) -> dict:
        """Token positions the text encoder computed: the texts' own, with the engine's padding, at 52 each."""
        from pipeline.extract.encoders import text_batches, text_token_budget

        max_tokens = text_token_budget(self.encoder.device)
        own = padded = fixed = 0
        for tokens, batch_size in self.texts:
            lengths = [len(t) for t in tokens]
            own, fixed = own + sum(lengths), fixed + 52 * len(lengths)
            padded += sum(len(b) * max(lengths[i] for i in b) for b in text_batches(lengths, batch_size, max_tokens))
        return dict(own=own, engine=padded, fixed_52=fixed, engine_efficiency=own / padded if padded else None)


def timed(runs: dict[str, Callable[[], None]], warmups: dict[str, Callable[[], None]], repeats: int, sync,
          max_foreign: float, tries: int) -> dict:
    """Median seconds of each run (after its warm-up), repeats interleaved; a repeat during which other
    processes kept more than `max_foreign` of the CPUs busy is retaken up to `tries` times."""
    for warmup in warmups.values():
        warmup()
    out = {name: [] for name in runs}
    for _ in range(repeats):
        for name, run in runs.items():
            for _ in range(tries):
                with Window(sync=sync) as window:
                    run()
                if window.foreign <= max_foreign:
                    break
            out[name].append(dict(seconds=window.seconds, foreign=round(window.foreign, 3)))
            print(f"  {name}: {window.seconds:.2f} s, others used {window.foreign:.0%} of the CPUs",
                  file=sys.stderr, flush=True)
    return {name: dict(median_s=statistics.median(r["seconds"] for r in rs), runs=rs) for name, rs in out.items()}


def with_threads(run: Callable[[], None], threads: int) -> Callable[[], None]:
    def wrapped() -> None:
        saved = torch.get_num_threads()
        torch.set_num_threads(threads)
        try:
            run()
        finally:
            torch.set_num_threads(saved)
    return wrapped


def bench(posts: Posts, reference, engine_run, forward_run, args, sync) -> dict:
    """Reference and forward at each of --threads (their best counts: it is what they could do here);
    the engine as `sgmft extract` sets itself up (its threads: the cores its decoding workers leave).
    `reference` is a function of the number of posts (the first two batches warm it up)."""
    runs = {f"reference@{t}": with_threads(reference(len(posts.texts)), t) for t in args.threads}
    runs |= {"engine": engine_run} | {f"forward@{t}": with_threads(forward_run, t) for t in args.threads}
    warmups = {f"reference@{t}": with_threads(reference(2 * args.batch_size), t) for t in args.threads}
    warmups |= {f"forward@{t}": with_threads(forward_run, t) for t in args.threads}  # the engine ran just before
    result = timed(runs, warmups, args.repeats, sync, args.max_foreign, args.tries)
    for r in result.values():
        r["posts_per_s"] = len(posts.texts) / r["median_s"]
    for kind in ("reference", "forward"):
        best = max((k for k in result if k.startswith(kind + "@")), key=lambda k: result[k]["posts_per_s"])
        result[kind] = {**result[best], "threads": int(best.split("@")[1])}
    rate = {name: r["posts_per_s"] for name, r in result.items()}
    return dict(posts=len(posts.texts), **result, engine_vs_reference=rate["engine"] / rate["reference"],
                engine_vs_forward=rate["engine"] / rate["forward"])


def flop_rate(model: str, tokens: list[list[int]], images: int, result: dict, peak_tflops: float | None) -> dict:
    """FLOPs the engine's encoder calls cost per post (texts at their own length, padding not counted),
    and what the engine's and the forward's rates make of them, against the device's peak when known."""
    flops = encoder_flops(model, [len(t) for t in tokens])
    per_post = (flops["image"] * images + sum(flops["text_by_length"][len(t)] for t in tokens)) / result["posts"]
    out = dict(image_gflops=flops["image"] / 1e9, gflops_per_post=per_post / 1e9, peak_tflops=peak_tflops)
    for kind in ("engine", "forward"):
        achieved = result[kind]["posts_per_s"] * per_post / 1e12
        out[f"{kind}_tflops"] = achieved
        out[f"{kind}_of_peak"] = achieved / peak_tflops if peak_tflops else None
    return out


def main(args: argparse.Namespace) -> dict:
    from pipeline.extract.encoders import load_encoder, token_ids
    from pipeline.extract.reader import Prepare
    from pipeline.extract.textprep import TextCleaner, load_stopwords

    from pipeline.extract import encoders

    if args.cpu_text_tokens is not None:  # the engine's padded-positions budget per CPU text batch (0: none)
        encoders.CPU_TEXT_TOKENS = args.cpu_text_tokens or None
    device = torch.device(args.device)
    encoder = load_encoder(args.model, random_weights=True, device=args.device, precision=args.precision)
    cleaner = TextCleaner(load_stopwords())
    prepare = Prepare(clean=cleaner, tokenize=functools.partial(token_ids, context_length=52),
                      transform=encoder.transform(), max_pixels=10**9, empty_text="skip")
    sync = sync_fn(device)
    res: dict = dict(command=args.command, machine=describe(device), load_before=os.getloadavg(),
                     model=args.model, arch=encoder.weights.arch, precision=encoder.precision,
                     batch_size=args.batch_size, workers=_workers(args, device), engine_threads=args.engine_threads,
                     threads=torch.get_num_threads(), cpu_text_tokens=encoders.CPU_TEXT_TOKENS)
    if device.type == "cpu":
        res["cpu_fp32_matmul_gflops"] = matmul_peak(device)["gflops_best"]
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for name, posts in (("text", weibo_texts(folder / "text", args.text_rows)),
                            ("posts", weibo_posts(folder / "posts", args.scale))):
            if name in args.skip:
                continue
            recipe = reference_texts if name == "text" else reference_posts
            reference = functools.partial(recipe, encoder, cleaner, posts, args.batch_size)
            engine_run = engine(encoder, prepare, posts, args, folder)
            with Recorder(encoder) as calls:
                engine_run()  # also the engine's warm-up
            res[name] = bench(posts, reference, engine_run, calls.forward(), args, sync)
            tokens = [t for batch, _ in calls.texts for t in batch]
            images = sum(len(p) for p in calls.images)
            res[name]["flops"] = flop_rate(args.model, tokens, images, res[name], _peak(args, device, res))
            res[name]["encoded"] = dict(texts=len(tokens), images=images, text_tokens=calls.text_tokens())
    res["load_after"] = os.getloadavg()
    return res


def _workers(args, device: torch.device) -> int:
    from pipeline.extract.config import default_workers

    return default_workers(device) if args.workers is None else args.workers


def _peak(args, device: torch.device, res: dict) -> float | None:
    """TFLOP/s the figures are set against: --peak-tflops; the GPU's data-sheet peak; on the CPU the fp32
    matmul rate measured in this run."""
    if args.peak_tflops:
        return args.peak_tflops
    if device.type != "cuda":
        return res["cpu_fp32_matmul_gflops"] / 1e3
    name = torch.cuda.get_device_name(device)
    return next((v for k, v in GPU_PEAK_TFLOPS.items() if k in name), None)


def show(res: dict) -> None:
    m = res["machine"]
    print(f"{res['arch']} ({res['model']}, random weights), {res['precision']} on {m.get('gpu', m['cpu'])}, "
          f"{m['cores']} cores, batch {res['batch_size']}, engine workers {res['workers']}; "
          f"load {res['load_before'][0]:.2f} -> {res['load_after'][0]:.2f}")
    for name in ("text", "posts"):
        if name not in res:
            continue
        r, f = res[name], res[name]["flops"]
        rates = ", ".join(f"{k} {r[k]['posts_per_s']:.1f} posts/s" + (f" ({r[k]['threads']} threads)" if k != "engine" else "")
                          for k in ("reference", "engine", "forward"))
        peak = (f" = {f['engine_of_peak']:.1%} of the {f['peak_tflops']:.3g} TFLOP/s peak (forward "
                f"{f['forward_of_peak']:.1%})" if f["engine_of_peak"] else "")
        print(f"{name} ({r['posts']} posts): {rates}; engine = {r['engine_vs_reference']:.2f} x reference, "
              f"{r['engine_vs_forward']:.1%} of forward; {f['gflops_per_post']:.2f} GFLOP/post -> engine "
              f"{f['engine_tflops'] * 1e3:.1f} GFLOP/s{peak}")


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="RN50", help="cn_clip model (random weights): RN50, ViT-B-16, ..., ViT-H-14")
    p.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N")
    p.add_argument("--precision", default="auto", help="auto (fp16 on CUDA, fp32 on CPU), fp32, fp16, bf16")
    p.add_argument("--batch-size", type=int, default=64, help="posts per encoder batch, for all three")
    p.add_argument("--workers", type=int, default=None, help="the engine's decoding processes (default: its own choice)")
    p.add_argument("--engine-threads", type=int, default=0, help="the engine's encoder threads (0: its own choice)")
    p.add_argument("--threads", type=int, nargs="+", default=None,
                   help="intra-op thread counts tried for the reference and the forward, the best one counts "
                        "(default on CPU: 1 and all cores; on CUDA: torch's default)")
    p.add_argument("--cpu-text-tokens", type=int, default=None,
                   help="override the engine's padded positions per CPU text batch (0: batches by --batch-size only)")
    p.add_argument("--text-rows", type=int, default=None, help="only the first N weibo_text posts (default: all)")
    p.add_argument("--scale", type=int, default=1, help="copies of each weibo_multimodal post, each its own image")
    p.add_argument("--skip", nargs="*", default=[], choices=["text", "posts"], help="benchmarks to leave out")
    p.add_argument("--repeats", type=int, default=3, help="timed runs of each measurement (median)")
    p.add_argument("--tries", type=int, default=2, help="retakes of a run while other processes load the CPUs")
    p.add_argument("--max-foreign", type=float, default=0.1, help="share of the CPUs others may use during a run")
    p.add_argument("--peak-tflops", type=float, default=None, help="the GPU's dense fp16/bf16 peak (default: by name)")
    p.add_argument("--out", default=None, help="JSON of all figures (default benchmarks/results/extract-<model>-<device>.json)")
    args = p.parse_args(argv)
    args.command = "python -m benchmarks.bench_extract " + " ".join(argv if argv is not None else sys.argv[1:])
    cpu = args.device == "cpu"
    args.threads = args.threads or sorted({1, torch.get_num_threads()} if cpu else {torch.get_num_threads()})
    args.out = args.out or f"benchmarks/results/extract-{args.model}-{args.device.split(':')[0]}.json"
    return args


if __name__ == "__main__":
    arguments = parse()
    results = main(arguments)
    show(results)
    Path(arguments.out).parent.mkdir(parents=True, exist_ok=True)
    Path(arguments.out).write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n")
    print(f"-> {arguments.out}")
