"""The agreement cache of the similarity benchmark holds the structure it claims, and nothing else."""
from __future__ import annotations

import numpy as np
import pytest

from pipeline.synthetic import CLASSES, agreement_features, agreement_rule, make_agreement_cache
from sgmft_cache import load_split

D, K = 64, len(CLASSES)
G = D // (K + 1)  # channels per class group


def features(structured: bool, n: int = 7000):
    rng = np.random.default_rng(0)
    labels = np.arange(n) % K
    return (*agreement_features(labels, D, K, structured, agreement=0.9, shift=0.55, rng=rng), labels)


def group_correlation(text, image, labels, c: int, group: int) -> float:
    rows, cols = labels == c, slice(group * G, (group + 1) * G)
    return float(np.corrcoef(text[rows, cols].ravel(), image[rows, cols].ravel())[0, 1])


def test_structured_class_lies_only_where_text_and_image_agree():
    text, image, labels = features(True)
    assert group_correlation(text, image, labels, 2, 2) == pytest.approx(0.9, abs=0.02)  # its own group agrees
    assert abs(group_correlation(text, image, labels, 2, 5)) < 0.05  # others' groups and the rest disagree
    for x in (text, image):  # each modality alone: N(0, 1) whatever the class — nothing to read
        by_class = np.stack([x[labels == c].mean(0) for c in range(K)])
        assert np.abs(by_class).max() < 0.15
        assert np.stack([x[labels == c].std(0) for c in range(K)]) == pytest.approx(1.0, abs=0.1)
    assert np.mean(agreement_rule(text, image, K, True) == labels) > 0.7  # the product-sum rule reads it


def test_control_has_no_agreement_and_a_shift_each_modality_carries():
    text, image, labels = features(False)
    assert abs(group_correlation(text, image, labels, 2, 2)) < 0.05
    for x in (text, image):
        assert x[labels == 2, 2 * G:3 * G].mean() == pytest.approx(0.55, abs=0.05)
        assert abs(x[labels == 2, 5 * G:6 * G].mean()) < 0.05
    assert np.mean(agreement_rule(text, image, K, False) == labels) > 0.7


def test_cache_is_written_balanced_and_named_by_its_kind(tmp_path):
    meta = make_agreement_cache(tmp_path / "a.h5", sizes={"train": 70, "test": 35}, dim=D)
    control = make_agreement_cache(tmp_path / "c.h5", structured=False, sizes={"train": 70, "test": 35}, dim=D)
    assert meta.fingerprint != control.fingerprint and meta.placeholder and "agree" in meta.provenance.encoder_note
    train = load_split(tmp_path / "a.h5", "train")
    assert np.bincount(train.label.numpy()).tolist() == [10] * K and train.text.shape == (70, D)
    with pytest.raises(ValueError, match="too small"):
        make_agreement_cache(tmp_path / "x.h5", dim=4)
