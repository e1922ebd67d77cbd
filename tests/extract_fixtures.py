"""Test inputs for stage one, built at test time: images in every odd mode, broken files, manifests."""
from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
CLASSES = ("home", "school", "work")
TEXTS = ("今天在家里做饭[哈哈]", "#开学# 学校的食堂 @小明 http://t.cn/abc", "公司加班到十点//@老王:辛苦",
         "周末去商场买衣服", "和朋友看电影", "旅游 拍照 好开心", "这家餐厅的火锅很好吃")


def photo(seed: int, size=(96, 72)) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8), "RGB")


def odd_images(folder: Path) -> dict[str, Path]:
    """One file per image kind a real dataset holds, each readable into a picture."""
    folder.mkdir(parents=True, exist_ok=True)
    base = photo(1)
    paths = {}

    def save(name: str, img: Image.Image, **kw) -> None:
        paths[name] = folder / name
        img.save(paths[name], **kw)

    save("rgb.jpg", base)
    save("palette.png", base.convert("P", palette=Image.Palette.ADAPTIVE))
    p = base.convert("P", palette=Image.Palette.ADAPTIVE)
    p.info["transparency"] = 0
    save("palette_transparent.png", p, transparency=0)
    rgba = base.convert("RGBA")
    alpha = np.repeat(np.linspace(0, 255, base.size[1]).astype(np.uint8)[:, None], base.size[0], axis=1)
    alpha[:8] = 0  # a fully transparent band at the top
    rgba.putalpha(Image.fromarray(alpha, "L"))
    save("rgba.png", rgba)
    save("cmyk.jpg", base.convert("CMYK"))
    save("grey.png", base.convert("L"))
    save("sixteen.png", Image.fromarray(np.full((40, 50), 32896, dtype=np.uint16)))  # 16-bit mid grey
    frames = [photo(s, (60, 40)).convert("P", palette=Image.Palette.ADAPTIVE) for s in (2, 3, 4)]
    save("animated.gif", frames[0], save_all=True, append_images=frames[1:], duration=100, loop=0)
    return paths


def broken_images(folder: Path) -> dict[str, Path]:
    """Files a run must skip, each with its reason kind."""
    folder.mkdir(parents=True, exist_ok=True)
    jpeg = io.BytesIO()
    photo(5, (300, 200)).save(jpeg, "JPEG")
    files = {
        "truncated.jpg": jpeg.getvalue()[: len(jpeg.getvalue()) // 2],
        "not_an_image.jpg": b"this is a text file, not a picture\n" * 20,
        "empty.png": b"",
    }
    for name, data in files.items():
        (folder / name).write_bytes(data)
    return {name: folder / name for name in files} | {"missing.jpg": folder / "missing.jpg"}


def write_manifest(path: Path, rows: list[dict]) -> Path:
    """rows -> a manifest in the format its extension names."""
    frame = pd.DataFrame(rows)
    suffix = path.suffix
    if suffix == ".csv":
        frame.to_csv(path, index=False)
    elif suffix == ".tsv":
        frame.to_csv(path, index=False, sep="\t")
    elif suffix == ".jsonl":
        path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    else:
        frame.to_parquet(path)
    return path


def post_rows(folder: Path, n: int, *, split: bool = False) -> list[dict]:
    """n labelled posts with distinct images written into folder/images (paths relative to folder)."""
    (folder / "images").mkdir(parents=True, exist_ok=True)
    rows = []
    for i in range(n):
        name = f"images/p{i:03d}.jpg"
        photo(100 + i).save(folder / name)
        row = dict(id=f"post-{i:03d}", text=f"{TEXTS[i % len(TEXTS)]} {i}", image=name, label=CLASSES[i % 3])
        if split:
            row["split"] = ("train", "train", "val", "test")[i % 4]
        rows.append(row)
    return rows


def messy_posts(folder: Path) -> tuple[list[dict], dict[str, str | None]]:
    """Posts as a real crawl holds them: odd modes, duplicates, broken files, emoji-only text.

    Returns the manifest rows (split column set) and, per id, the skip kind expected (None: encoded).
    A post is skipped only when it has neither a usable image nor a usable text (SPEC §7): the broken
    pictures come with emoji-only texts; the emoji-only post with a good picture is kept, image only.
    """
    rows = post_rows(folder, 12, split=True)
    expected: dict[str, str | None] = {r["id"]: None for r in rows}
    odd = odd_images(folder / "odd")
    bad = broken_images(folder / "bad")
    photo(50, (600, 400)).save(folder / "huge.png")
    (folder / "copy.jpg").write_bytes((folder / rows[0]["image"]).read_bytes())  # same bytes, other name

    def add(id_: str, image: str, kind: str | None, text: str = "", split: str = "train") -> None:
        text = text or f"在餐厅吃饭 好吃 {id_}"
        rows.append(dict(id=id_, text=text, image=image, label=CLASSES[len(rows) % 3], split=split))
        expected[id_] = kind

    for name, path in odd.items():
        add(f"odd-{name}", str(path.relative_to(folder)), None)
    for name, path in bad.items():
        add(f"bad-{name}", str(path.relative_to(folder)), BAD_KINDS[name], text=NOTHING_LEFT)
    add("huge", "huge.png", "image too large", text=NOTHING_LEFT)
    add("no-image", "", "no image path", text=NOTHING_LEFT)
    add("emoji-only", rows[1]["image"], None, text="😀😀👍 [哈哈] @someone")
    add("dup-image", "copy.jpg", None, text="完全不同的文字 电影院", split="test")  # rows[0] is in train
    photo(51).save(folder / "fresh.jpg")
    add("dup-text", "fresh.jpg", None, text=rows[3]["text"], split="test")
    return rows, expected


NOTHING_LEFT = "👍 [哈哈] @someone http://t.cn/x"  # a text that is empty after cleaning
BAD_KINDS = {"truncated.jpg": "truncated or corrupt image", "not_an_image.jpg": "not an image",
             "empty.png": "empty image file", "missing.jpg": "missing image file"}
