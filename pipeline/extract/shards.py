"""Shard caches of a sharded extraction: where they lie, which rows they hold, folding them into the cache.

Rank r of N writes `<cache>.shard-<r>-of-<N>.h5`, an ordinary cache file with its own staged chunks
(`<shard>.staging/`), so each shard resumes on its own. Folding merges the cache, its staged chunks
and every shard (of any N) and their chunks into one cache by a streamed copy, keyed by id, in
manifest order (sgmft_cache.merge_caches), then deletes what it merged: the cache does not depend
on the shards' files, which may then go.
"""
from __future__ import annotations

import shutil
from pathlib import Path
from typing import Sequence

from sgmft_cache import CacheError, CacheMeta, merge_caches, segment_dir, split_ids, staging_dir, validate


def shard_path(cache: str | Path, rank: int, world_size: int) -> Path:
    cache = Path(cache)
    return cache.with_name(f"{cache.name}.shard-{rank}-of-{world_size}.h5")


def shard_files(cache: str | Path) -> list[Path]:
    """Committed shard files beside the cache, of any world size."""
    cache = Path(cache)
    return sorted(p for p in cache.parent.glob(f"{cache.name}.shard-*-of-*.h5") if p.is_file())


def shard_leftovers(cache: str | Path) -> list[Path]:
    """Shard files and the shards' staged chunks: rows of a sharded run not yet merged into the cache."""
    cache = Path(cache)
    return shard_files(cache) + sorted(cache.parent.glob(f"{cache.name}.shard-*-of-*.h5.staging/*/chunk-*.h5"))


def leftovers(cache: str | Path) -> list[Path]:
    """Files holding rows that are not yet in the cache: the shards' files and chunks, the cache's own chunks."""
    return shard_leftovers(cache) + sorted(staging_dir(cache).glob("*/chunk-*.h5"))


def done_ids(cache: str | Path, split: str) -> set[str]:
    """Ids of `split` with features in the cache or in any leftover file."""
    return set().union(*(split_ids(file, split) for file in _existing(cache) + leftovers(cache)))


def check_leftovers(cache: str | Path, meta: CacheMeta) -> None:
    """Refuse shards or chunks made differently (another model, weights or preprocessing)."""
    for file in leftovers(cache):
        why = validate(file).compatible_with(meta)
        if why:
            raise CacheError(f"{file}: holds features made differently ({why}); "
                             "overwrite them (sgmft extract --overwrite) or delete them")


def remove_shards(cache: str | Path, ranks: Sequence[int] | None = None, world_size: int | None = None) -> None:
    """Delete shard files and their staging and segment folders: all of them, or those of `ranks` of `world_size`."""
    cache = Path(cache)
    if ranks is None:
        files = shard_files(cache) + sorted(cache.parent.glob(f"{cache.name}.shard-*-of-*.h5.staging")) + sorted(
            cache.parent.glob(f"{cache.name}.shard-*-of-*.h5.d"))
    else:
        shards = [shard_path(cache, r, world_size) for r in ranks]
        files = [p for shard in shards for p in (shard, staging_dir(shard), segment_dir(shard))]
    for path in files:
        shutil.rmtree(path, ignore_errors=True) if path.is_dir() else path.unlink(missing_ok=True)


def missing_shards(cache: str | Path, world_size: int) -> list[int]:
    """Ranks whose committed shard file is not visible here (another node's disk, or the rank failed)."""
    return [r for r in range(world_size) if not shard_path(cache, r, world_size).is_file()]


def fold(cache: str | Path, meta: CacheMeta, order: dict[str, Sequence[str]]) -> list[Path]:
    """Merge the cache and every leftover file into the cache (rows of a split in `order`); delete the leftovers.

    The cache is swapped in atomically before anything is deleted, so a crash in between only
    leaves files whose rows are merged again, harmlessly, next time. Returns the files merged."""
    cache = Path(cache)
    files = leftovers(cache)
    if not files:
        return []
    sources = _existing(cache) + files  # the cache first: its rows win, newer skip reasons override
    merge_caches(sources, cache, order=order, meta=meta)
    for file in files:
        file.unlink(missing_ok=True)
    remove_shards(cache)
    _remove_empty(staging_dir(cache))
    return files


def _existing(cache: str | Path) -> list[Path]:
    return [Path(cache)] if Path(cache).is_file() else []


def _remove_empty(folder: Path) -> None:
    if folder.is_dir():
        for sub in folder.iterdir():
            if sub.is_dir() and not any(sub.iterdir()):
                sub.rmdir()
        if not any(folder.iterdir()):
            folder.rmdir()
