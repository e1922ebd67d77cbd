"""The sgmft feature cache: one HDF5 file of per-post text/image features (SPEC §3).

Names are imported from their modules on first use, so `from sgmft_cache import SgmftError`
loads neither h5py nor torch.
"""
from __future__ import annotations

import importlib

_EXPORTS = {
    "CacheError": "errors", "SgmftError": "errors", "SgmftWarning": "errors", "DEFAULT_CACHE": "defaults",
    "SPLITS": "layout", "UNLABELED": "layout", "CacheMeta": "layout", "Rows": "layout",
    "DEFAULT_CHUNK_ROWS": "defaults", "Provenance": "provenance", "legacy_placeholder": "provenance",
    "merge_caches": "merge", "check_disjoint": "validation", "split_ids": "reader",
    "SplitData": "reader", "list_splits": "reader", "load_cache": "reader", "load_skipped": "reader",
    "load_dropped_images": "reader", "load_split": "reader", "load_rows": "reader", "positions_of": "reader", "validate": "validation",
    "content_identity": "identity", "cache_lock": "lock", "CacheWriter": "writer", "CommitSummary": "writer",
    "staging_dir": "writer", "write_split": "writer", "remove_cache": "writer", "segment_dir": "segments",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'sgmft_cache' has no attribute {name!r}")
    return getattr(importlib.import_module(f"sgmft_cache.{_EXPORTS[name]}"), name)


def __dir__() -> list[str]:
    return __all__
