"""The demo's posts, generated at run time: pictures, noisy texts and a manifest CSV (SPEC §1)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.demo.scenes import SCENES, draw_scene
from pipeline.demo.texts import make_text

CLASSES = tuple(SCENES)  # the paper's seven semantic locations, in its order
BAD_ROWS = (  # what a real crawl holds and predict must report, not die on: (id suffix, text, image)
    ("missing-image", "周末去商场逛街[哈哈]", "images/deleted-by-author.jpg"),
    ("emoji-only", "😀😀👍 [哈哈] @小明", None),
)


def write_sample(folder: str | Path, n: int, seed: int, *, prefix: str = "post", bad_rows: bool = False,
                 mismatch: float = 0.15) -> Path:
    """n posts, classes balanced and shuffled, into folder/images and folder/posts.csv; returns the manifest.

    Columns id, text, image (relative to the folder), label. A `mismatch` share of posts show a scene
    of another class (people post any picture anywhere), so the image alone cannot always tell. With
    `bad_rows`, two more rows whose image is missing or whose text is emoji only are appended."""
    folder = Path(folder)
    (folder / "images").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % len(CLASSES)
    rng.shuffle(labels)
    rows = []
    for i, c in enumerate(labels):
        label, name = CLASSES[c], f"images/{prefix}-{i:05d}.jpg"
        scene = CLASSES[(c + rng.integers(1, len(CLASSES))) % len(CLASSES)] if rng.random() < mismatch else label
        draw_scene(scene, rng).save(folder / name, quality=90)
        rows.append(dict(id=f"{prefix}-{i:05d}", text=make_text(label, rng), image=name, label=label))
    if bad_rows:
        rows += _bad_rows(prefix, rows)
    path = folder / "posts.csv"
    pd.DataFrame(rows, columns=["id", "text", "image", "label"]).to_csv(path, index=False)
    return path


def _bad_rows(prefix: str, rows: list[dict]) -> list[dict]:
    return [dict(id=f"{prefix}-{suffix}", text=text, image=image or rows[0]["image"], label="")
            for suffix, text, image in BAD_ROWS]
