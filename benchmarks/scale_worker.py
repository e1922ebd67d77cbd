"""One measurement of the scale benchmark in a fresh process: prints one JSON line (seconds, peak RSS growth).

    python -m benchmarks.scale_worker '{"kind": "commit", "impl": "ours", "dir": "...", "n": 1000, ...}'

Kinds: `shards` (two torchrun-style shard caches, not timed), `commit`, `merge`, `load`, `gather`,
`prepare` (fit's load and train/val carve-out, ours), `epoch` (one pass in memory) and `epoch_streamed` (ours: pipeline/fit/stream.py); impl `ours` (sgmft_cache and pipeline.fit today) or
`reference` (benchmarks/reference_cache.py, the code before issue 13). Peak RSS growth is the
process's high-water mark (VmHWM: ru_maxrss would keep the forking parent's peak) minus its resident memory just before the measured step.
"""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import torch

from benchmarks import reference_cache as ref
from benchmarks.machine import peak_rss_mib as peak_mib, rss_mib
from pipeline.synthetic import CLASSES

SPLIT, FINGERPRINT = "train", "scale-bench"
PERIOD = 1031  # distinct base vectors of the synthetic features


def row_ids(n: int) -> list[str]:
    return [f"p{k:08d}" for k in range(n)]


def block_rows(start: int, stop: int, dim: int, dtype: str, seed: int, step: int = 1) -> dict:
    """Rows start, start+step, ... < stop: ids, features that are a function of the row number alone (so a
    shard's rows equal the same rows of the whole), labels k mod 7, a short cleaned text."""
    ks = np.arange(start, stop, step)
    base = np.random.default_rng(seed).standard_normal((PERIOD, dim), dtype=np.float32)
    shift = ((ks % 1000) / 1000.0).astype(np.float32)[:, None]
    return dict(id=np.array([f"p{k:08d}" for k in ks], dtype=object), text=(base[ks % PERIOD] + shift).astype(dtype),
                image=(base[(7 * ks + 3) % PERIOD] - shift).astype(dtype), label=(ks % len(CLASSES)).astype(np.int64),
                text_clean=np.array([f"cleaned text of post {k}" for k in ks], dtype=object))


def blocks(spec: dict, rank: int = 0, world: int = 1):
    """The rows of rank `rank` of `world` (k ≡ rank mod world, as torchrun shards them), one chunk at a time."""
    step = spec["chunk"] * world
    for start in range(rank, spec["n"], step):
        yield block_rows(start, min(start + step, spec["n"]), spec["dim"], spec["dtype"], spec["seed"], world)


def ref_meta(spec: dict) -> dict:
    return dict(embed_dim=spec["dim"], labels=CLASSES, fingerprint=FINGERPRINT)


def our_meta(spec: dict):
    from sgmft_cache import CacheMeta

    return CacheMeta(model="synthetic", embed_dim=spec["dim"], labels=CLASSES, fingerprint=FINGERPRINT)


def write_plain(path: Path, spec: dict, rank: int, world: int) -> None:
    """A version-1 cache written block by block into resizable datasets (the shard inputs of both merges)."""
    with h5py.File(path, "w") as f:
        ref.write_meta(f, **ref_meta(spec))
        g = f.create_group(SPLIT)
        for rows in blocks(spec, rank, world):
            for name, values in rows.items():
                if name not in g:
                    shape = (0,) + values.shape[1:]
                    g.create_dataset(name, shape=shape, maxshape=(None,) + values.shape[1:], chunks=True,
                                     dtype=ref.STR if values.dtype == object else values.dtype)
                ds = g[name]
                ds.resize(ds.shape[0] + len(values), axis=0)
                ds[-len(values):] = values


def stage(spec: dict, cache: Path) -> None:
    """Every row staged as chunks by the implementation's own writer (not timed)."""
    if spec["impl"] == "reference":
        for k, rows in enumerate(blocks(spec), 1):
            ref.stage_chunk(cache, SPLIT, k, rows, ref_meta(spec))
        return
    from sgmft_cache import CacheWriter

    writer = CacheWriter(cache, SPLIT, our_meta(spec), chunk_rows=spec["chunk"], dtype=spec["dtype"])
    for rows in blocks(spec):
        writer.add(rows["id"], rows["text"], rows["image"], rows["label"], rows["text_clean"])
    writer.flush()
    return writer


def load(spec: dict, cache: Path):
    """(ids, text, image, label) of the split as each implementation holds them for fit."""
    if spec["impl"] == "reference":
        data = ref.load(cache, SPLIT)
        return data["ids"], data["text"], data["image"], data["label"]
    from sgmft_cache import load_cache

    data = load_cache(cache, required=[SPLIT], keep_dtype=True)[1][SPLIT]  # as fit holds them
    return data.ids, data.text, data.image, data.label


