"""`sgmft extract`: a manifest of posts -> the feature cache (SPEC §1-§3), resumable, every row accounted for.

Everything that can be wrong with the request (manifest, stop-word files, model name, missing
weights, a cache made differently) is found before the model is loaded; rows already in the
cache are skipped, so a second run — after a crash, even SIGKILL — finishes the first one's work.
Under torchrun each rank encodes its share into its own shard cache, and rank 0 folds the shards
into the cache once every rank is done (distributed.py, shards.py).
"""
from __future__ import annotations

import contextlib
import functools
import importlib.metadata
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from sgmft_cache import (SPLITS, CacheError, CacheMeta, CacheWriter, Provenance, SgmftError, cache_lock,
                         check_disjoint, load_skipped, validate)
from pipeline.extract import shards
from pipeline.extract.config import ExtractConfig
from pipeline.extract.distributed import Group, Ranks
from pipeline.extract.engine import EngineSettings, extract_rows, select_rows
from pipeline.extract.fingerprint import fingerprint, preprocessing_settings
from pipeline.extract.manifest import Manifest, read_manifest
from pipeline.extract.memo import Memos
from pipeline.extract.reader import Prepare
from pipeline.extract.summary import ExtractSummary, SplitSummary
from pipeline.extract.textprep import TextCleaner, load_stopwords

if TYPE_CHECKING:
    from pipeline.extract.encoders import Encoder, Weights


def extract(cfg: ExtractConfig) -> ExtractSummary:
    """Encode the requested split(s) of the manifest into the cache; return what happened."""
    manifest = read_manifest(cfg.manifest, test_fraction=cfg.test_fraction, seed=cfg.seed, max_images=cfg.max_images)
    splits = requested_splits(manifest, cfg.split)
    ranks = Ranks.from_env()
    device = ranks.device(cfg.device)
    plan = plan_extraction(cfg, manifest, device)
    meta = plan.meta
    order = {split: [p.id for p in manifest.split(split)] for split in manifest.splits()}
    with Group(ranks, cfg.dist_timeout) as group, contextlib.ExitStack() as held:
        folded = group.together(lambda: prepare_cache(cfg, meta, splits, ranks, order, held), "checking the cache")
        already = group.together(lambda: {split: shards.done_ids(cfg.cache, split) for split in splits}
                                 if ranks.sharded else {}, "reading the shards")
        encoder = group.together(lambda: plan.load_encoder(device), "loading the encoders")
        target = replace(cfg, cache=str(shards.shard_path(cfg.cache, ranks.rank, ranks.world_size)),
                         quiet=cfg.quiet or ranks.rank > 0) if ranks.sharded else cfg
        job = Job.start(target, manifest, plan, encoder)
        results = group.together(lambda: [
            extract_split(job, split, Shard(ranks.rank, ranks.world_size, frozenset(already.get(split, ()))))
            for split in splits], "extracting")
        if ranks.sharded:
            folded = group.together(lambda: merge_shards(cfg, manifest, splits, meta, ranks, order), "merging the shards")
    return ExtractSummary(cache=Path(cfg.cache), model=cfg.model, fingerprint=meta.fingerprint,
                          precision=plan.precision, device=str(encoder.device), note=plan.weights.note, splits=results,
                          shard=f"{ranks}, shard {target.cache}" if ranks.sharded else None, folded=len(folded))


@dataclass(frozen=True)
class Plan:
    """How an extraction makes its features, resolved before any model loads (also what `sgmft predict` redoes)."""

    cleaner: TextCleaner  # raw text -> T_user
    weights: "Weights"  # resolved, not loaded
    precision: str  # fp32 / fp16 / bf16, resolved for the device
    meta: CacheMeta  # the cache's root attributes, fingerprint included

    def load_encoder(self, device: str) -> "Encoder":
        """The encoders with these weights at this precision (cn_clip is imported only now)."""
        from pipeline.extract import encoders

        return encoders.build_encoder(self.weights, device, self.precision)


