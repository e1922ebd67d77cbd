"""Stage one for new posts, made exactly as the run's cache was: same encoder, same preprocessing, checked.

The run's saved ExtractConfig is rebuilt (with this machine's paths to weights and stop-word files
where given), its fingerprint recomputed by extract's own code and compared with the run's; only
then are the encoders loaded and the posts extracted through extract's own steps into a cache of
their own — resumable, sharded under torchrun, every row encoded or listed with its reason.
"""
from __future__ import annotations

from dataclasses import fields, replace
from pathlib import Path
from typing import Sequence

from sgmft_cache import (CacheMeta, SgmftError, SplitData, load_dropped_images, load_rows, load_skipped, positions_of,
                         validate)
from pipeline.extract import (ExtractConfig, Group, Manifest, Plan, Ranks, SplitSummary, encode_splits, plan_extraction,
                              read_manifest)
from pipeline.predict.config import PredictConfig
from pipeline.predict.trained import TrainedRun

SPLIT = "test"  # the new posts are one held-out split of their cache (SPEC §3 names train, val, test)
OVERRIDES = ("checkpoint", "download_root", "stopwords", "extra_stopwords")  # where files lie on this machine


def extract_config(run: TrainedRun, cfg: PredictConfig) -> ExtractConfig:
    """The run's extraction settings for the new posts: its model and preprocessing, this machine's paths."""
    saved = run.extraction.provenance.extract_config
    if not saved:
        raise SgmftError(f"{run.path}: its features were not made by `sgmft extract` (encoder {run.encoder}), "
                         "so predict cannot make the same features for new posts")
    known = {f.name for f in fields(ExtractConfig)}
    base = ExtractConfig(**{k: v for k, v in saved.items() if k in known}
                         | ({} if "max_images" in saved else {"max_images": 1}))  # made before --max-images: one
    local = {name: getattr(cfg, name) for name in OVERRIDES if getattr(cfg, name) is not None}
    return replace(base, manifest=cfg.data, cache=str(cfg.cache_path()), split=SPLIT, overwrite=False,
                   device=cfg.device, precision=cfg.precision, batch_size=cfg.batch_size, workers=cfg.workers,
                   quiet=cfg.quiet, **local)


def new_posts(path: str, labels: tuple[str, ...], max_images: int = ExtractConfig.max_images) -> Manifest:
    """Every row of the manifest as one unlabelled split; a label or split column is ignored."""
    manifest = read_manifest(path, max_images=max_images)
    posts = tuple(replace(p, label=None, split=SPLIT) for p in manifest.posts)
    return replace(manifest, posts=posts, labels=labels, split_source=f"all rows of {manifest.path.name} (predict)")


def checked_plan(run: TrainedRun, ecfg: ExtractConfig, manifest: Manifest) -> Plan:
    """extract's plan for these settings, refused unless it makes features like the run's cache."""
    plan = plan_extraction(ecfg, manifest)
    if plan.meta.fingerprint != run.fingerprint:
        raise SgmftError(
            f"{run.path}: refusing to predict: the run was fitted on features with fingerprint {run.fingerprint}, "
            f"these settings make {plan.meta.fingerprint} ({'; '.join(differences(run.extraction, plan))}); "
            "pass the run's weights (--checkpoint / --download-root) and stop-word files (--stopwords / "
            "--extra-stopwords)")
    return plan


def differences(saved: CacheMeta, plan: Plan) -> list[str]:
    """What differs between the run's record and the plan, e.g. "text.stopwords_count 794 -> 3"."""
    before, after = (dict(model=meta.model, weights=meta.provenance.weights, **_flat(meta.provenance.preprocessing))
                     for meta in (saved, plan.meta))
    found = [f"{k} {_short(before.get(k))} -> {_short(after.get(k))}" for k in sorted(set(before) | set(after))
             if before.get(k) != after.get(k)]
    return found or ["the settings recorded by the run are incomplete"]


def _short(value) -> str:
    text = str(value)
    return text if len(text) <= 24 else f"{text[:20]}..."


def _flat(tree: dict, prefix: str = "") -> dict:
    out = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            out.update(_flat(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def encode_new_posts(ecfg: ExtractConfig, manifest: Manifest, plan: Plan, ranks: Ranks,
                     group: Group) -> tuple[SplitSummary, bool]:
    """Extract the posts into ecfg.cache (rows already there are kept); (summary, whether a stale cache was replaced).

    Under torchrun each rank encodes its share into its shard, and rank 0 folds the shards into the cache
    (extract's own steps). A feature cache there that another run or other settings made is derived data:
    it is replaced. A file that is not a feature cache at all is refused, never deleted."""
    cache = Path(ecfg.cache)
    replaced = group.together(lambda: ranks.rank == 0 and cache.exists()
                              and validate(cache).compatible_with(plan.meta) is not None, "checking the cache")
    done = encode_splits(replace(ecfg, overwrite=replaced), manifest, plan, [SPLIT], ranks, group)
    return done.splits[0], replaced


def cached_features(cache: str | Path, share: Sequence[str]) -> tuple[SplitData, dict[str, str], dict[str, str]]:
    """(the encoded posts of `share`, features in their stored dtype; id -> skip reason of the others; id ->
    pictures a kept post was encoded without). Only the share's rows are read: a rank holds its share."""
    validate(cache, require_splits=[SPLIT])
    data = load_rows(cache, SPLIT, positions_of(cache, SPLIT, share))
    return data, load_skipped(cache, SPLIT), load_dropped_images(cache, SPLIT)
