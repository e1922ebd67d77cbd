"""Stage one's loop: reader (worker processes) -> encoder -> writer, each phase timed.

Worker processes clean, tokenize, read and transform posts while the encoder works on the
previous batch. Each post comes back as an Item that is either encodable or carries the
reason it is not — collate never drops one. Identical image files and identical cleaned
texts are encoded once per run (and a file identical to a recent one is not decoded again);
texts are batched by length across loader batches (textqueue.py). Rows go to the CacheWriter,
which stages them in chunks.
"""
from __future__ import annotations

import contextlib
import time
from collections import Counter, OrderedDict
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Callable, Sequence

import torch
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from sgmft_cache import CacheWriter
from pipeline.extract.config import cores_per_process
from pipeline.extract.images import ImageProblem, decode_rgb, read_file
from pipeline.extract.manifest import Post
from pipeline.extract.textqueue import TextQueue

if TYPE_CHECKING:
    from pipeline.extract.encoders import Encoder


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
        data, key = read_file(path)
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


def select_rows(posts: Sequence[Post], done: set[str], rank: int = 0, world_size: int = 1) -> list[Post]:
    """This rank's share of the posts (every world_size-th, a stable assignment), minus those done."""
    return [p for p in posts[rank::world_size] if p.id not in done]


class Memo:
    """Features already encoded in this run, by content key, so each distinct input is encoded once —
    across splits too. It keeps them in memory: 2 x N x D floats, 140 MB for 17,000 posts at D = 1024."""

    def __init__(self, embed_dim: int):
        self.embed_dim, self.features = embed_dim, {}

    def lookup(self, keys: list[str], encode: Callable[[list[int]], torch.Tensor]) -> tuple[torch.Tensor, int]:
        """([len(keys), D], how many were new); `encode(positions)` runs once, on the first position of each new key."""
        first: dict[str, int] = {}
        for pos, key in enumerate(keys):
            if key not in self.features and key not in first:
                first[key] = pos
        if first:
            self.add(list(first), encode(list(first.values())))
        return self.stack(keys), len(first)

    def add(self, keys: list[str], features: torch.Tensor) -> None:
        self.features.update(zip(keys, features))

    def stack(self, keys: list[str]) -> torch.Tensor:
        """[len(keys), D]: the features of keys all encoded before."""
        return torch.stack([self.features[k] for k in keys]) if keys else torch.empty(0, self.embed_dim)


@dataclass
class Phases:
    read: float = 0.0  # main process waiting for decoded batches (what decoding failed to hide)
    decode: float = 0.0  # worker seconds reading, decoding, cleaning, tokenizing (spread over the workers)
    encode: float = 0.0  # encoder forward passes, transfers included
    write: float = 0.0  # staging chunks and the final commit


@dataclass
class RowStats:
    written: int = 0  # rows encoded by this run
    skipped: Counter = field(default_factory=Counter)  # skip kind -> rows, this run
    images_encoded: int = 0  # distinct images through the encoder
    texts_encoded: int = 0  # distinct cleaned texts through the encoder
    phases: Phases = field(default_factory=Phases)

    @property
    def reused(self) -> tuple[int, int]:
        """(images, texts) whose features came from an identical input encoded earlier in the run."""
        return self.written - self.images_encoded, self.written - self.texts_encoded


@dataclass
class Memos:
    images: Memo  # by sha1 of the image file
    texts: Memo  # by cleaned text

    @classmethod
    def empty(cls, embed_dim: int) -> "Memos":
        return cls(Memo(embed_dim), Memo(embed_dim))