def plan_extraction(cfg: ExtractConfig, manifest: Manifest, device: str | None = None) -> Plan:
    """Stop words, weights, precision and cache attributes of `cfg`; finds every problem before a model loads."""
    from pipeline.extract import encoders  # cn_clip is imported only once extraction really runs

    cleaner = TextCleaner(load_stopwords(cfg.stopwords, cfg.extra_stopwords))
    weights = encoders.resolve_weights(cfg.model, cfg.checkpoint, cfg.download_root, cfg.random_weights, cfg.weights_seed)
    precision = encoders.resolve_precision(cfg.precision, encoders.resolve_device(device or cfg.device))
    settings = preprocessing_settings(cleaner.settings(), cfg.context_length, weights.resolution, cfg.max_images)
    return Plan(cleaner, weights, precision, cache_meta(cfg, manifest, weights, settings, precision))


def make_prepare(cfg: ExtractConfig, plan: Plan, encoder: "Encoder") -> Prepare:
    """The worker side of the engine for `encoder`: clean, tokenize, read and transform one post."""
    from pipeline.extract import encoders

    return Prepare(clean=plan.cleaner, tokenize=functools.partial(encoders.token_ids, context_length=cfg.context_length),
                   transform=encoder.transform(), max_pixels=cfg.max_pixels, empty_text=cfg.empty_text,
                   max_bytes=cfg.max_image_bytes)


def prepare_cache(cfg: ExtractConfig, meta: CacheMeta, splits: list[str], ranks: Ranks, order: dict,
                  held: contextlib.ExitStack) -> list[Path]:
    """Before the model loads: refuse a cache or shards made differently, or posts the cache holds in another
    split, or delete them with --overwrite. One process also folds in rows that an earlier sharded run left in
    shard files (returns those files). Rank 0 takes the cache's lock, held in `held` for the whole extraction."""
    if ranks.rank == 0:
        held.enter_context(cache_lock(cfg.cache))  # refuses a second `sgmft extract` on this cache, naming it
        CacheWriter(cfg.cache, splits[0], meta, overwrite=cfg.overwrite)  # refuses a cache made differently
        if cfg.overwrite:
            shards.remove_shards(cfg.cache)
        shards.check_leftovers(cfg.cache, meta)
        check_split_assignment(cfg.cache, splits, order)
    elif cfg.overwrite:
        shards.remove_shards(cfg.cache, [ranks.rank], ranks.world_size)  # on a disk rank 0 may not see
    return shards.fold(cfg.cache, meta, order) if not ranks.sharded and shards.shard_leftovers(cfg.cache) else []


def check_split_assignment(cache: str, splits: list[str], order: dict[str, list[str]]) -> None:
    """Refuse, before any encoding, to put a post into a split while the cache (or a leftover file) already
    holds it in another one: another --seed, --test-fraction or split column assigned it differently."""
    for split in splits:
        others = {other: shards.done_ids(cache, other) for other in SPLITS if other != split}
        try:
            check_disjoint(split, set(order[split]), others)
        except CacheError as e:
            raise CacheError(f"{cache}: {e}") from None


def merge_shards(cfg: ExtractConfig, manifest: Manifest, splits: list[str], meta: CacheMeta, ranks: Ranks,
                 order: dict) -> list[Path]:
    """Rank 0, once every rank has committed its shard: fold all shards into the cache, check every row."""
    if ranks.rank != 0:
        return []
    missing = shards.missing_shards(cfg.cache, ranks.world_size)
    if missing:
        names = ", ".join(shards.shard_path(cfg.cache, r, ranks.world_size).name for r in missing)
        raise SgmftError(f"{cfg.cache}: the shards of rank(s) {missing} ({names}) are not visible to rank 0: without "
                         "a filesystem shared by all nodes, copy every node's shard files (and their .staging folders) "
                         "beside the cache and run the same `sgmft extract` once without torchrun to merge them")
    folded = shards.fold(cfg.cache, meta, order)
    for split in splits:
        check_accounted(cfg.cache, split, manifest.split(split), shards.done_ids(cfg.cache, split))
    return folded


