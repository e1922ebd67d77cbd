"""pipeline.splits.stratified_holdout: by hand, and as properties (hypothesis) over any labels, fraction and seed."""
from __future__ import annotations

import math
import os

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.splits import stratified_holdout

LABELS = st.lists(st.one_of(st.integers(-1, 4), st.none(), st.just(float("nan")), st.sampled_from(["x", "y"])),
                  max_size=60)
FRACTION = st.floats(0.01, 0.99)


def test_by_hand():
    labels = [0] * 10 + [1] * 4 + [2] * 1 + [-1] * 5
    held = stratified_holdout(labels, 0.25, seed=0)
    assert held.dtype == bool and held.shape == (20,)
    by = lambda c: int(held[[i for i, x in enumerate(labels) if x == c]].sum())  # noqa: E731
    assert (by(0), by(1), by(2), by(-1)) == (2, 1, 0, 1)  # round(2.5) = 2, 1, a lone row stays, round(1.25) = 1


def test_at_least_one_held_and_one_kept_per_class_of_two_or_more():
    held = stratified_holdout([0, 0, 1, 1, 1], 0.01, seed=3)  # round(0.02) = 0, raised to 1
    assert held[:2].sum() == 1 and held[2:].sum() == 1
    held = stratified_holdout([0, 0, 1, 1, 1], 0.99, seed=3)  # round(1.98) = 2, capped at n - 1
    assert held[:2].sum() == 1 and held[2:].sum() == 2


def test_unlabelled_rows_of_every_kind_are_one_group():
    labels = [None, float("nan"), -1, np.int64(-1), None, float("nan")]
    held = stratified_holdout(labels, 0.5, seed=0)
    assert held.sum() == 3  # one group of six, not four groups


def test_labels_are_grouped_by_value_not_by_type_spelling():
    held = stratified_holdout([1, 1, "1", "1"], 0.5, seed=0)  # 1 and "1" name the same class
    assert held.sum() == 2


def test_the_seed_decides_which_rows():
    labels = [0] * 50
    a, b = stratified_holdout(labels, 0.2, 1), stratified_holdout(labels, 0.2, 1)
    assert (a == b).all() and not (a == stratified_holdout(labels, 0.2, 2)).all()
    assert a.sum() == 10


@pytest.mark.parametrize("fraction", [0.0, 1.0, -0.1, 1.5])
def test_a_fraction_outside_0_1_is_refused(fraction):
    with pytest.raises(ValueError, match=f"holdout fraction must be between 0 and 1, got {fraction}"):
        stratified_holdout([0, 1], fraction, 0)


def key(x) -> str:
    missing = x is None or (isinstance(x, float) and math.isnan(x)) or (isinstance(x, int) and x == -1)
    return "unlabelled" if missing else str(x)


@settings(max_examples=int(os.environ.get("SGMFT_PROPERTY_EXAMPLES", "60")), deadline=None)
@given(LABELS, FRACTION, st.integers(0, 2**31))
def test_every_class_held_out_at_the_rate_asked(labels, fraction, seed):
    held = stratified_holdout(labels, fraction, seed)
    assert held.shape == (len(labels),) and held.dtype == bool
    groups: dict[str, list[int]] = {}
    for i, x in enumerate(labels):
        groups.setdefault(key(x), []).append(i)
    for rows in groups.values():
        n, out = len(rows), int(held[rows].sum())
        expected = int(round(fraction * n))
        if n >= 2:
            expected = min(max(expected, 1), n - 1)
        assert out == expected
    assert (held == stratified_holdout(labels, fraction, seed)).all()  # the same seed, the same rows


def test_the_rows_a_seed_holds_out_stay_the_same_across_versions():
    """Pinned masks: extract's test carve-out and fit's val carve-out of existing caches and runs depend on them."""
    held = stratified_holdout([0, 0, 0, 1, 1, 1, -1, -1, None, 2, 2, 2], 0.34, 0)
    assert held.astype(int).tolist() == [0, 0, 1, 0, 0, 1, 0, 0, 1, 0, 1, 0]
    held = stratified_holdout(["10", "10", "9", "9", -1, -1, "a", "a"], 0.5, 5)
    assert held.astype(int).tolist() == [0, 1, 1, 0, 0, 1, 1, 0]
