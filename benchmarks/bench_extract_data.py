"""The real posts the extraction benchmark runs on, read from ../shared/data at run time (never copied), and the
FLOPs one post costs the encoders, counted by torch on the meta device (no weights, no time)."""
from __future__ import annotations

import contextlib
import io
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import torch
from PIL import Image
from torch.utils.flop_counter import FlopCounterMode

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
WEIBO_TEXT = SHARED_DATA / "weibo_text" / "weibo_senti_sample.csv"
WEIBO_POSTS = SHARED_DATA / "weibo_multimodal" / "posts.csv"


@dataclass(frozen=True)
class Posts:
    """One benchmark's input: a manifest file (all rows in split train) and its rows in manifest order."""

    name: str
    manifest: Path
    texts: list[str]  # raw texts
    images: list[str]  # absolute image paths


def weibo_texts(folder: Path, rows: int | None = None) -> Posts:
    """The real Weibo texts; every row gets the same small real image (decoded per row, encoded once)."""
    texts = pd.read_csv(WEIBO_TEXT, dtype=str, keep_default_na=False)["review"].tolist()[:rows]
    image = str(min((SHARED_DATA / "weibo_multimodal" / "images").glob("*.jpg"), key=lambda p: p.stat().st_size))
    return _write(folder, "weibo_text", texts, [image] * len(texts))


def weibo_posts(folder: Path, scale: int = 1) -> Posts:
    """The real Weibo text+image posts; with scale k > 1, k copies of each, every copy with its own image file
    (the picture cropped by its copy number, so decoding and encoding are real work) and text."""
    frame = pd.read_csv(WEIBO_POSTS, dtype=str, keep_default_na=False)
    texts = frame["text"].tolist()
    images = [str(WEIBO_POSTS.parent / p) for p in frame["image"]]
    if scale > 1:
        texts = [f"{t} {k}" for k in range(scale) for t in texts]
        images = [_cropped(folder / "images", path, k) for k in range(scale) for path in images]
    return _write(folder, "weibo_multimodal", texts, images)


def _cropped(folder: Path, path: str, k: int) -> str:
    folder.mkdir(parents=True, exist_ok=True)
    out = folder / f"{k}-{Path(path).name}"
    with Image.open(path) as img:
        img.convert("RGB").crop((k % 7, k // 7 % 7, img.width, img.height)).save(out, quality=90)
    return str(out)


def _write(folder: Path, name: str, texts: list[str], images: list[str]) -> Posts:
    folder.mkdir(parents=True, exist_ok=True)
    manifest = folder / f"{name}.csv"
    pd.DataFrame(dict(id=[f"{name}-{k}" for k in range(len(texts))], text=texts, image=images,
                      split="train")).to_csv(manifest, index=False)
    return Posts(name, manifest, texts, images)


def encoder_flops(model: str, lengths: list[int]) -> dict:
    """FLOPs (2 per multiply-add) of encode_image on one image, and of encode_text on each token length."""
    from cn_clip.clip import utils as cn_utils

    info = cn_utils._MODEL_INFO[model]
    with torch.device("meta"), contextlib.redirect_stdout(io.StringIO()):
        clip = cn_utils.create_model(info["struct"]).eval()
    side = info["input_resolution"]
    image = _count(lambda: clip.encode_image(torch.empty(1, 3, side, side, device="meta")))
    text = {n: _count(lambda: clip.encode_text(torch.ones(1, n, dtype=torch.long, device="meta")))
            for n in sorted(set(lengths))}
    return dict(image=image, text_by_length=text)


def _count(fn) -> int:
    with FlopCounterMode(display=False) as counter:
        fn()
    return counter.get_total_flops()