@dataclass(frozen=True)
class Job:
    """What every split of one extraction shares: settings, posts, cache attributes, the encoders, the worker side."""

    cfg: ExtractConfig
    manifest: Manifest
    meta: CacheMeta
    encoder: "Encoder"
    prepare: Prepare
    memos: Memos  # an image or text shared by two splits is encoded once

    @classmethod
    def start(cls, cfg: ExtractConfig, manifest: Manifest, plan: Plan, encoder: "Encoder") -> "Job":
        return cls(cfg, manifest, plan.meta, encoder, make_prepare(cfg, plan, encoder), Memos.empty(encoder.embed_dim))


@dataclass(frozen=True)
class Shard:
    """This process's share of a split under torchrun (every post, with one process)."""

    rank: int = 0
    world_size: int = 1
    already: frozenset[str] = frozenset()  # ids encoded in other files (other shards), not encoded again

    def of(self, posts: list, done: set[str] = frozenset()) -> list:
        return select_rows(posts, set(done) | self.already, self.rank, self.world_size)


def extract_split(job: Job, split: str, shard: Shard = Shard()) -> SplitSummary:
    """Encode this shard's share of one split into `job.cfg.cache` (rows already there are kept) and commit it."""
    cfg, posts = job.cfg, job.manifest.split(split)
    start = time.perf_counter()
    dtype = "float16" if job.encoder.precision == "fp16" else "float32"  # bf16 outputs are stored losslessly as fp32
    writer = CacheWriter(cfg.cache, split, job.meta, chunk_rows=cfg.chunk_rows, dtype=dtype)
    share = select_rows(posts, set(), shard.rank, shard.world_size)  # all posts, with one process
    todo = shard.of(posts, writer.done_ids())
    labels = {p.id: job.manifest.label_id(p) for p in todo}
    try:
        stats = extract_rows(todo, labels, writer, job.encoder, job.prepare,
                             EngineSettings.of(cfg, job.encoder.device), job.memos)
    except BaseException:
        writer.flush()  # keep every encoded row for the next run
        raise
    commit_start = time.perf_counter()
    committed = writer.commit(order=[p.id for p in posts])
    stats.phases.write += time.perf_counter() - commit_start
    check_accounted(cfg.cache, split, shard.of(posts), writer.done_ids())
    return SplitSummary(split=split, posts=len(share), already=len(share) - len(todo), stats=stats,
                        in_cache=committed.rows, seconds=time.perf_counter() - start)


def requested_splits(manifest: Manifest, split: str) -> list[str]:
    present = manifest.splits()
    if split == "all":
        return present
    if split not in present:
        raise SgmftError(
            f"{manifest.path}: no rows in split '{split}' (present: {', '.join(present)}; from {manifest.split_source}); "
            "add a split column to the manifest to choose rows for val"
        )
    return [split]


def cache_meta(cfg: ExtractConfig, manifest: Manifest, weights: "Weights", settings: dict, precision: str) -> CacheMeta:
    versions = {name: importlib.metadata.version(name) for name in ("cn_clip", "jieba", "pillow")}
    provenance = Provenance(
        encoder_note=weights.note, weights=weights.identity, arch=weights.arch,
        precision=precision if cfg.overwrite else _precisions(cfg.cache, precision), preprocessing=settings,
        extract_config=cfg.to_dict(), split_source=manifest.split_source,
        versions={**versions, "torch": torch.__version__}, placeholder=weights.random)
    fp = fingerprint(weights.model, weights.identity, settings)
    return CacheMeta(model=weights.model, embed_dim=weights.embed_dim, labels=manifest.labels, fingerprint=fp,
                     provenance=provenance)


def _precisions(cache: str, precision: str) -> str:
    """Every precision the cache's rows were made at, e.g. "fp16,fp32" after a CPU run resumed on a GPU."""
    try:
        before = validate(cache).provenance.precisions if Path(cache).exists() else set()
    except CacheError:
        before = set()  # the writer reports what is wrong with the file
    return ",".join(sorted({precision, *before}))


def check_accounted(cache: str, split: str, posts, have: set[str]) -> None:
    """Every manifest row of the split is in the cache or in its skip list — or this is a bug."""
    skipped = load_skipped(cache, split)
    lost = [p.id for p in posts if p.id not in have and p.id not in skipped]
    if lost:
        raise RuntimeError(f"{cache}: /{split} lost {len(lost)} row(s), e.g. {lost[:3]} (a bug in sgmft extract)")
