"""Stage one's reader: worker processes turn each post into an Item — cleaned, tokenized, its image decoded and
transformed — and collate a loader batch that carries each distinct image once.

Each post comes back either encodable or with the reason it is not: collate never drops one.
"""
from __future__ import annotations

import time
from collections import OrderedDict
from dataclasses import dataclass, field, replace
from typing import Callable, Sequence

import torch
from torch.utils.data import Dataset

from pipeline.extract.images import MAX_BYTES, ImageProblem, decode_rgb, read_file
from pipeline.extract.manifest import Post

RECENT_IMAGES = 16  # decoded images each decoding process keeps, by sha1 (16 x 0.6 MB at 224 x 224)


@dataclass
class Item:
    """One post after the worker: ready to encode (reason None) or not, and why."""

    id: str
    text_clean: str
    tokens: list[int] | None  # cn_clip token ids, unpadded
    image_key: str | None  # sha1 of the image file
    pixels: torch.Tensor | None  # [3, R, R], the model's input
    reason: str | None  # "<kind>: <detail>" when the row cannot be encoded
    seconds: float  # worker time spent on this post


@dataclass(frozen=True)
class Prepare:
    """Worker side: one post -> one Item."""

    clean: Callable[[str], str]  # raw text -> T_user (textprep.TextCleaner)
    tokenize: Callable[[str], list[int]]  # T_user -> token ids (encoders.token_ids at a context length)
    transform: Callable  # RGB image -> [3, R, R] (the encoder's cn_clip transform)
    max_pixels: int  # larger images are skipped
    empty_text: str  # "skip" or "encode"
    max_bytes: int = MAX_BYTES  # larger image files are skipped unread
    recent: OrderedDict = field(default_factory=OrderedDict, compare=False, repr=False)  # sha1 -> pixels, this process's

    def __call__(self, post: Post) -> Item:
        start = time.perf_counter()
        text = self.clean(post.text)
        reasons, pixels, key = [], None, None
        try:
            pixels, key = self.pixels(post.image)
        except ImageProblem as e:
            reasons.append(str(e))
        except Exception as e:  # a decoder bug on one file must not stop 17,000 others
            reasons.append(f"cannot transform image: {post.image} ({type(e).__name__}: {e})")
        if not text and self.empty_text == "skip":
            reasons.append(f"empty text after cleaning: raw text {post.text[:30]!r}")
        tokens = None if reasons else self.tokenize(text)
        return Item(post.id, text, tokens, key, None if reasons else pixels, "; ".join(reasons) or None,
                    time.perf_counter() - start)

    def pixels(self, path: str) -> tuple[torch.Tensor, str]:
        """The model's input for an image file, and the file's sha1. A file identical to one of the last
        RECENT_IMAGES this process read (a repost's picture) is not decoded again."""
        data, key = read_file(path, self.max_bytes)
        if key in self.recent:
            self.recent.move_to_end(key)
            return self.recent[key], key
        pixels = self.recent[key] = self.transform(decode_rgb(data, path, self.max_pixels))
        if len(self.recent) > RECENT_IMAGES:
            self.recent.popitem(last=False)
        return pixels, key


class PostDataset(Dataset):
    def __init__(self, posts: Sequence[Post], prepare: Prepare):
        self.posts, self.prepare = posts, prepare

    def __len__(self) -> int:
        return len(self.posts)

    def __getitem__(self, index: int) -> Item:
        return self.prepare(self.posts[index])


@dataclass
class Batch:
    items: list[Item]  # every post of the batch, encodable or not
    pixels: torch.Tensor  # [n_distinct, 3, R, R], the encodable items' distinct images, in order of appearance
    rows: dict[str, int]  # image key -> its row in pixels

    def pin_memory(self) -> "Batch":
        self.pixels = self.pixels.pin_memory()
        return self


def collate(items: list[Item]) -> Batch:
    """Runs in the worker: each distinct encodable image stacked once (a picture shared by reposts travels
    once); items travel on without their pixels."""
    rows: dict[str, int] = {}
    pixels = []
    for it in items:
        if it.reason is None and it.image_key not in rows:
            rows[it.image_key] = len(pixels)
            pixels.append(it.pixels)
    return Batch([replace(it, pixels=None) for it in items], torch.stack(pixels) if pixels else torch.empty(0), rows)
