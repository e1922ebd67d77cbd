"""Stage two: train the fusion head on a feature cache (needs torch and h5py only)."""
from pipeline.fit.checkpoint import load_checkpoint
from pipeline.fit.config import FitConfig
from pipeline.fit.data import CachedSplits, load_cached_splits
from pipeline.fit.run import FitResult, fit

__all__ = ["CachedSplits", "FitConfig", "FitResult", "fit", "load_cached_splits", "load_checkpoint"]
