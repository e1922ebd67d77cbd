"""Stage one's reader: worker processes turn each post into an Item — cleaned, tokenized, its images decoded and
transformed — and collate a loader batch that carries each distinct image once.

Each post comes back either encodable (a usable text, or at least one usable image, or both) or with the
reason it is not: collate never drops one. A picture that cannot be used is noted on a post that is kept.
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
from pipeline.extract.stats import BEYOND_CAP

RECENT_IMAGES = 16  # decoded images each decoding process keeps, by sha1 (16 x 0.6 MB at 224 x 224)


@dataclass
class Item:
    """One post after the worker: ready to encode (reason None) or not, and why."""

    id: str
    text_clean: str
    tokens: list[int] | None  # cn_clip token ids, unpadded; None when the post has no usable text
    image_keys: list[str]  # sha1 of each usable image file, in the post's order, each once
    pixels: list[torch.Tensor] | None  # [3, R, R] per usable image, the model's input
    reason: str | None  # "<kind>: <detail>" when the row cannot be encoded
    seconds: float  # worker time spent on this post
    problems: list[str] = field(default_factory=list)  # "<kind>: <detail>" per picture of a kept post not used
    beyond_cap: int = 0  # pictures the row names beyond --max-images

    @property
    def has_text(self) -> bool:
        return self.tokens is not None

    @property
    def dropped(self) -> str:
        """The post's pictures that were not used, and why ("" = none): stored with the row."""
        beyond = [f"{BEYOND_CAP}: {self.beyond_cap} more picture(s) not used"] if self.beyond_cap else []
        return "; ".join(self.problems + beyond)


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
        keys, pixels, problems = self.images(post)
        text_problem = None if text or self.empty_text == "encode" else \
            f"empty text after cleaning: raw text {post.text[:30]!r}"
        if text_problem and not keys:
            reasons = problems or ["no image path: the manifest row names no image"]
            return Item(post.id, text, None, [], None, "; ".join([*reasons, text_problem]), time.perf_counter() - start)
        tokens = None if text_problem else self.tokenize(text)
        return Item(post.id, text, tokens, keys, pixels, None, time.perf_counter() - start, problems, post.beyond_cap)

    def images(self, post: Post) -> tuple[list[str], list[torch.Tensor], list[str]]:
        """(sha1s, pixels, problems) of the post's usable images; a picture listed twice is used once."""
        keys, pixels, problems = [], [], []
        for path in post.images:  # each problem names its file
            try:
                px, key = self.pixels(path)
            except ImageProblem as e:
                problems.append(str(e))
                continue
            except Exception as e:  # a decoder bug on one file must not stop 17,000 others
                problems.append(f"cannot transform image: {path} ({type(e).__name__}: {e})")
                continue
            if key not in keys:
                keys.append(key)
                pixels.append(px)
        return keys, pixels, problems

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
        for key, px in zip(it.image_keys, it.pixels or ()):
            if key not in rows:
                rows[key] = len(pixels)
                pixels.append(px)
    return Batch([replace(it, pixels=None) for it in items], torch.stack(pixels) if pixels else torch.empty(0), rows)
