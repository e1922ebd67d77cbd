"""pipeline.metrics on hand-computed cases, and the report's per-class table agreeing with macro-F1."""
from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

from pipeline import metrics
from pipeline.report.analysis import mean_per_class
from pipeline.report.tables import per_class_table

# 5 posts, 4 classes; class 3 is neither a true label nor a prediction.
Y_TRUE = np.array([0, 0, 1, 1, 2])
Y_PRED = np.array([0, 1, 1, 1, 0])
# by hand: class 0 tp 1 of 2 predicted, 2 true -> P 1/2 R 1/2 F1 1/2; class 1 tp 2 of 3 predicted, 2 true ->
# P 2/3 R 1 F1 4/5; class 2 tp 0, 0 predicted, 1 true -> 0 0 0; class 3 -> 0 0 0, not counted.


def test_accuracy_by_hand():
    assert metrics.accuracy(Y_TRUE, Y_PRED) == pytest.approx(3 / 5)
    assert metrics.accuracy([1, 2], [1, 2]) == 1.0
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no mean of an empty array (numpy warns): nan by the rule
        assert math.isnan(metrics.accuracy(np.array([]), np.array([])))


def test_confusion_rows_are_true_columns_predicted_and_ignores_foreign_ids():
    counts = metrics.confusion(np.array([0, 0, 1, 1, 2, 4, 5, -1]), np.array([0, 1, 1, 1, 0, 0, 0, 1]), 4)
    expected = np.zeros((4, 4), dtype=np.int64)
    expected[0, 0], expected[0, 1], expected[1, 1], expected[2, 0] = 1, 1, 2, 1
    np.testing.assert_array_equal(counts, expected)
    assert counts.dtype.kind == "i"  # counts, as the report prints them
    assert metrics.confusion(np.array([3]), np.array([4]), 4).sum() == 0  # a predicted id outside 0..k-1
    # labels read back as floats (a CSV column, a float array) count as their class ids
    as_float = metrics.confusion(np.array([0.0, 1.0, 1.0]), np.array([1.0, 1.0, 0.0]), 2)
    np.testing.assert_array_equal(as_float, [[0, 1], [1, 1]])


def test_per_class_by_hand():
    s = metrics.per_class(Y_TRUE, Y_PRED, 4)
    np.testing.assert_allclose(s["precision"], [1 / 2, 2 / 3, 0, 0])
    np.testing.assert_allclose(s["recall"], [1 / 2, 1, 0, 0])
    np.testing.assert_allclose(s["f1"], [1 / 2, 4 / 5, 0, 0])
    np.testing.assert_array_equal(s["support"], [2, 2, 1, 0])
    np.testing.assert_array_equal(s["counted"], [True, True, True, False])


def test_per_class_counts_a_class_that_is_only_predicted():
    s = metrics.per_class(np.array([0, 0]), np.array([0, 1]), 3)
    np.testing.assert_array_equal(s["counted"], [True, True, False])
    np.testing.assert_allclose(s["precision"], [1, 0, 0])
    np.testing.assert_allclose(s["f1"], [2 / 3, 0, 0])


def test_macro_f1_by_hand_and_as_scikit_learn():
    from sklearn.metrics import f1_score

    assert metrics.macro_f1(Y_TRUE, Y_PRED, 4) == pytest.approx((1 / 2 + 4 / 5 + 0) / 3)
    assert metrics.macro_f1(Y_TRUE, Y_PRED, 4) == pytest.approx(f1_score(Y_TRUE, Y_PRED, average="macro"))
    assert metrics.macro_f1(np.array([0, 1]), np.array([0, 1]), 7) == 1.0  # absent classes do not count
    assert metrics.macro_f1(np.array([], dtype=int), np.array([], dtype=int), 3) == 0.0


def test_macro_f1_is_the_mean_of_the_counted_per_class_f1():
    rng = np.random.default_rng(0)
    for _ in range(20):
        y, p = rng.integers(0, 4, 12), rng.integers(0, 4, 12)  # often leaves a class out of both
        s = metrics.per_class(y, p, 6)
        assert metrics.macro_f1(y, p, 6) == pytest.approx(s["f1"][s["counted"]].mean())


def test_log_softmax_softmax_and_cross_entropy_by_hand():
    logits = np.array([[0.0, 0.0], [math.log(3), 0.0]])  # probabilities (1/2, 1/2), (3/4, 1/4)
    np.testing.assert_allclose(metrics.softmax(logits), [[0.5, 0.5], [0.75, 0.25]])
    np.testing.assert_allclose(metrics.log_softmax(logits), np.log([[0.5, 0.5], [0.75, 0.25]]))
    assert metrics.cross_entropy(np.array([1, 1]), logits) == pytest.approx((math.log(2) + math.log(4)) / 2)
    assert metrics.cross_entropy(np.array([0, 0]), logits) == pytest.approx((math.log(2) + math.log(4 / 3)) / 2)
    assert math.isnan(metrics.cross_entropy(np.array([], dtype=int), np.zeros((0, 2))))


def test_log_softmax_keeps_log_probabilities_and_large_logits():
    with np.errstate(divide="ignore"):
        log_p = np.log(np.array([[0.2, 0.8, 0.0]]))  # a probe's -inf for a class absent from train
        np.testing.assert_allclose(metrics.log_softmax(log_p), log_p)
    np.testing.assert_allclose(metrics.log_softmax(np.array([[1000.0, 0.0]])), [[0.0, -1000.0]])
    np.testing.assert_allclose(metrics.softmax(np.array([[-1000.0, -1000.0]])), [[0.5, 0.5]])
    rows = metrics.log_softmax(np.array([[1000.0, 0.0], [0.0, -1.0]]))  # each row shifted by its own max
    np.testing.assert_allclose(rows[1], np.log([1 / (1 + math.exp(-1)), math.exp(-1) / (1 + math.exp(-1))]))
    single = np.array([[0.0, 1e-7]], dtype=np.float32)  # float32 logits are computed in float64
    assert metrics.log_softmax(single).dtype == np.float64
    np.testing.assert_allclose(metrics.softmax(single)[0, 1] - 0.5, 2.5e-8, rtol=1e-3)


