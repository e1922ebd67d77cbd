"""Stage one: a manifest of posts -> frozen Chinese-CLIP features in the cache (SPEC §1-§3).

Importing this package loads neither cn_clip nor torchvision: `encoders` does, once an
extraction actually runs.
"""
from pipeline.extract.config import ExtractConfig
from pipeline.extract.manifest import Manifest, Post, read_manifest
from pipeline.extract.run import extract, extract_split
from pipeline.extract.summary import ExtractSummary, SplitSummary
from pipeline.extract.textprep import TextCleaner, load_stopwords

__all__ = [
    "ExtractConfig", "ExtractSummary", "Manifest", "Post", "SplitSummary", "TextCleaner", "extract",
    "extract_split", "load_stopwords", "read_manifest",
]
