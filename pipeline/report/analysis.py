"""What the report computes from saved test arrays: per-class scores, confusion counts, a t-SNE map."""
from __future__ import annotations

import numpy as np

from pipeline.metrics import confusion, per_class
from pipeline.report.runs import Run

TSNE_MAX_POINTS = 5000  # t-SNE is O(N log N) but slow beyond this; a seeded sample is drawn above it


def with_outputs(runs: tuple[Run, ...] | list[Run]) -> list[tuple[Run, dict[str, np.ndarray]]]:
    """(run, its test_outputs.npz) for the runs that saved one."""
    pairs = [(run, run.outputs()) for run in runs]
    return [(run, out) for run, out in pairs if out is not None]


def mean_per_class(outputs: list[dict[str, np.ndarray]], num_classes: int) -> dict[str, np.ndarray]:
    """precision, recall, f1 averaged over runs; support of one run (the test split is the same).

    A class's f1 is averaged over the runs where it counts (pipeline.metrics), NaN where it counts in none."""
    scores = [per_class(o["label"], o["pred"], num_classes) for o in outputs]
    mean = {k: np.mean([s[k] for s in scores], axis=0) for k in ("precision", "recall")}
    counted = np.array([s["counted"] for s in scores])  # [runs, classes]
    f1 = np.array([s["f1"] for s in scores])
    n = counted.sum(axis=0)
    mean["f1"] = np.divide((f1 * counted).sum(axis=0), n, out=np.full(num_classes, np.nan), where=n > 0)
    return {**mean, "support": scores[0]["support"], "counted": n > 0}


def summed_confusion(outputs: list[dict[str, np.ndarray]], num_classes: int) -> np.ndarray:
    """Confusion counts [true, predicted] summed over runs."""
    return sum(confusion(o["label"], o["pred"], num_classes) for o in outputs)


def tsne_map(fusion: np.ndarray, label: np.ndarray, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(2-D t-SNE coordinates [n, 2], their labels) of M_fuse; perplexity shrinks for small n."""
    from sklearn.manifold import TSNE

    if len(fusion) > TSNE_MAX_POINTS:
        keep = np.sort(np.random.default_rng(seed).choice(len(fusion), TSNE_MAX_POINTS, replace=False))
        fusion, label = fusion[keep], label[keep]
    perplexity = float(min(30.0, max(2.0, (len(fusion) - 1) / 3)))
    xy = TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed).fit_transform(
        fusion.astype(np.float64)
    )
    return xy, label


def row_share(counts: np.ndarray) -> np.ndarray:
    """Each row of a confusion matrix as shares of its true class (0 for a class with no posts)."""
    totals = counts.sum(axis=1, keepdims=True)
    return np.divide(counts, totals, out=np.zeros(counts.shape, dtype=float), where=totals > 0)
