"""Metrics as plain functions of saved label/prediction arrays, and the registry of the test metrics a run reports.

A new test metric is one `SplitMetric(...)` entry in TEST_METRICS: fit and the probe compute it through
`split_scores`, metrics.json carries it as `test_<name>`, `sgmft report` gives it a column, and the
terminal line of a run shows it. numpy only: `sgmft fit` pays for no scikit-learn import.

Which classes count: a class *counts* on a split when it is a true label or a prediction there (the
labels scikit-learn's f1_score(average="macro") uses by default). macro-F1 is the mean F1 of the counted
classes, and the report's per-class table marks the others "—", so the two always agree.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np


def accuracy(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    return float(np.mean(np.asarray(y_true) == np.asarray(y_pred))) if len(y_true) else float("nan")


def confusion(y_true: np.ndarray, y_pred: np.ndarray, num_classes: int) -> np.ndarray:
    """[num_classes, num_classes] counts; row = true class, column = predicted (ids outside 0..k-1 ignored)."""
    y_true, y_pred = np.asarray(y_true, dtype=np.int64), np.asarray(y_pred, dtype=np.int64)
    ok = (y_true >= 0) & (y_true < num_classes) & (y_pred >= 0) & (y_pred < num_classes)
    counts = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(counts, (y_true[ok], y_pred[ok]), 1)
    return counts


def per_class(y_true: np.ndarray, y_pred: np.ndarray, num_classes: int) -> dict[str, np.ndarray]:
    """precision, recall, f1, support, counted per class id 0..num_classes-1 (0 where a ratio has no denominator).

    `counted` is True where the class is a true label or a prediction: the classes macro-F1 averages."""
    counts = confusion(y_true, y_pred, num_classes)
    tp = np.diag(counts).astype(float)
    predicted, support = counts.sum(axis=0), counts.sum(axis=1)
    ratio = lambda a, b: np.divide(a, b, out=np.zeros(num_classes), where=b > 0)  # noqa: E731
    precision, recall = ratio(tp, predicted), ratio(tp, support)
    f1 = ratio(2 * tp, predicted + support)  # = 2PR / (P + R), 0 where the class is neither true nor predicted
    return {"precision": precision, "recall": recall, "f1": f1, "support": support, "counted": predicted + support > 0}


def macro_f1(y_true: np.ndarray, y_pred: np.ndarray, num_classes: int) -> float:
    """Mean F1 of the counted classes (true or predicted: per_class's `counted`); 0 when none counts."""
    scores = per_class(y_true, y_pred, num_classes)
    counted = scores["counted"]
    return float(np.mean(scores["f1"][counted])) if counted.any() else 0.0


def log_softmax(scores: np.ndarray) -> np.ndarray:
    """Row-wise log-probabilities of logits (or of log-probabilities, which it leaves as they are)."""
    scores = np.asarray(scores, dtype=np.float64)
    top = np.max(scores, axis=1, keepdims=True)
    top = np.where(np.isfinite(top), top, 0.0)
    return scores - top - np.log(np.exp(scores - top).sum(axis=1, keepdims=True))


def softmax(scores: np.ndarray) -> np.ndarray:
    """Row-wise probabilities of logits (or of log-probabilities); every row sums to 1."""
    return np.exp(log_softmax(scores))


def cross_entropy(y_true: np.ndarray, scores: np.ndarray) -> float:
    """Mean negative log-probability of the true class (eq. 19)."""
    if not len(y_true):
        return float("nan")
    return float(-np.mean(log_softmax(scores)[np.arange(len(y_true)), np.asarray(y_true)]))


@dataclass(frozen=True)
class SplitMetric:
    """A number every run reports on its test split."""

    name: str  # metrics.json key is test_<name>
    title: str  # column heading in the report's tables
    words: str  # how a sentence names it: "test accuracy"
    compute: Callable[[np.ndarray, np.ndarray, np.ndarray, int], float]  # (y_true, y_pred, scores, classes)
    percent: bool = True  # shown ×100 (as %) in the report's tables
    in_tables: bool = True  # a column of the report's comparison tables
    in_summary: bool = True  # on the terminal line of a finished run

    @property
    def key(self) -> str:
        return f"test_{self.name}"


TEST_ACCURACY = SplitMetric("accuracy", "test acc % (mean ± std)", "test accuracy", lambda y, p, s, k: accuracy(y, p))
TEST_METRICS = (
    TEST_ACCURACY,
    SplitMetric("macro_f1", "macro-F1 %", "macro-F1", lambda y, p, s, k: macro_f1(y, p, k)),
    SplitMetric("loss", "test loss", "test loss", lambda y, p, s, k: cross_entropy(y, s), percent=False,
                in_tables=False, in_summary=False),
)


def split_scores(y_true: np.ndarray, scores: np.ndarray, num_classes: int) -> dict[str, float]:
    """Every registered test metric of class scores [N, C] (logits or log-probabilities) against y_true."""
    y_true = np.asarray(y_true)
    y_pred = np.asarray(scores).argmax(axis=1)
    return {m.key: m.compute(y_true, y_pred, scores, num_classes) for m in TEST_METRICS}


# post kinds (SPEC §7): the first three partition the posts; "several images" (two or more, with or without a
# text) cuts across them
TEXT_AND_IMAGE, TEXT_ONLY, IMAGE_ONLY, SEVERAL_IMAGES = "text+image", "text only", "image only", "several images"
POST_KINDS = (TEXT_AND_IMAGE, TEXT_ONLY, IMAGE_ONLY, SEVERAL_IMAGES)
KIND_METRICS = ("accuracy", "macro_f1")  # what metrics.json's by_kind holds per kind, beside its number of posts


def post_kinds(has_text: np.ndarray, has_image: np.ndarray, image_counts: np.ndarray) -> dict[str, np.ndarray]:
    """A boolean mask [N] of the posts of each kind of POST_KINDS."""
    has_text, has_image = np.asarray(has_text, dtype=bool), np.asarray(has_image, dtype=bool)
    return {TEXT_AND_IMAGE: has_text & has_image, TEXT_ONLY: has_text & ~has_image,
            IMAGE_ONLY: ~has_text & has_image, SEVERAL_IMAGES: np.asarray(image_counts) >= 2}


def scores_by_kind(y_true: np.ndarray, scores: np.ndarray, kinds: dict[str, np.ndarray],
                   num_classes: int) -> dict[str, dict]:
    """{kind: {posts, accuracy, macro_f1}} of class scores [N, C]; accuracy and macro-F1 are None (not 0) for a
    kind without posts."""
    y_true, y_pred = np.asarray(y_true), np.asarray(scores).argmax(axis=1)
    out = {}
    for kind, mask in kinds.items():
        n = int(mask.sum())
        out[kind] = dict(posts=n, accuracy=accuracy(y_true[mask], y_pred[mask]) if n else None,
                         macro_f1=macro_f1(y_true[mask], y_pred[mask], num_classes) if n else None)
    return out