class LinearHead(torch.nn.Module):
    """A linear classifier on [t; v]: the cheapest step, so that an epoch's time is mostly its data path."""

    def __init__(self, dim: int):
        super().__init__()
        self.fc = torch.nn.Linear(2 * dim, len(CLASSES))

    def forward(self, t: torch.Tensor, v: torch.Tensor, **masks) -> torch.Tensor:
        return self.fc(torch.cat([t.float(), v.float()], dim=1))


def measure(spec: dict) -> dict:
    d, kind, impl = Path(spec["dir"]), spec["kind"], spec["impl"]
    cache, merged = d / f"{impl}.h5", d / f"{impl}-merged.h5"
    shards = [d / f"shard-{r}.h5" for r in range(2)]
    out: dict = {}
    if kind == "shards":
        for r, path in enumerate(shards):
            write_plain(path, spec, r, 2)
        return out
    if kind == "commit":
        writer = stage(spec, cache)
        base, start = rss_mib(), time.perf_counter()
        ref.commit(cache, SPLIT, ref_meta(spec), row_ids(spec["n"])) if impl == "reference" else writer.commit(order=row_ids(spec["n"]))
    elif kind == "merge":
        order = {SPLIT: row_ids(spec["n"])}
        base, start = rss_mib(), time.perf_counter()
        if impl == "reference":
            ref.merge(shards, merged, ref_meta(spec), order)
        else:
            from sgmft_cache import merge_caches

            merge_caches(shards, merged, order=order)
    elif kind == "load":
        base, start = rss_mib(), time.perf_counter()
        ids, text, image, label = load(spec, cache)
        out["resident_feature_mib"] = (text.nelement() * text.element_size() + image.nelement() * image.element_size()) / 2**20
    elif kind == "prepare":
        return {**out, **fit_data(spec, cache)}
    else:
        return {**out, **timed_training(spec, cache)}
    out.update(seconds=time.perf_counter() - start, growth_mib=peak_mib() - base, baseline_mib=base)
    if kind in ("commit", "merge"):
        out["file_mib"] = (cache if kind == "commit" else merged).stat().st_size / 2**20
    return out


def fit_data(spec: dict, cache: Path) -> dict:
    """fit's in-memory data path (ours): load the split, carve train and a stratified validation set from it
    (pipeline/fit/data.prepare), let the loaded split go; resident feature bytes after, and the peak."""
    from pipeline.fit.data import CachedSplits, prepare
    from sgmft_cache import load_cache

    base, start = rss_mib(), time.perf_counter()
    meta, loaded = load_cache(cache, required=[SPLIT], keep_dtype=True)
    train = loaded.pop(SPLIT)
    test = train.subset(np.arange(0, len(train), 100))  # a small test split: prepare needs one
    data = prepare(CachedSplits(str(cache), meta, train, None, test), 0.2, 0)
    del train, loaded
    seconds = time.perf_counter() - start
    held = {id(t): t for split in (data.train, data.val, data.test) for t in (split.text, split.image, split.images)}
    resident = sum(t.nelement() * t.element_size() for t in held.values()) / 2**20
    return dict(seconds=seconds, growth_mib=peak_mib() - base, baseline_mib=base, resident_feature_mib=resident,
                resident_mib=rss_mib() - base)


def timed_training(spec: dict, cache: Path) -> dict:
    """gather: rows/s of fit's random batches (converted to float32); epoch: one pass of a linear head."""
    from pipeline.fit.loop import Batches, adam, train_epoch

    torch.manual_seed(0)
    generator = torch.Generator().manual_seed(0)
    base = rss_mib()
    head = LinearHead(spec["dim"])
    opt = adam(head.parameters(), 1e-3, (0.9, 0.99))
    if spec["kind"] == "epoch_streamed":
        from pipeline.fit.stream import StreamedSplit, streamed_epoch

        split = StreamedSplit.open(str(cache), SPLIT, int(spec["max_memory_mib"] * 2**20))
        run = lambda data: train_epoch(head, opt, Batches(data.text, data.image, data.label), spec["batch"],  # noqa: E731
                                       generator)
        start = time.perf_counter()
        streamed_epoch(split, run, generator)
        return dict(seconds=time.perf_counter() - start, growth_mib=peak_mib() - base, baseline_mib=base,
                    group_rows=split.group_rows)
    ids, text, image, label = load(spec, cache)
    if spec["kind"] == "gather":
        batches, start = spec["gather_batches"], time.perf_counter()
        for _ in range(batches):
            idx = torch.randint(len(ids), (spec["batch"],), generator=generator)
            text[idx].float(), image[idx].float(), label[idx]
        seconds = time.perf_counter() - start
        return dict(seconds=seconds, rows_per_s=batches * spec["batch"] / seconds)
    start = time.perf_counter()
    train_epoch(head, opt, Batches(text, image, label), spec["batch"], generator)
    return dict(seconds=time.perf_counter() - start, growth_mib=peak_mib() - base, baseline_mib=base)


if __name__ == "__main__":
    torch.set_num_threads(1)
    print(json.dumps(measure(json.loads(sys.argv[1]))))
