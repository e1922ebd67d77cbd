"""The one owner of the feature-cache layout (SPEC §3): names, dtypes, attributes, row blocks."""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Mapping

import h5py
import numpy as np

from sgmft_cache import postshape as P
from sgmft_cache.provenance import KEYS as PROVENANCE_KEYS, Provenance

FORMAT = "sgmft-cache"
VERSION = 2  # written when a split holds the version-2 datasets below; version 1 otherwise
READABLE_VERSIONS = (1, 2)

# root attributes every cache carries (SPEC §3)
ATTR_FORMAT, ATTR_VERSION, ATTR_MODEL = "format", "version", "model"
ATTR_EMBED_DIM, ATTR_LABELS, ATTR_FINGERPRINT = "embed_dim", "labels", "fingerprint"
REQUIRED_ATTRS = (ATTR_FORMAT, ATTR_VERSION, ATTR_MODEL, ATTR_EMBED_DIM, ATTR_LABELS, ATTR_FINGERPRINT)

# datasets of one split group /<split>/...; the first five are the contract
ID, TEXT, IMAGE, LABEL = "id", "text", "image", "label"
TEXT_CLEAN = "text_clean"  # the cleaned text T_user that was encoded
SKIPPED_ID, SKIPPED_REASON = "skipped_id", "skipped_reason"  # rows that could not be encoded, and why
FEATURES = (TEXT, IMAGE)
# version 2 (real post shapes, SPEC §3/§7): written together, only for a split that needs them
HAS_TEXT, HAS_IMAGE, IMAGES, IMAGE_OFFSETS = "has_text", "has_image", "images", "image_offsets"
V2_DATASETS = (HAS_TEXT, HAS_IMAGE, IMAGES, IMAGE_OFFSETS)
DROPPED_IMAGES = "dropped_images"  # [N] str: a kept post's pictures that could not be used, and why ("" = none)

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
    f.attrs[ATTR_VERSION] = 1  # raised by stamp_version once the splits are written
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
    """A block of rows of one split, as numpy arrays (features keep their stored dtype).

    The post-shape fields default to the version-1 meaning (both modalities, one image per post).
    """

    ids: np.ndarray  # [N] object (str)
    text: np.ndarray  # [N, D] float32 | float16, zeros where has_text is false
    image: np.ndarray  # [N, D]: the first usable image, zeros where has_image is false
    label: np.ndarray  # [N] int64, UNLABELED where unknown
    text_clean: np.ndarray  # [N] object (str)
    skipped_id: np.ndarray  # [K] object (str)
    skipped_reason: np.ndarray  # [K] object (str)
    has_text: np.ndarray | None = None  # [N] bool
    has_image: np.ndarray | None = None  # [N] bool
    images: np.ndarray | None = None  # [M, D]: every usable image, post by post
    image_offsets: np.ndarray | None = None  # [N+1] int64
    dropped_images: np.ndarray | None = None  # [N] object (str), "" where every picture was used

    def __post_init__(self):
        n = len(self.ids)
        if self.has_text is None:
            self.has_text = np.ones(n, dtype=bool)
        if self.has_image is None:
            self.has_image = np.ones(n, dtype=bool) if self.images is None else P.counts(self.image_offsets) > 0
        if self.images is None:
            self.images = self.image if self.has_image.all() else self.image[self.has_image]
            self.image_offsets = P.offsets_of(self.has_image)
        if self.dropped_images is None:
            self.dropped_images = np.full(n, "", dtype=object)

    @classmethod
    def empty(cls, embed_dim: int, dtype=np.float32) -> "Rows":
        no_str = np.empty(0, dtype=object)
        feats = np.empty((0, embed_dim), dtype=dtype)
        return cls(no_str, feats, feats.copy(), np.empty(0, np.int64), no_str, no_str, no_str)

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def v1_shaped(self) -> bool:
        """Every post has text and exactly one image: the version-1 datasets say everything."""
        return bool(self.has_text.all() and self.has_image.all() and (P.counts(self.image_offsets) == 1).all())

    def take(self, index) -> "Rows":
        """Rows `index` (in that order), image sets included; no skip entries."""
        index = np.asarray(index, dtype=np.int64).reshape(-1)
        images, offsets = P.take(self.images, self.image_offsets, index)
        no_str = np.empty(0, dtype=object)
        return Rows(self.ids[index], self.text[index], self.image[index], self.label[index], self.text_clean[index],
                    no_str, no_str, self.has_text[index], self.has_image[index], images, offsets,
                    self.dropped_images[index])


def write_rows(group: h5py.Group, rows: Rows) -> None:
    """Write `rows` as the datasets of a (new, empty) split group; the v2 datasets only when needed."""
    for name in FEATURES:
        group.create_dataset(name, data=getattr(rows, name))
    group.create_dataset(LABEL, data=rows.label.astype(np.int64))
    strings = [(ID, rows.ids), (TEXT_CLEAN, rows.text_clean),
               (SKIPPED_ID, rows.skipped_id), (SKIPPED_REASON, rows.skipped_reason)]
    if any(rows.dropped_images):
        strings.append((DROPPED_IMAGES, rows.dropped_images))
    for name, values in strings:
        group.create_dataset(name, data=values.astype(object), dtype=STR_DTYPE)
    if not rows.v1_shaped:
        group.create_dataset(HAS_TEXT, data=rows.has_text.astype(bool))
        group.create_dataset(HAS_IMAGE, data=rows.has_image.astype(bool))
        group.create_dataset(IMAGES, data=rows.images.astype(rows.image.dtype, copy=False))
        group.create_dataset(IMAGE_OFFSETS, data=rows.image_offsets.astype(np.int64))


def is_v2(group: h5py.Group) -> bool:
    return any(name in group for name in V2_DATASETS)


def stamp_version(f: h5py.File) -> None:
    """Root attribute `version`: 2 when any split holds the version-2 datasets, else 1 (SPEC §3)."""
    groups = [g for g in f.values() if isinstance(g, h5py.Group)]
    f.attrs[ATTR_VERSION] = 2 if any(is_v2(g) for g in groups) else 1


def read_strings(group: h5py.Group, name: str) -> np.ndarray:
    """A utf-8 string dataset as an object array of str (empty if the dataset is absent)."""
    if name not in group:
        return np.empty(0, dtype=object)
    return group[name].asstr()[...].astype(object)


def read_rows(group: h5py.Group) -> Rows:
    """Every row of a split group; datasets absent from older files read with their version-1 meaning."""
    ids = read_strings(group, ID)
    text_clean, dropped = read_strings(group, TEXT_CLEAN), read_strings(group, DROPPED_IMAGES)
    if len(text_clean) != len(ids):
        text_clean = np.full(len(ids), "", dtype=object)
    v2 = {name: group[name][...] for name in V2_DATASETS if name in group} if is_v2(group) else {}
    return Rows(
        ids=ids,
        text=group[TEXT][...],
        image=group[IMAGE][...],
        label=group[LABEL][...].astype(np.int64),
        text_clean=text_clean,
        skipped_id=read_strings(group, SKIPPED_ID),
        skipped_reason=read_strings(group, SKIPPED_REASON),
        has_text=v2[HAS_TEXT].astype(bool) if v2 else None,
        has_image=v2[HAS_IMAGE].astype(bool) if v2 else None,
        images=v2.get(IMAGES),
        image_offsets=v2[IMAGE_OFFSETS].astype(np.int64) if v2 else None,
        dropped_images=dropped if len(dropped) == len(ids) else None,
    )
