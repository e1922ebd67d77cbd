"""One fit measurement in a fresh process, so that its peak memory is its own: prints one JSON line.

    python -m benchmarks.fit_worker '{"kind": "train", "impl": "ours", "cache": "...", "batch": 20, ...}'

Kinds: hardware (matmul, memory and exp roofs); train (ours, "ours-default-adam" = fit as it was before
the fused optimizer, or the reference: samples/s, time per phase, peak memory); xinter (X_inter = P^e X
alone, fused or materialised: peak memory); schedule (`pipeline.fit.fit` itself for some epochs).
bench_fit.py runs these and writes the report.
"""
from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from benchmarks.machine import (Window, describe, exp_rate, matmul_peak, memory_bandwidth, peak_rss_mib, rss_mib,
                                small_gemm_rate, sync_fn, wait_for_quiet)
from benchmarks.reference_fit import ReferenceHead, reference_loader, reference_optimizer
from pipeline.fit.loop import Batches, adam, train_epoch
from pipeline.head import HeadConfig, SGMFTHead
from pipeline.head.polymerizer import interpolate, interpolate_reference
from sgmft_cache import load_split

LR, BETAS = 1e-5, (0.9, 0.99)  # paper §4.3


def hardware(spec: dict) -> dict:
    device = torch.device(spec["device"])
    with Window(wait_s=spec.get("quiet_wait", 0)) as w:
        roofs = dict(matmul=matmul_peak(device, spec.get("matmul_n", 2048)),
                     small_gemm=small_gemm_rate(device, spec["batch"], spec["dim"]),
                     exp=exp_rate(device), memory=memory_bandwidth(device, spec["stream_values"]))
    return dict(machine=describe(device), **roofs, foreign_load=w.foreign)


def _prime() -> None:
    """Run every kind of op once at a tiny size, so that the libraries' one-off buffers and code pages
    (a few hundred MiB of RSS on first use) are in the baseline, not counted as a measurement's growth."""
    tiny = SGMFTHead(HeadConfig(embed_dim=16, heads=4, ffn_hidden=16, classifier_hidden=(8,)))
    opts = adam(tiny.parameters(), LR, BETAS), reference_optimizer(tiny, LR, BETAS)
    for model, opt in zip((tiny, ReferenceHead(tiny)), opts):
        train_step(model, opt, torch.randn(2, 16), torch.randn(2, 16), torch.tensor([0, 1]))


def _head(dim: int, device: torch.device) -> SGMFTHead:
    torch.manual_seed(0)  # both implementations start from the same weights
    return SGMFTHead(HeadConfig(embed_dim=dim)).to(device)


def train(spec: dict) -> dict:
    """Throughput over `steps` steps (after `warmup`), then `breakdown` more steps timed phase by phase."""
    device, b = torch.device(spec["device"]), spec["batch"]
    split = load_split(spec["cache"], "train")
    dim = split.text.shape[1]
    start_rss, start_cuda = rss_mib(), _cuda_start(device)
    if spec["impl"] in ("ours", "ours-default-adam"):
        model, data = _head(dim, device), Batches.of(split, device)
        opt = (adam(model.parameters(), LR, BETAS) if spec["impl"] == "ours"
               else torch.optim.Adam(model.parameters(), lr=LR, betas=BETAS))  # fit before the fused optimizer
        throughput, phases = _ours(model, opt, data, b, spec, device)
    else:
        del split  # the reference reads rows from the file as it goes
        model = ReferenceHead(_head(dim, device))
        opt = reference_optimizer(model, LR, BETAS)
        loader = reference_loader(spec["cache"], b)
        throughput, phases = _reference(model, opt, loader, spec, device)
    return dict(impl=spec["impl"], batch=b, dim=dim, **throughput, breakdown_ms=phases,
                **_memory(start_rss, device, start_cuda))


def _cuda_start(device: torch.device) -> float:
    """Allocated CUDA memory now, with the peak counter restarted from here (0 off CUDA)."""
    if device.type != "cuda":
        return 0.0
    torch.cuda.synchronize(device)
    torch.cuda.reset_peak_memory_stats(device)
    return torch.cuda.memory_allocated(device) / 2**20


def _memory(start_rss: float, device: torch.device, start_cuda: float) -> dict:
    """Peak resident memory and its growth since `start_rss`; on CUDA also the device's own peak growth."""
    out = dict(setup_rss_mib=start_rss, peak_rss_mib=peak_rss_mib(), growth_mib=max(0.0, peak_rss_mib() - start_rss))
    if device.type == "cuda":
        out["cuda_growth_mib"] = torch.cuda.max_memory_allocated(device) / 2**20 - start_cuda
    return out


