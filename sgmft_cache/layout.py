"""The one owner of the feature-cache layout (SPEC §3): names, dtypes, attributes, row blocks."""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Mapping

import h5py
import numpy as np

from sgmft_cache.provenance import KEYS as PROVENANCE_KEYS, Provenance

FORMAT = "sgmft-cache"
VERSION = 1

# root attributes every cache carries (SPEC §3)
ATTR_FORMAT, ATTR_VERSION, ATTR_MODEL = "format", "version", "model"
ATTR_EMBED_DIM, ATTR_LABELS, ATTR_FINGERPRINT = "embed_dim", "labels", "fingerprint"
REQUIRED_ATTRS = (ATTR_FORMAT, ATTR_VERSION, ATTR_MODEL, ATTR_EMBED_DIM, ATTR_LABELS, ATTR_FINGERPRINT)

# datasets of one split group /<split>/...; the first five are the contract
ID, TEXT, IMAGE, LABEL = "id", "text", "image", "label"
TEXT_CLEAN = "text_clean"  # the cleaned text T_user that was encoded
SKIPPED_ID, SKIPPED_REASON = "skipped_id", "skipped_reason"  # rows that could not be encoded, and why
FEATURES = (TEXT, IMAGE)

SPLITS = ("train", "val", "test")
UNLABELED = -1
FEATURE_DTYPES = (np.dtype(np.float32), np.dtype(np.float16))
STR_DTYPE = h5py.string_dtype("utf-8")


@dataclass(frozen=True)
class CacheMeta:
    """The root attributes of a cache."""

    model: str  # encoder name, e.g. "ViT-H-14"; "tiny" marks the random-weight test encoder
    embed_dim: int  # D, the width of every stored feature vector
    labels: tuple[str, ...]  # class names; position = class id stored in /<split>/label
    fingerprint: str  # hash of encoder weights id + preprocessing settings
    provenance: Provenance = Provenance()  # how the features were made (weights, precision, settings, ...)
    extra: Mapping[str, str] = field(default_factory=dict)  # root attrs of other tools, kept as read

    @property
    def placeholder(self) -> bool:
        """Random or synthetic weights: the features mean nothing about posts."""
        return self.provenance.placeholder

    def record(self) -> dict:
        """The root attributes as JSON, for a run directory: how the run's features were made."""
        return dict(model=self.model, embed_dim=self.embed_dim, fingerprint=self.fingerprint, labels=list(self.labels),
                    **self.provenance.record())

    @classmethod
    def from_record(cls, record: Mapping) -> "CacheMeta":
        model = str(record.get("model", ""))
        return cls(model=model, embed_dim=int(record.get("embed_dim", 0)), labels=tuple(record.get("labels", ())),
                   fingerprint=str(record.get("fingerprint", "")),
                   provenance=Provenance.from_record(record, model))

    def compatible_with(self, other: "CacheMeta") -> str | None:
        """Why rows described by `other` cannot go into a cache described by `self` (None if they can)."""
        if self.fingerprint != other.fingerprint:
            return f"fingerprint {self.fingerprint} (model {self.model}) differs from {other.fingerprint} (model {other.model})"
        if self.embed_dim != other.embed_dim:
            return f"embed_dim {self.embed_dim} differs from {other.embed_dim}"
        if tuple(self.labels) != tuple(other.labels):
            return f"labels {list(self.labels)} differ from {list(other.labels)}"
        return None


def write_meta(f: h5py.File, meta: CacheMeta) -> None:
    f.attrs[ATTR_FORMAT] = FORMAT
    f.attrs[ATTR_VERSION] = VERSION
    f.attrs[ATTR_MODEL] = meta.model
    f.attrs[ATTR_EMBED_DIM] = int(meta.embed_dim)
    f.attrs[ATTR_LABELS] = json.dumps(list(meta.labels), ensure_ascii=False)
    f.attrs[ATTR_FINGERPRINT] = meta.fingerprint
    for key, value in {**meta.extra, **meta.provenance.to_attrs()}.items():
        if key in REQUIRED_ATTRS:
            raise ValueError(f"extra attribute {key!r} would shadow a required one")
        f.attrs[key] = str(value)


def read_meta(f: h5py.File) -> CacheMeta:
    """Root attributes as a CacheMeta; assumes `validate` has accepted the file."""
    attrs = {k: _as_str(v) for k, v in f.attrs.items()}
    model = attrs[ATTR_MODEL]
    return CacheMeta(
        model=model,
        embed_dim=int(attrs[ATTR_EMBED_DIM]),
        labels=tuple(json.loads(attrs[ATTR_LABELS])),
        fingerprint=attrs[ATTR_FINGERPRINT],
        provenance=Provenance.from_attrs(attrs, model),
        extra={k: v for k, v in attrs.items() if k not in REQUIRED_ATTRS and k not in PROVENANCE_KEYS},
    )


def _as_str(value) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


@dataclass
class Rows:
    """A block of rows of one split, as numpy arrays (features keep their stored dtype)."""

    ids: np.ndarray  # [N] object (str)
    text: np.ndarray  # [N, D] float32 | float16
    image: np.ndarray  # [N, D]
    label: np.ndarray  # [N] int64, UNLABELED where unknown
    text_clean: np.ndarray  # [N] object (str)
    skipped_id: np.ndarray  # [M] object (str)
    skipped_reason: np.ndarray  # [M] object (str)

    @classmethod
    def empty(cls, embed_dim: int, dtype=np.float32) -> "Rows":
        no_str = np.empty(0, dtype=object)
        feats = np.empty((0, embed_dim), dtype=dtype)
        return cls(no_str, feats, feats.copy(), np.empty(0, np.int64), no_str, no_str, no_str)

    def __len__(self) -> int:
        return len(self.ids)


def write_rows(group: h5py.Group, rows: Rows) -> None:
    """Write `rows` as the datasets of a (new, empty) split group."""
    for name in FEATURES:
        group.create_dataset(name, data=getattr(rows, name))
    group.create_dataset(LABEL, data=rows.label.astype(np.int64))
    for name, values in ((ID, rows.ids), (TEXT_CLEAN, rows.text_clean),
                         (SKIPPED_ID, rows.skipped_id), (SKIPPED_REASON, rows.skipped_reason)):
        group.create_dataset(name, data=values.astype(object), dtype=STR_DTYPE)


def read_strings(group: h5py.Group, name: str) -> np.ndarray:
    """A utf-8 string dataset as an object array of str (empty if the dataset is absent)."""
    if name not in group:
        return np.empty(0, dtype=object)
    return group[name].asstr()[...].astype(object)


def read_rows(group: h5py.Group) -> Rows:
    """Every row of a split group; optional datasets absent from older files read as empty."""
    ids = read_strings(group, ID)
    text_clean = read_strings(group, TEXT_CLEAN)
    if len(text_clean) != len(ids):
        text_clean = np.full(len(ids), "", dtype=object)
    return Rows(
        ids=ids,
        text=group[TEXT][...],
        image=group[IMAGE][...],
        label=group[LABEL][...].astype(np.int64),
        text_clean=text_clean,
        skipped_id=read_strings(group, SKIPPED_ID),
        skipped_reason=read_strings(group, SKIPPED_REASON),
    )
