"""Stage one: a manifest of posts -> frozen Chinese-CLIP features in the cache (SPEC §1-§3).

Reader (reader.py, worker processes) -> encoder (encoders.py, the one module that imports
cn_clip) -> writer (the cache library's CacheWriter), driven by engine.py; run.py plans, resumes
and shards. Names load on first use: importing this package loads neither cn_clip nor torch.
"""
from pipeline.lazy import exports

__all__ = ["ExtractConfig", "ExtractSummary", "Group", "Job", "Ranks", "Manifest", "Plan", "Post", "Shard", "SplitSummary",
           "TextCleaner", "default_workers", "downloaded_weights", "encode_splits", "extract", "extract_split", "load_stopwords",
           "make_prepare", "plan_extraction", "read_manifest", "select_rows", "skip_kind"]
__getattr__ = exports(__name__, {
    "ExtractConfig": "pipeline.extract.config", "default_workers": "pipeline.extract.config",
    "Manifest": "pipeline.extract.manifest", "Post": "pipeline.extract.manifest",
    "read_manifest": "pipeline.extract.manifest",
    "Job": "pipeline.extract.run", "Plan": "pipeline.extract.run", "Shard": "pipeline.extract.run",
    "extract": "pipeline.extract.run", "encode_splits": "pipeline.extract.run",
    "Group": "pipeline.extract.distributed", "Ranks": "pipeline.extract.distributed",
    "select_rows": "pipeline.extract.engine", "extract_split": "pipeline.extract.run", "make_prepare": "pipeline.extract.run",
    "plan_extraction": "pipeline.extract.run",
    "ExtractSummary": "pipeline.extract.summary", "SplitSummary": "pipeline.extract.summary",
    "TextCleaner": "pipeline.extract.textprep", "load_stopwords": "pipeline.extract.textprep",
    "skip_kind": "pipeline.extract.stats", "downloaded_weights": "pipeline.extract.encoders",
})