def test_split_scores_reports_every_registered_metric_of_the_argmax():
    scores = np.array([[2.0, 0.0, 0.0], [0.0, 2.0, 0.0], [0.0, 2.0, 0.0], [0.0, 0.0, 1.0]])
    y = np.array([0, 1, 0, 0])  # predictions 0 1 1 2
    out = metrics.split_scores(y, scores, 3)
    assert set(out) == {"test_accuracy", "test_macro_f1", "test_loss"}
    assert out["test_accuracy"] == pytest.approx(2 / 4)
    # class 0: P 1 R 1/3 F1 1/2; class 1: P 1/2 R 1 F1 2/3; class 2: predicted once, never true -> 0
    assert out["test_macro_f1"] == pytest.approx((1 / 2 + 2 / 3 + 0) / 3)
    assert out["test_loss"] == pytest.approx(metrics.cross_entropy(y, scores))


def test_registry_keys_and_what_the_tables_show():
    by_name = {m.name: m for m in metrics.TEST_METRICS}
    assert [m.key for m in metrics.TEST_METRICS] == ["test_accuracy", "test_macro_f1", "test_loss"]
    assert by_name["accuracy"] is metrics.TEST_ACCURACY
    assert (by_name["loss"].percent, by_name["loss"].in_tables, by_name["loss"].in_summary) == (False, False, False)
    assert all(by_name[n].percent and by_name[n].in_tables and by_name[n].in_summary for n in ("accuracy", "macro_f1"))


def test_per_class_table_marks_uncounted_classes_and_agrees_with_macro_f1():
    labels = ["a", "b", "c", "d"]
    outputs = [dict(label=Y_TRUE, pred=Y_PRED), dict(label=Y_TRUE, pred=np.array([0, 0, 1, 3, 2]))]
    mean = mean_per_class(outputs, 4)
    # run 2: class 0 F1 1, class 1 P 1 R 1/2 F1 2/3, class 2 F1 1, class 3 predicted once (never true): F1 0
    np.testing.assert_allclose(mean["f1"], [(1 / 2 + 1) / 2, (4 / 5 + 2 / 3) / 2, (0 + 1) / 2, 0])  # class 3: only run 2 counts
    runs_macro = [metrics.macro_f1(o["label"], o["pred"], 4) for o in outputs]
    one = mean_per_class(outputs[:1], 4)
    assert np.isnan(one["f1"][3]) and not one["counted"][3]
    assert np.nanmean(one["f1"]) == pytest.approx(runs_macro[0])  # the table's counted F1s average to macro-F1
    table = per_class_table(labels, one, 1)
    assert "| d | 0.00 | 0.00 | — | 0 |" in table
    assert "| b | 66.67 | 100.00 | 80.00 | 2 |" in table


def test_post_kinds_partition_the_posts_and_several_images_cuts_across():
    kinds = metrics.post_kinds([1, 1, 0, 0, 1], [1, 0, 1, 0, 1], [1, 0, 3, 0, 2])
    assert list(kinds) == list(metrics.POST_KINDS) == ["text+image", "text only", "image only", "several images"]
    assert kinds["text+image"].tolist() == [True, False, False, False, True]
    assert kinds["text only"].tolist() == [False, True, False, False, False]
    assert kinds["image only"].tolist() == [False, False, True, False, False]
    assert kinds["several images"].tolist() == [False, False, True, False, True]
    assert all(k.dtype == bool for k in kinds.values())


def test_scores_by_kind_on_a_hand_computed_case():
    """Six posts, three classes, predicted 0 1 1 2 0 0 for true 0 1 2 2 1 0. text only: post 3 (right);
    image only: none -> None, not 0; several images: posts 2 and 5 (true 2 0, predicted 1 0): accuracy 1/2,
    F1 of the counted classes 0, 1, 2 = 1, 0, 0 -> 1/3."""
    y_true = np.array([0, 1, 2, 2, 1, 0])
    scores = np.eye(3)[[0, 1, 1, 2, 0, 0]] * 5.0 + 0.1
    kinds = metrics.post_kinds([1, 1, 1, 1, 0, 1], [1, 1, 1, 0, 0, 1], [1, 1, 2, 0, 0, 4])
    assert not any(k[4] for k in kinds.values())  # post 4 has neither a text nor an image: in no kind
    got = metrics.scores_by_kind(y_true, scores, kinds, 3)
    assert list(got) == list(metrics.POST_KINDS)
    assert got["text+image"]["posts"] == 4  # posts 0, 1, 2 and 5
    want = {"text only": dict(posts=1, accuracy=1.0, macro_f1=1.0),
            "image only": dict(posts=0, accuracy=None, macro_f1=None),
            "several images": dict(posts=2, accuracy=0.5, macro_f1=pytest.approx(1 / 3))}
    for kind, figures in want.items():
        assert got[kind] == figures, kind
    # text+image: true 0 1 2 0, predicted 0 1 1 0 -> accuracy 3/4; F1 class 0 = 1, class 1 = 2/3, class 2 = 0
    assert got["text+image"]["accuracy"] == 0.75
    assert got["text+image"]["macro_f1"] == pytest.approx((1 + 2 / 3 + 0) / 3)
