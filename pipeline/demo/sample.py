"""The demo's posts, generated at run time: pictures, noisy texts and a manifest CSV (SPEC §1, §7).

Like a real stream, some posts have no picture, some a text that is only noise (emoticons, a mention,
a link: empty once cleaned), and some several pictures."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.demo.scenes import SCENES, draw_scene
from pipeline.demo.texts import EMOTICONS, NAMES, make_text

CLASSES = tuple(SCENES)  # the paper's seven semantic locations, in its order
BAD_ROWS = (  # what a real crawl holds and predict must handle, not die on: (id suffix, text, image)
    ("missing-image", "周末去商场逛街[哈哈]", "images/deleted-by-author.jpg"),  # predicted from its text
    ("emoji-only", "😀😀👍 [哈哈] @小明", None),  # predicted from its picture
    ("nothing", "[哈哈] @小明 http://t.cn/x", "images/deleted-by-author.jpg"),  # skipped, with its reason
)
TEXT_ONLY, IMAGE_ONLY, SEVERAL = 0.1, 0.1, 0.15  # shares of posts with no picture, a noise-only text, 2-3 pictures
MAX_PICTURES = 3  # a few: every picture costs the demo a decode and an encode


def write_sample(folder: str | Path, n: int, seed: int, *, prefix: str = "post", bad_rows: bool = False,
                 mismatch: float = 0.15) -> Path:
    """n posts, classes balanced and shuffled, into folder/images and folder/posts.csv; returns the manifest.

    Columns id, text, image (relative to the folder; empty for a text-only post), images (every picture
    of a post with several, `|`-separated), label. A `mismatch` share of pictures show a scene of another
    class (people post any picture anywhere), so the image alone cannot always tell. Shares TEXT_ONLY,
    IMAGE_ONLY and SEVERAL of the posts take those shapes. With `bad_rows`, rows whose image is missing,
    whose text is emoji only, or both, are appended."""
    folder = Path(folder)
    (folder / "images").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    shapes = np.random.default_rng([seed, 1])  # its own stream: the posts' first pictures and texts stay as drawn
    labels = np.arange(n) % len(CLASSES)
    rng.shuffle(labels)
    rows = []
    for i, c in enumerate(labels):
        label, post = CLASSES[c], f"{prefix}-{i:05d}"
        first = _picture(label, rng, mismatch)
        text = make_text(label, rng)
        kind = shapes.random()
        extra = int(shapes.integers(1, MAX_PICTURES)) if kind >= 1 - SEVERAL else 0
        pictures = [] if kind < TEXT_ONLY else [first] + [_picture(label, shapes, mismatch) for _ in range(extra)]
        names = [f"images/{post}{f'-{k}' if k else ''}.jpg" for k in range(len(pictures))]
        for picture, name in zip(pictures, names):
            picture.save(folder / name, quality=90)
        if TEXT_ONLY <= kind < TEXT_ONLY + IMAGE_ONLY:
            text = noise_only(shapes)
        rows.append(dict(id=post, text=text, image=names[0] if names else "",
                         images="|".join(names) if len(names) > 1 else "", label=label))
    if bad_rows:
        rows += _bad_rows(prefix, rows)
    path = folder / "posts.csv"
    pd.DataFrame(rows, columns=["id", "text", "image", "images", "label"]).to_csv(path, index=False)
    return path


def _picture(label: str, rng: np.random.Generator, mismatch: float):
    scene = CLASSES[(CLASSES.index(label) + rng.integers(1, len(CLASSES))) % len(CLASSES)] \
        if rng.random() < mismatch else label
    return draw_scene(scene, rng)


def noise_only(rng: np.random.Generator) -> str:
    """A post's text that cleaning empties: emoticons, a mention, a link."""
    return f"{EMOTICONS[int(rng.integers(len(EMOTICONS)))] * 2} @{NAMES[int(rng.integers(len(NAMES)))]} http://t.cn/a1"


def _bad_rows(prefix: str, rows: list[dict]) -> list[dict]:
    first = next(r["image"] for r in rows if r["image"])
    return [dict(id=f"{prefix}-{suffix}", text=text, image=image or first, images="", label="")
            for suffix, text, image in BAD_ROWS]
