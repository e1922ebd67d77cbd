"""The machine a benchmark ran on, and the limits of its hardware measured in the same process."""
from __future__ import annotations

import os
import platform
import resource
import time
from dataclasses import dataclass
from typing import Callable

import torch

CLOCK_HZ = os.sysconf("SC_CLK_TCK")


def describe(device: torch.device) -> dict:
    """CPU model, cores, RAM, torch build, threads (and the GPU when measuring on one)."""
    model = next((line.split(":", 1)[1].strip() for line in _lines("/proc/cpuinfo") if line.startswith("model name")),
                 platform.processor())
    mem_kb = next((int(line.split()[1]) for line in _lines("/proc/meminfo") if line.startswith("MemTotal")), 0)
    info = dict(cpu=model, cores=os.cpu_count(), ram_gib=round(mem_kb / 2**20, 1), torch=torch.__version__,
                threads=torch.get_num_threads(), python=platform.python_version(), device=str(device))
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
    return info


def _lines(path: str) -> list[str]:
    try:
        with open(path) as f:
            return f.read().splitlines()
    except OSError:
        return []


def rss_mib() -> float:
    """Resident memory of this process now."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def peak_rss_mib() -> float:
    """High-water resident memory of this process (VmHWM; ru_maxrss would keep a forking parent's peak across exec)."""
    for line in _lines("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _busy_cpu_s() -> float:
    """CPU seconds the whole machine has spent busy since boot (/proc/stat)."""
    fields = [int(x) for x in _lines("/proc/stat")[0].split()[1:9]]
    return (sum(fields) - fields[3] - fields[4]) / CLOCK_HZ  # minus idle and iowait


def _own_cpu_s() -> float:
    """CPU seconds of this process and of its children that have ended (e.g. decoding workers)."""
    usage = map(resource.getrusage, (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN))
    return sum(r.ru_utime + r.ru_stime for r in usage)


def wait_for_quiet(max_wait_s: float, busy_below: float = 0.1, poll_s: float = 1.0) -> float:
    """Wait (up to `max_wait_s`) for a poll interval in which the CPUs were mostly idle; returns seconds waited.

    Called before a timing by a process that is itself idle at that moment, so any load seen is foreign."""
    start = time.perf_counter()
    while time.perf_counter() - start < max_wait_s:
        busy = _busy_cpu_s()
        time.sleep(poll_s)
        if (_busy_cpu_s() - busy) / (poll_s * (os.cpu_count() or 1)) < busy_below:
            break
    return time.perf_counter() - start


@dataclass
class Window:
    """A timed region that also records how busy *other* processes kept the CPUs meanwhile.

    The benchmark machine may be shared; `foreign` (0..1, share of all cores used by other processes)
    says whether a figure was taken on a quiet machine, and lets the runner retry one that was not."""

    sync: Callable[[], None] = lambda: None
    wait_s: float = 0.0  # first wait this long at most for the other processes to go quiet
    seconds: float = 0.0
    foreign: float = 0.0

    def __enter__(self) -> "Window":
        self.waited = wait_for_quiet(self.wait_s) if self.wait_s else 0.0
        self.sync()
        self._t, self._busy, self._own = time.perf_counter(), _busy_cpu_s(), _own_cpu_s()
        return self

    def __exit__(self, *exc) -> None:
        self.sync()
        self.seconds = time.perf_counter() - self._t
        others = (_busy_cpu_s() - self._busy) - (_own_cpu_s() - self._own)
        self.foreign = max(0.0, others) / (self.seconds * (os.cpu_count() or 1))


def best_of(fn: Callable[[], None], repeats: int, sync: Callable[[], None] = lambda: None) -> tuple[float, float]:
    """(fastest, median) seconds of `repeats` calls, after one warm-up call."""
    fn()
    times = []
    for _ in range(repeats):
        sync()
        start = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - start)
    times.sort()
    return times[0], times[len(times) // 2]


def matmul_peak(device: torch.device, n: int = 2048, repeats: int = 10) -> dict:
    """fp32 GFLOP/s of an n×n by n×n matmul: the compute roof the head's FLOPs are set against."""
    a, b = torch.randn(n, n, device=device), torch.randn(n, n, device=device)
    out = torch.empty(n, n, device=device)
    best, median = best_of(lambda: torch.mm(a, b, out=out), repeats, sync_fn(device))
    flop = 2 * n**3
    return dict(n=n, gflops_best=flop / best / 1e9, gflops_median=flop / median / 1e9)


def small_gemm_rate(device: torch.device, batch: int, dim: int, repeats: int = 50) -> dict:
    """fp32 GFLOP/s of the head's own matmul shape, [batch, D] x [D, D] + bias, weights hot in cache:
    with 20 rows MKL reaches well under the square-matmul peak, whatever the memory does."""
    x, w = torch.randn(batch, dim, device=device), torch.randn(dim, dim, device=device)
    b = torch.randn(dim, device=device)
    out = torch.empty(batch, dim, device=device)
    best, median = best_of(lambda: torch.addmm(b, x, w.t(), out=out), repeats, sync_fn(device))
    flop = 2 * batch * dim * dim
    return dict(shape=[batch, dim, dim], gflops_best=flop / best / 1e9, gflops_median=flop / median / 1e9)


def exp_rate(device: torch.device, n: int = 2**24, repeats: int = 10) -> dict:
    """Exponentials per second (fp32, in cache-sized blocks): what bounds X_inter's softmax on a CPU."""
    block = torch.randn(2**20, device=device)  # 4 MiB, cache-resident like one sample's P^e rows
    out = torch.empty_like(block)
    best, median = best_of(lambda: [torch.exp(block, out=out) for _ in range(n // block.numel())], repeats,
                           sync_fn(device))
    return dict(n=n, gexp_best=n / best / 1e9, gexp_median=n / median / 1e9)


def memory_bandwidth(device: torch.device, n: int, repeats: int = 10) -> dict:
    """GB/s (bytes read + written) of streaming kernels over arrays of `n` fp32 values each.

    copy: one array in, one out. addcmul: a += b * c, three in, one out, a step closer to Adam's
    four in, three out. adam: the fused Adam kernel itself on one flat parameter of n values
    (28 bytes per value): the least time any optimizer step over n parameters takes here."""
    a, b, c = (torch.randn(n, device=device) for _ in range(3))
    sync = sync_fn(device)
    copy = best_of(lambda: a.copy_(b), repeats, sync)
    addcmul = best_of(lambda: a.addcmul_(b, c, value=1e-9), repeats, sync)
    param = torch.nn.Parameter(a)
    param.grad = b
    opt = torch.optim.Adam([param], lr=1e-5, fused=True)
    adam = best_of(opt.step, repeats, sync)
    figures = {}
    for name, (best, median), moved in (("copy", copy, 8 * n), ("addcmul", addcmul, 16 * n), ("adam", adam, 28 * n)):
        figures[name] = dict(gbs_best=moved / best / 1e9, gbs_median=moved / median / 1e9, ms_best=1e3 * best)
    return dict(values=n, **figures, gbs_best=max(f["gbs_best"] for f in figures.values()))


def sync_fn(device: torch.device) -> Callable[[], None]:
    """Wait for the device's queued work (a no-op on CPU, where ops return when done)."""
    return (lambda: torch.cuda.synchronize(device)) if device.type == "cuda" else (lambda: None)
