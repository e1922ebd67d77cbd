"""The report's PNG figures, drawn with matplotlib's Agg backend from arrays computed elsewhere."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.report.guidance import short


# class names may be Chinese (e.g. 住宅, 餐饮): the first of these that is installed draws what DejaVu cannot
CJK_FONTS = ("Noto Sans CJK SC", "Noto Sans SC", "Source Han Sans SC", "WenQuanYi Zen Hei", "WenQuanYi Micro Hei",
             "SimHei", "Microsoft YaHei", "PingFang SC", "Heiti SC", "Arial Unicode MS")


def _plt():
    """pyplot on the file-only Agg backend; imported here so that `fit` never loads matplotlib."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt
    from matplotlib import font_manager

    installed = {f.name for f in font_manager.fontManager.ttflist}
    fallback = [f for f in CJK_FONTS if f in installed][:1]
    plt.rcParams["font.sans-serif"] = list(dict.fromkeys(["DejaVu Sans", *fallback, *plt.rcParams["font.sans-serif"]]))
    return plt


def _save(fig, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    _plt().close(fig)
    return path


def accuracy_chart(names: list[str], ours: list[tuple[float, float]], paper: list[float], path: Path,
                   title: str) -> Path:
    """Horizontal bars: our test accuracy % (mean, std) per variant, with the paper's % as a marker."""
    plt = _plt()
    y = np.arange(len(names))
    fig, ax = plt.subplots(figsize=(8, max(3.5, 0.45 * len(names) + 1.5)))
    means, stds = zip(*ours)
    ax.barh(y, means, xerr=np.nan_to_num(stds), color="tab:blue", alpha=0.8, capsize=3, label="ours (mean ± std)")
    ax.scatter(paper, y, marker="D", color="tab:red", zorder=3, label="paper (their data, single run)")
    ax.set_yticks(y, names)
    ax.invert_yaxis()
    ax.set_xlabel("test accuracy %")
    ax.set_title(title)
    ax.legend(loc="lower right", fontsize=8)
    return _save(fig, path)


def confusion_figure(counts: np.ndarray, share: np.ndarray, labels: list[str], path: Path, title: str) -> Path:
    """Confusion matrix: colour = share of the true class (row), text = count."""
    plt = _plt()
    k = len(labels)
    fig, ax = plt.subplots(figsize=(1.0 * k + 2.5, 0.9 * k + 2))
    im = ax.imshow(share, cmap="Blues", vmin=0.0, vmax=1.0)
    for i in range(k):
        for j in range(k):
            ax.text(j, i, str(counts[i, j]), ha="center", va="center", fontsize=8,
                    color="white" if share[i, j] > 0.5 else "black")
    ax.set_xticks(range(k), labels, rotation=45, ha="right")
    ax.set_yticks(range(k), labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    fig.colorbar(im, ax=ax, fraction=0.046, label="share of the true class")
    return _save(fig, path)


def learning_curves(curves: list[tuple[int, pd.DataFrame]], path: Path, title: str) -> Path:
    """Loss and accuracy per epoch, train vs val, one thin line per seed."""
    plt = _plt()
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for ax, metric in zip(axes, ("loss", "accuracy")):
        for i, (seed, table) in enumerate(curves):
            lines = (("train (running, before each update)", "tab:blue", f"running_train_{metric}"),
                     ("val", "tab:orange", f"val_{metric}"))
            for split, colour, column in lines:
                label = split if i == 0 else None
                ax.plot(table["epoch"], table[column], color=colour, alpha=0.7, marker=".", label=label)
        ax.set_xlabel("epoch")
        ax.set_ylabel(metric)
        ax.legend()
        ax.grid(alpha=0.3)
    fig.suptitle(title)
    return _save(fig, path)


def tsne_figure(xy: np.ndarray, label: np.ndarray, labels: list[str], path: Path, title: str) -> Path:
    """2-D t-SNE map of M_fuse, one colour per true class, with a legend of class names."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 6))
    cmap = plt.get_cmap("tab10")
    for c, name in enumerate(labels):
        at = label == c
        if at.any():
            ax.scatter(xy[at, 0], xy[at, 1], s=10, color=cmap(c % 10), label=name, alpha=0.8)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(title)
    ax.legend(markerscale=2, fontsize=8, loc="best")
    return _save(fig, path)


def guidance_figure(names: list[str], peaks: tuple[list[float], list[float]], ratios: tuple[list[float], list[float]],
                    dim: int, thresholds: tuple[float, float], path: Path, title: str) -> Path:
    """Left: max·D of P^m and of P^e's rows per variant, bars from 1 (= uniform) on a log axis up to D (= one
    channel). Right: the gradient ratios text ← image and image ← text on a log axis. Each bar is labelled with
    its number; dashed lines: the report's flat / deaf thresholds."""
    plt = _plt()
    y = np.arange(len(names))
    fig, axes = plt.subplots(1, 2, figsize=(12, max(3.0, 0.5 * len(names) + 1.6)), sharey=True)
    floor = min([x for x in (*ratios[0], *ratios[1]) if x > 0] + [thresholds[1]]) / 10
    panels = ((axes[0], peaks, ("P^m", "P^e rows"), "max·D (1 = uniform, D = one channel)", 1.0, thresholds[0]),
              (axes[1], ratios, ("text ← image", "image ← text"), "gradient ratio (0 = cannot reach)", floor,
               thresholds[1]))
    for ax, pair, labels, xlabel, base, threshold in panels:
        for offset, values, label, colour in ((-0.2, pair[0], labels[0], "tab:blue"),
                                              (0.2, pair[1], labels[1], "tab:orange")):
            values = np.maximum(np.asarray(values, dtype=float), base)
            ax.barh(y + offset, values - base, left=base, height=0.4, color=colour, label=label)
            for yy, x in zip(y + offset, values):
                ax.text(x, yy, f" {short(x)}", va="center", fontsize=7)
        ax.axvline(threshold, color="gray", linestyle="--", linewidth=1)
        ax.set_xscale("log")
        ax.set_xlabel(xlabel)
        ax.legend(loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=2, fontsize=8, frameon=False)
        ax.grid(alpha=0.3, axis="x")
    axes[0].set_xlim(0.9, dim * 3)
    axes[1].set_xlim(floor, 5 * max([*ratios[0], *ratios[1], thresholds[1]]))  # room for the labels
    axes[0].axvline(dim, color="gray", linestyle=":", linewidth=1)
    axes[0].set_yticks(y, names)
    axes[0].invert_yaxis()
    fig.suptitle(title)
    return _save(fig, path)


def kinds_figure(names: list[str], kinds: tuple[str, ...], accuracy: list[list[tuple[float, float] | None]],
                 path: Path, title: str) -> Path:
    """Grouped bars: test accuracy % (mean, std) of each variant (a group) on each post kind (a colour), each
    labelled with its number; a kind without test posts gets no bar, and "— no posts" at its place."""
    plt = _plt()
    from matplotlib.patches import Patch

    height = 0.8 / len(kinds)
    fig, ax = plt.subplots(figsize=(8, max(3.5, 0.3 * len(names) * len(kinds) + 1.8)))
    colours = [plt.get_cmap("tab10")(j) for j in range(len(kinds))]
    for i, row in enumerate(accuracy):
        for j, cell in enumerate(row):
            yy = i - 0.4 + (j + 0.5) * height
            if cell is None:
                ax.text(1, yy, "— no posts", va="center", fontsize=7, color=colours[j])
                continue
            ax.barh(yy, cell[0], xerr=np.nan_to_num(cell[1]), height=height, color=colours[j], capsize=2)
            ax.text(min(cell[0], 88) + 1, yy, f"{cell[0]:.1f}", va="center", fontsize=7)
    ax.set_yticks(np.arange(len(names)), names)
    ax.set_ylim(len(names) - 0.5, -0.5)  # the first variant on top
    ax.set_xlim(0, 100)
    ax.set_xlabel("test accuracy %")
    ax.set_title(title)
    ax.legend(handles=[Patch(color=c, label=k) for c, k in zip(colours, kinds)], loc="lower center",
              bbox_to_anchor=(0.5, 1.06), ncol=len(kinds), fontsize=8, frameon=False)
    return _save(fig, path)
