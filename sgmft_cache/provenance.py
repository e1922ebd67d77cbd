"""How a cache's features were made: the provenance root attributes beside the contract's five, typed.

Every key is named here and only here. `Provenance.to_attrs` gives the HDF5 string attributes,
`from_attrs` reads them back (absent keys read as empty: caches made by other tools carry none);
`CacheMeta.record` / `from_record` carry the same facts into a run directory's config.json, so a
run knows how its features were made after the cache is gone.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field, fields
from typing import Mapping

# root attribute names (strings; the JSON ones hold a JSON object)
ENCODER_NOTE = "encoder_note"
WEIGHTS = "weights"
ARCH = "arch"
PRECISION = "precision"
PREPROCESSING = "preprocessing"  # JSON
EXTRACT_CONFIG = "extract_config"  # JSON
SPLIT_SOURCE = "split_source"
VERSIONS = "versions"  # JSON
PLACEHOLDER = "placeholder_weights"  # "true" / "false"

JSON_KEYS = (PREPROCESSING, EXTRACT_CONFIG, VERSIONS)
KEYS = (ENCODER_NOTE, WEIGHTS, ARCH, PRECISION, PREPROCESSING, EXTRACT_CONFIG, SPLIT_SOURCE, VERSIONS, PLACEHOLDER)
PLACEHOLDER_MODELS = ("tiny", "synthetic")  # model names that were never Chinese-CLIP, before the flag existed
RANDOM_NOTE_START = "RANDOM WEIGHTS"  # how stage one's notes on random weights begin


@dataclass(frozen=True)
class Provenance:
    """The facts a cache keeps about its features besides model, D, labels and fingerprint."""

    encoder_note: str = ""  # what the weights are, in words (loud for random weights)
    weights: str = ""  # weights identity: "sha256:<file hash>" or "random:<arch>:seed=<n>:cn_clip=<version>"
    arch: str = ""  # cn_clip structure, e.g. "ViT-H-14@RoBERTa-wwm-ext-large-chinese"
    precision: str = ""  # every precision the rows were made at, e.g. "fp16" or "fp16,fp32"
    preprocessing: Mapping = field(default_factory=dict)  # everything between a raw post and the encoders' inputs
    extract_config: Mapping = field(default_factory=dict)  # the settings of the `sgmft extract` that made the cache
    split_source: str = ""  # where the splits came from
    versions: Mapping = field(default_factory=dict)  # package versions of the extraction
    placeholder: bool = False  # random or synthetic weights: the features mean nothing about posts

    @property
    def precisions(self) -> set[str]:
        return set(filter(None, self.precision.split(",")))

    def to_attrs(self) -> dict[str, str]:
        """The HDF5 root attributes, every value a string; empty ones are left out."""
        attrs = {}
        for f in fields(self):
            value = getattr(self, f.name)
            key = _KEY[f.name]
            if key == PLACEHOLDER:
                attrs[key] = "true" if value else "false"
            elif key in JSON_KEYS:
                if value:
                    attrs[key] = json.dumps(dict(value), ensure_ascii=False, sort_keys=True)
            elif value:
                attrs[key] = str(value)
        return attrs

    @classmethod
    def from_attrs(cls, attrs: Mapping[str, str], model: str = "") -> "Provenance":
        """Read back what `to_attrs` wrote; a cache written before the placeholder flag gets it from its note."""
        values = {}
        for f in fields(cls):
            key = _KEY[f.name]
            if key not in attrs or key == PLACEHOLDER:
                continue
            values[f.name] = _json_object(attrs[key]) if key in JSON_KEYS else str(attrs[key])
        note = values.get("encoder_note", "")
        flag = attrs.get(PLACEHOLDER)
        placeholder = str(flag).lower() == "true" if flag is not None else legacy_placeholder(model, note)
        return cls(**values, placeholder=placeholder)

    def record(self) -> dict:
        """JSON-ready, for a run's config.json (the shape `from_record` reads)."""
        return {_KEY[f.name]: _plain(getattr(self, f.name)) for f in fields(self)}

    @classmethod
    def from_record(cls, record: Mapping, model: str = "") -> "Provenance":
        attrs = {k: record[k] for k in KEYS if k in record}
        for key in JSON_KEYS:
            if key in attrs and not isinstance(attrs[key], str):
                attrs[key] = json.dumps(attrs[key])
        if PLACEHOLDER in attrs:
            attrs[PLACEHOLDER] = "true" if attrs[PLACEHOLDER] in (True, "true") else "false"
        return cls.from_attrs(attrs, model)


_KEY = {"encoder_note": ENCODER_NOTE, "weights": WEIGHTS, "arch": ARCH, "precision": PRECISION,
        "preprocessing": PREPROCESSING, "extract_config": EXTRACT_CONFIG, "split_source": SPLIT_SOURCE,
        "versions": VERSIONS, "placeholder": PLACEHOLDER}


def legacy_placeholder(model: str, note: str) -> bool:
    """For caches and runs made before the explicit flag: the test encoders' names and stage one's note."""
    return model in PLACEHOLDER_MODELS or note.startswith(RANDOM_NOTE_START)


def _json_object(text: str) -> dict:
    try:
        value = json.loads(text)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _plain(value):
    return dict(value) if isinstance(value, Mapping) else value
