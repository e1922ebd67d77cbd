"""The cache library's defaults (this module imports nothing, so the CLI can read them cheaply)."""

DEFAULT_CACHE = "cache/feats.h5"  # SPEC §3
DEFAULT_CHUNK_ROWS = 512  # rows per staged chunk: at most this much encoded work is lost to a crash