def extract_rows(posts: Sequence[Post], labels: dict[str, int], writer: CacheWriter, encoder: "Encoder",
                 prepare: Prepare, *, batch_size: int, workers: int, quiet: bool = False,
                 memos: Memos | None = None, text_window: int = 512, threads: int = 0) -> RowStats:
    """Encode `posts` into `writer` (staged, not committed); every post is added or skipped with a reason.

    Images are encoded batch by batch as the workers deliver them; texts go through a length-bucketed
    queue (textqueue.py), and rows wait in a window until their text is encoded: every `text_window`
    posts the queue is emptied and the window's rows are written."""
    stats, memos = RowStats(), memos or Memos.empty(encoder.embed_dim)
    loader = DataLoader(PostDataset(posts, prepare), batch_size=batch_size, num_workers=workers, collate_fn=collate,
                        prefetch_factor=4 if workers else None, pin_memory=encoder.device.type == "cuda")
    bar = tqdm(total=len(posts), unit="post", desc=f"extract {writer.split}", disable=quiet, smoothing=0.1)
    batches, window, texts = iter(loader), Window(), TextQueue(memos.texts, encoder, batch_size)
    with _encoder_threads(threads, workers, encoder.device):
        while (batch := _next_batch(batches, stats)) is not None:
            _encode_batch(batch, window, texts, writer, encoder, stats, memos)
            if len(window.items) >= text_window:
                _write_window(window, texts, labels, writer, stats)
                window = Window()
            bar.update(len(batch.items))
        _write_window(window, texts, labels, writer, stats)
    bar.close()
    stats.texts_encoded = texts.encoded
    return stats


@dataclass
class Window:
    """Encodable posts whose images are encoded; their texts may still wait in the queue."""

    items: list[Item] = field(default_factory=list)
    images: list[torch.Tensor] = field(default_factory=list)  # [n_ok, D] per batch, float32


def _next_batch(batches, stats: RowStats) -> Batch | None:
    start = time.perf_counter()
    batch = next(batches, None)
    stats.phases.read += time.perf_counter() - start
    return batch


@contextlib.contextmanager
def _encoder_threads(threads: int, workers: int, device: torch.device):
    """On CPU the encoder runs on `threads` intra-op threads; 0 = the cores the decoding workers leave:
    oversubscribed intra-op threads wait on each other for a scheduler tick per op (measured 40x slower
    on 2 busy cores)."""
    saved = torch.get_num_threads()
    if device.type == "cpu":
        torch.set_num_threads(threads or max(1, min(saved, cores_per_process() - workers)))
    try:
        yield
    finally:
        torch.set_num_threads(saved)


def _encode_batch(batch: Batch, window: Window, texts: TextQueue, writer: CacheWriter, encoder: "Encoder",
                  stats: RowStats, memos: Memos) -> None:
    """Skips go to the writer now; images are encoded, texts queued; the encodable posts join the window."""
    ok = [it for it in batch.items if it.reason is None]
    bad = [it for it in batch.items if it.reason is not None]
    stats.phases.decode += sum(it.seconds for it in batch.items)
    start = time.perf_counter()
    keys = [it.image_key for it in ok]
    image, new_images = memos.images.lookup(
        keys, lambda pos: encoder.encode_images(batch.pixels[[batch.rows[keys[p]] for p in pos]]))
    texts.add(ok)
    stats.images_encoded += new_images
    stats.phases.encode += time.perf_counter() - start
    window.items += ok
    window.images.append(image)
    if bad:
        start = time.perf_counter()
        writer.skip([it.id for it in bad], [it.reason for it in bad])
        stats.skipped.update(reason_kind(it.reason) for it in bad)
        stats.phases.write += time.perf_counter() - start


def _write_window(window: Window, texts: TextQueue, labels: dict[str, int], writer: CacheWriter,
                  stats: RowStats) -> None:
    ok = window.items
    if not ok:
        return
    start = time.perf_counter()
    texts.flush()
    stats.phases.encode += time.perf_counter() - start
    start = time.perf_counter()
    writer.add([it.id for it in ok], texts.memo.stack([it.text_clean for it in ok]), torch.cat(window.images),
               [labels[it.id] for it in ok], [it.text_clean for it in ok])
    stats.written += len(ok)
    stats.phases.write += time.perf_counter() - start


def reason_kind(reason: str) -> str:
    """The part of a skip reason before its detail: what the summary groups rows by."""
    return reason.split(":", 1)[0]