def _ours(head, opt, data: Batches, b: int, spec: dict, device: torch.device) -> tuple[dict, dict]:
    gen = torch.Generator().manual_seed(0)
    n = min(len(data), spec["steps"] * b)
    timed = Batches(data.text[:n], data.image[:n], data.label[:n])
    warm = Batches(data.text[: spec["warmup"] * b], data.image[: spec["warmup"] * b], data.label[: spec["warmup"] * b])
    train_epoch(head, opt, warm, b, gen)
    with Window(sync_fn(device), spec.get("quiet_wait", 0)) as w:
        train_epoch(head, opt, timed, b, gen)  # the production loop, one epoch of `timed`
    throughput = dict(samples=n, seconds=w.seconds, samples_per_s=n / w.seconds, foreign_load=w.foreign)

    def batches():
        order = torch.randperm(len(data), generator=gen).to(device)
        for start in range(0, spec["breakdown"] * b, b):
            idx = order[start : start + b]
            yield data.text[idx], data.image[idx], data.label[idx]  # the gather train_epoch does

    wait_for_quiet(spec.get("quiet_wait", 0))
    return throughput, _phases(head, opt, batches(), device)


def _reference(model, opt, loader, spec: dict, device: torch.device) -> tuple[dict, dict]:
    batches = iter(loader)
    to_dev = lambda batch: tuple(x.to(device) for x in batch)  # noqa: E731
    model.train()
    for _, batch in zip(range(spec["warmup"]), batches):
        train_step(model, opt, *to_dev(batch))
    n = 0
    with Window(sync_fn(device), spec.get("quiet_wait", 0)) as w:
        for _, batch in zip(range(spec["steps"]), batches):
            t, v, y = to_dev(batch)
            train_step(model, opt, t, v, y)
            n += len(y)
    throughput = dict(samples=n, seconds=w.seconds, samples_per_s=n / w.seconds, foreign_load=w.foreign)
    rows = (to_dev(batch) for _, batch in zip(range(spec["breakdown"]), iter(loader)))
    wait_for_quiet(spec.get("quiet_wait", 0))
    return throughput, _phases(model, opt, rows, device)


def train_step(model, opt, t, v, y) -> None:
    """One training step: cross-entropy (18-19), backward, optimizer."""
    loss = F.cross_entropy(model(t, v), y)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()


def _phases(model, opt, batches, device: torch.device) -> dict:
    """Mean milliseconds per step of: fetching the batch, forward + loss, backward, optimizer step."""
    sync, totals, steps = sync_fn(device), dict(gather=0.0, forward=0.0, backward=0.0, optimizer=0.0), 0
    model.train()
    clock = lambda: (sync(), time.perf_counter())[1]  # noqa: E731
    while True:
        t0 = clock()
        batch = next(batches, None)
        if batch is None:
            break
        t1 = clock()
        loss = F.cross_entropy(model(batch[0], batch[1]), batch[2])
        t2 = clock()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        t3 = clock()
        opt.step()
        t4 = clock()
        for k, dt in zip(totals, (t1 - t0, t2 - t1, t3 - t2, t4 - t3)):
            totals[k] += dt
        steps += 1
    return {k: 1000 * v / max(steps, 1) for k, v in totals.items()}


def xinter(spec: dict) -> dict:
    """Peak memory of X_inter = P^e X_image^C forward + backward alone, at batch B (eq. 14)."""
    device, b, d = torch.device(spec["device"]), spec["batch"], spec["dim"]
    fn = interpolate if spec["impl"] == "fused" else interpolate_reference
    t, v, x = (F.normalize(torch.randn(b, d, device=device), dim=-1).requires_grad_() for _ in range(3))
    start_rss, start_cuda = rss_mib(), _cuda_start(device)
    with Window(sync_fn(device), spec.get("quiet_wait", 0)) as w:
        fn(t, v, x).square().sum().backward()
    return dict(impl=spec["impl"], batch=b, dim=d, seconds=w.seconds, **_memory(start_rss, device, start_cuda))


def schedule(spec: dict) -> dict:
    """Wall time of `sgmft fit` itself (load, epochs with validation, test, checkpoint) for `epochs` epochs."""
    from pipeline.fit import FitConfig, fit

    with tempfile.TemporaryDirectory() as tmp:
        cfg = FitConfig(cache=spec["cache"], epochs=spec["epochs"], device=spec["device"], out=tmp, quiet=True)
        with Window(sync_fn(torch.device(spec["device"])), spec.get("quiet_wait", 0)) as w:
            result = fit(cfg)
        epochs = (Path(result.run_dir) / "epochs.csv").read_text().splitlines()[1:]
        seconds = [float(row.split(",")[-1]) for row in epochs]
    return dict(epochs=spec["epochs"], seconds=w.seconds, epoch_seconds=seconds, foreign_load=w.foreign,
                train_size=result.metrics["train_size"], peak_rss_mib=peak_rss_mib())


KINDS = dict(hardware=hardware, train=train, xinter=xinter, schedule=schedule)

if __name__ == "__main__":
    spec = json.loads(sys.argv[1])
    if "threads" in spec:
        torch.set_num_threads(spec["threads"])
    if spec["device"] == "cpu":
        _prime()
    print(json.dumps(KINDS[spec["kind"]](spec)))
