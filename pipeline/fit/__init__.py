"""Stage two: train the fusion head (or a baseline) on a feature cache; needs torch and h5py only."""
from pipeline.lazy import exports

__all__ = ["CachedSplits", "FitConfig", "FitResult", "SweepRun", "describe", "expand_variants", "fit",
           "load_cached_splits", "load_checkpoint", "load_scorer", "parse_seeds", "sweep"]
__getattr__ = exports(__name__, {
    "CachedSplits": "pipeline.fit.data", "load_cached_splits": "pipeline.fit.data",
    "FitConfig": "pipeline.fit.config", "FitResult": "pipeline.fit.run", "fit": "pipeline.fit.run",
    "load_scorer": "pipeline.fit.run", "load_checkpoint": "pipeline.fit.checkpoint",
    "SweepRun": "pipeline.fit.sweeps", "describe": "pipeline.fit.sweeps", "expand_variants": "pipeline.fit.sweeps",
    "parse_seeds": "pipeline.fit.sweeps", "sweep": "pipeline.fit.sweeps",
})
