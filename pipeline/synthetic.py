"""Synthetic feature caches with a known answer: tests, benchmarks and stand-in caches.

`make_synthetic_cache`: the class signal is split across the modalities. Class c is the pair
(c // 2, c % 2): the text vector carries only c // 2 and the image vector only c % 2, each under
Gaussian noise, so neither modality alone can tell all classes apart and a head that fuses both can.

`make_agreement_cache`: the class signal lies where text and image agree (benchmarks/bench_similarity.py).

`make_image_set_cache`, `make_missing_image_cache`: version-2 caches of real post shapes (SPEC §7) — the
class only in a post's second or third image, or only in the text of the posts that have no image.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np

from sgmft_cache import CacheMeta, Provenance, write_split

CLASSES = ("home", "school", "work", "shopping_center", "cinema", "travel", "restaurant")
Features = Callable[[np.ndarray, np.random.Generator], "tuple[np.ndarray, np.ndarray] | dict"]  # labels -> (text, image)
# or every write_split feature argument: text, image, has_text, has_image, images, image_offsets


def split_signal_features(
    labels: np.ndarray, dim: int, noise: float, rng: np.random.Generator, means: tuple[np.ndarray, np.ndarray]
) -> tuple[np.ndarray, np.ndarray]:
    """(text, image) [N, dim] for class ids `labels`; `means` = (text means by c // 2, image means by c % 2)."""
    text = means[0][labels // 2] + noise * rng.standard_normal((len(labels), dim))
    image = means[1][labels % 2] + noise * rng.standard_normal((len(labels), dim))
    return text.astype(np.float32), image.astype(np.float32)


def make_synthetic_cache(
    path: str | Path,
    *,
    sizes: dict[str, int] | None = None,
    dim: int = 64,
    classes: tuple[str, ...] = CLASSES,
    noise: float = 0.5,
    seed: int = 0,
    dtype: str = "float32",
) -> CacheMeta:
    """Write a cache with one split per entry of `sizes` (default train 700, test 175), balanced classes."""
    rng = np.random.default_rng(seed)
    k = len(classes)
    means = (rng.standard_normal(((k + 1) // 2, dim)), rng.standard_normal((2, dim)))
    meta = _meta(dim, classes, f"synthetic-d{dim}-s{seed}-n{noise}",
                 "synthetic features: class signal split across text and image, no encoder")
    features = lambda labels, rng: split_signal_features(labels, dim, noise, rng, means)  # noqa: E731
    return _write(path, meta, sizes or {"train": 700, "test": 175}, features, rng, dtype)


def agreement_features(labels: np.ndarray, dim: int, num_classes: int, structured: bool, agreement: float,
                       shift: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(text, image) [N, dim]: independent N(0, 1) noise, with class c owning the channel group
    G_c = [c·g, (c+1)·g), g = dim // (num_classes + 1).

    structured: on G_c the image copies the text, v = ρ t + sqrt(1 - ρ²) ε (ρ = `agreement`); elsewhere the
    two disagree (independent). Each modality alone is N(0, I) whatever the class — no signal — and the
    class is where t ⊙ v is large: exactly what S^m = t ⊙ v measures.
    control: no agreement anywhere (t, v independent); instead both are shifted by `shift` on G_c, a
    signal each modality carries alone and their sum reads linearly.
    """
    g = dim // (num_classes + 1)
    n = len(labels)
    text, image = rng.standard_normal((n, dim)), rng.standard_normal((n, dim))
    group = (np.arange(dim)[None, :] // g == labels[:, None]) & (np.arange(dim)[None, :] < num_classes * g)  # (N, dim)
    if structured:
        image = np.where(group, agreement * text + np.sqrt(1 - agreement ** 2) * image, image)
    else:
        text, image = text + shift * group, image + shift * group
    return text.astype(np.float32), image.astype(np.float32)


def agreement_rule(text: np.ndarray, image: np.ndarray, num_classes: int, structured: bool) -> np.ndarray:
    """The class a rule that knows the construction picks: the channel group where Σ t̂ ⊙ v̂ (structured) or
    Σ t + v (control) is largest, t̂, v̂ l2-normalised — the known answer set beside the heads."""
    g = text.shape[1] // (num_classes + 1)
    if structured:
        unit = lambda x: x / np.linalg.norm(x, axis=1, keepdims=True)  # noqa: E731
        score = unit(text) * unit(image)
    else:
        score = text + image
    return score[:, :num_classes * g].reshape(len(text), num_classes, g).sum(-1).argmax(1)


def make_agreement_cache(
    path: str | Path,
    *,
    structured: bool = True,
    sizes: dict[str, int] | None = None,
    dim: int = 64,
    classes: tuple[str, ...] = CLASSES,
    agreement: float = 0.9,
    shift: float = 0.55,
    seed: int = 0,
) -> CacheMeta:
    """A cache of `agreement_features` (structured, or the control), one split per entry of `sizes`.

    The default shift makes the two equally hard for `agreement_rule`: at D = 64 it reads 80 % of 7,000
    agreement posts and 78 % of the control's (0.35: 54 %, 0.5: 73 %)."""
    if dim // (len(classes) + 1) < 1:
        raise ValueError(f"dim {dim} is too small for {len(classes)} channel groups")
    rng = np.random.default_rng(seed)
    kind = "agreement" if structured else "control"
    about = ("class signal where text and image agree (image copies text on the class's channels), noise where "
             "they disagree" if structured else "class signal as a shift of both modalities, no agreement structure")
    meta = _meta(dim, classes, f"synthetic-{kind}-d{dim}-s{seed}", f"synthetic features: {about}; no encoder")
    features = lambda labels, rng: agreement_features(  # noqa: E731
        labels, dim, len(classes), structured, agreement, shift, rng)
    return _write(path, meta, sizes or {"train": 1400, "test": 700}, features, rng, "float32")


def image_set_features(labels: np.ndarray, dim: int, noise: float, rng: np.random.Generator, means: np.ndarray,
                       images: int = 3) -> dict:
    """Every post has `images` images and a text, all N(0, I) noise except one image — the second or the third
    (seeded, per post) — which is means[c] + noise·ε: the first image and the text carry nothing of the class."""
    n = len(labels)
    sets = rng.standard_normal((n, images, dim))
    where = rng.integers(1, images, size=n)  # position 1 .. images-1
    sets[np.arange(n), where] = means[labels] + noise * rng.standard_normal((n, dim))
    flat = sets.reshape(n * images, dim).astype(np.float32)
    return dict(text=rng.standard_normal((n, dim)).astype(np.float32), image=flat[::images].copy(), images=flat,
                image_offsets=np.arange(n + 1) * images, has_text=np.ones(n, bool), has_image=np.ones(n, bool))


def missing_image_features(labels: np.ndarray, dim: int, noise: float, rng: np.random.Generator,
                           means: tuple[np.ndarray, np.ndarray], no_image: float = 0.5) -> dict:
    """A share `no_image` of the posts has a text and no image, and the class is in that text (means[0][c] + noise);
    the other posts carry the class in their one image (means[1][c] + noise) beside a text of pure noise."""
    n = len(labels)
    has_image = rng.random(n) >= no_image
    signal = lambda m: m[labels] + noise * rng.standard_normal((n, dim))  # noqa: E731
    text = np.where(has_image[:, None], rng.standard_normal((n, dim)), signal(means[0]))
    image = np.where(has_image[:, None], signal(means[1]), 0.0).astype(np.float32)  # zeros where there is none
    offsets = np.concatenate([[0], np.cumsum(has_image)])
    return dict(text=text.astype(np.float32), image=image, images=image[has_image], image_offsets=offsets,
                has_text=np.ones(n, bool), has_image=has_image)


def one_modality_features(labels: np.ndarray, dim: int, noise: float, rng: np.random.Generator,
                          means: tuple[np.ndarray, np.ndarray], missing: float) -> dict:
    """The class in both the text (means[0][c] + noise) and the one image (means[1][c] + noise); a share `missing`
    of the posts lacks one of them (text or image, evenly): zeros there and its mask false."""
    n = len(labels)
    text = means[0][labels] + noise * rng.standard_normal((n, dim))
    image = means[1][labels] + noise * rng.standard_normal((n, dim))
    lose = rng.random(n) < missing
    image_goes = rng.random(n) < 0.5
    has_text, has_image = ~(lose & ~image_goes), ~(lose & image_goes)
    text, image = (np.where(m[:, None], x, 0.0).astype(np.float32) for m, x in ((has_text, text), (has_image, image)))
    return dict(text=text, image=image, images=image[has_image], image_offsets=np.concatenate([[0], np.cumsum(has_image)]),
                has_text=has_text, has_image=has_image)


def make_one_modality_cache(path: str | Path, *, sizes: dict[str, int] | None = None, missing: dict[str, float] | None = None,
                            dim: int = 16, noise: float = 1.0, classes: tuple[str, ...] = CLASSES,
                            seed: int = 0) -> CacheMeta:
    """A version-2 cache of `one_modality_features`; `missing` (split -> share, default test 0.6) says which splits
    have posts with one modality only — by default train has none, so only modality dropout shows the head those."""
    rng = np.random.default_rng(seed)
    means = (rng.standard_normal((len(classes), dim)), rng.standard_normal((len(classes), dim)))
    missing = {"test": 0.6} if missing is None else missing
    meta = _meta(dim, classes, f"synthetic-one-modality-d{dim}-n{noise}-s{seed}",
                 "synthetic features: class in both text and image; some posts lack one of them; no encoder")
    sizes = sizes or {"train": 700, "test": 210}
    for split, n in sizes.items():  # one split at a time: each has its own share of one-modality posts
        features = lambda labels, rng, p=missing.get(split, 0.0): one_modality_features(  # noqa: E731
            labels, dim, noise, rng, means, p)
        _write(path, meta, {split: n}, features, rng, "float32")
    return meta


def make_image_set_cache(path: str | Path, *, sizes: dict[str, int] | None = None, dim: int = 16, images: int = 3,
                         noise: float = 0.3, classes: tuple[str, ...] = CLASSES, seed: int = 0) -> CacheMeta:
    """A version-2 cache of `image_set_features`: a first-image model is at chance, one that reads the set is not."""
    rng = np.random.default_rng(seed)
    means = rng.standard_normal((len(classes), dim))
    meta = _meta(dim, classes, f"synthetic-image-set-d{dim}-k{images}-s{seed}",
                 "synthetic features: class signal only in a post's second or third image; no encoder")
    features = lambda labels, rng: image_set_features(labels, dim, noise, rng, means, images)  # noqa: E731
    return _write(path, meta, sizes or {"train": 700, "test": 210}, features, rng, "float32")


def make_missing_image_cache(path: str | Path, *, sizes: dict[str, int] | None = None, dim: int = 16,
                             no_image: float = 0.5, noise: float = 0.3, classes: tuple[str, ...] = CLASSES,
                             seed: int = 0) -> CacheMeta:
    """A version-2 cache of `missing_image_features`: the image-less posts' class is in their text alone."""
    rng = np.random.default_rng(seed)
    means = (rng.standard_normal((len(classes), dim)), rng.standard_normal((len(classes), dim)))
    meta = _meta(dim, classes, f"synthetic-missing-image-d{dim}-p{no_image}-s{seed}",
                 "synthetic features: class in the text of image-less posts, in the image of the others; no encoder")
    features = lambda labels, rng: missing_image_features(labels, dim, noise, rng, means, no_image)  # noqa: E731
    return _write(path, meta, sizes or {"train": 700, "test": 210}, features, rng, "float32")


def _meta(dim: int, classes: tuple[str, ...], fingerprint: str, note: str) -> CacheMeta:
    return CacheMeta(model="synthetic", embed_dim=dim, labels=tuple(classes), fingerprint=fingerprint,
                     provenance=Provenance(encoder_note=note, placeholder=True))


def _write(path: str | Path, meta: CacheMeta, sizes: dict[str, int], features: Features, rng: np.random.Generator,
           dtype: str) -> CacheMeta:
    """One split per entry of `sizes`, balanced classes in a seeded order."""
    for split, n in sizes.items():
        labels = np.arange(n) % len(meta.labels)
        rng.shuffle(labels)
        made = features(labels, rng)
        made = made if isinstance(made, dict) else dict(text=made[0], image=made[1])
        ids = [f"{split}-{i:06d}" for i in range(n)]
        write_split(path, split, meta, ids=ids, label=labels, dtype=dtype,
                    text_clean=[f"synthetic {meta.labels[c]}" for c in labels], **made)
    return meta
