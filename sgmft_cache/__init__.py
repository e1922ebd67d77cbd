"""The sgmft feature cache: one HDF5 file of per-post text/image features (SPEC §3)."""
from sgmft_cache.errors import CacheError, SgmftError
from sgmft_cache.layout import SPLITS, UNLABELED, CacheMeta, Rows
from sgmft_cache.merge import merge_caches
from sgmft_cache.reader import SplitData, list_splits, load_cache, load_skipped, load_split
from sgmft_cache.validate import validate
from sgmft_cache.writer import CacheWriter, CommitSummary, staging_dir, write_split

__all__ = [
    "CacheError", "CacheMeta", "CacheWriter", "CommitSummary", "Rows", "SPLITS", "SgmftError",
    "SplitData", "UNLABELED", "list_splits", "load_cache", "load_skipped", "load_split", "merge_caches", "staging_dir",
    "validate", "write_split",
]
