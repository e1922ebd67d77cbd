"""Stage one's loop: reader (worker processes, reader.py) -> encoder -> writer (the CacheWriter), each phase timed.

Worker processes clean, tokenize, read and transform posts while the encoder works on the previous
batch. A post is written with whatever it has that is usable — its text, all its images, or both
(SPEC §7). Images are encoded batch by batch as the workers deliver them; texts go through a length-
bucketed queue (textqueue.py), and encodable rows wait in a window until their text is encoded:
every `text_window` posts the queue is emptied and the window's rows go to the writer, which stages
them in chunks. Identical images and cleaned texts are encoded once per run (memo.py).
"""
from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Sequence

import torch
from torch.utils.data import DataLoader

from sgmft_cache import CacheWriter
from pipeline.extract.config import ExtractConfig, cores_per_process, default_workers
from pipeline.extract.manifest import Post
from pipeline.extract.memo import Memos
from pipeline.extract.reader import Batch, Item, PostDataset, Prepare, collate
from pipeline.extract.stats import RowStats, skip_kind
from pipeline.extract.textqueue import TextQueue
from pipeline.progress import progress

if TYPE_CHECKING:
    from pipeline.extract.encoders import Encoder


@dataclass(frozen=True)
class EngineSettings:
    """How the loop runs; none of it changes a stored vector."""

    batch_size: int  # posts per loader and encoder batch
    workers: int  # decoding processes; 0 = in the main process
    threads: int  # encoder intra-op threads on CPU; 0 = the cores the workers leave
    text_window: int  # encodable posts that wait for their texts before they are written
    quiet: bool  # no progress bar

    @classmethod
    def of(cls, cfg: ExtractConfig, device: torch.device) -> "EngineSettings":
        workers = default_workers(device) if cfg.workers is None else cfg.workers
        return cls(cfg.batch_size, workers, cfg.threads, cfg.chunk_rows, cfg.quiet)


@dataclass
class Window:
    """Encodable posts whose images are encoded; their texts may still wait in the queue."""

    items: list[Item] = field(default_factory=list)
    images: list[torch.Tensor] = field(default_factory=list)  # per batch: [its posts' images, D], post by post


class Engine:
    """Encodes loader batches and hands finished rows (or skips) to the writer."""

    def __init__(self, writer: CacheWriter, encoder: "Encoder", labels: dict[str, int], memos: Memos,
                 settings: EngineSettings):
        self.writer, self.encoder, self.labels, self.memos = writer, encoder, labels, memos
        self.stats, self.window = RowStats(), Window()
        self.texts = TextQueue(memos.texts, lambda tokens: encoder.encode_texts(tokens, settings.batch_size),
                               settings.batch_size)

    def encode(self, batch: Batch) -> None:
        """Skips go to the writer now; images are encoded, texts queued; the encodable posts join the window."""
        ok = [it for it in batch.items if it.reason is None]
        bad = [it for it in batch.items if it.reason is not None]
        phases = self.stats.phases
        phases.decode += sum(it.seconds for it in batch.items)
        with _timed(phases, "encode"):
            keys = [key for it in ok for key in it.image_keys]
            image, new_images = self.memos.images.lookup(
                keys, lambda pos: self.encoder.encode_images(batch.pixels[[batch.rows[keys[p]] for p in pos]]))
            self.texts.add(ok)
        self.stats.images_encoded += new_images
        self.window.items += ok
        self.window.images.append(image)
        if bad:
            with _timed(phases, "write"):
                self.writer.skip([it.id for it in bad], [it.reason for it in bad])
            self.stats.skipped.update(skip_kind(it.reason) for it in bad)

    def write_window(self) -> None:
        """Encode every queued text and write the window's rows."""
        ok, window = self.window.items, self.window
        self.window = Window()
        if not ok:
            return
        with _timed(self.stats.phases, "encode"):
            self.texts.flush()
        with _timed(self.stats.phases, "write"):
            has_text = torch.tensor([it.has_text for it in ok], dtype=torch.bool)
            text = torch.zeros(len(ok), self.encoder.embed_dim)
            if has_text.any():
                text[has_text] = self.texts.memo.stack([it.text_clean for it in ok if it.has_text]).float().cpu()
            counts = torch.tensor([len(it.image_keys) for it in ok], dtype=torch.long)
            self.writer.add([it.id for it in ok], text, None, [self.labels[it.id] for it in ok],
                            [it.text_clean for it in ok], has_text=has_text, images=torch.cat(window.images),
                            image_offsets=torch.cat([torch.zeros(1, dtype=torch.long), counts.cumsum(0)]),
                            dropped_images=[it.dropped for it in ok])
        self.stats.count(ok)


def extract_rows(posts: Sequence[Post], labels: dict[str, int], writer: CacheWriter, encoder: "Encoder",
                 prepare: Prepare, settings: EngineSettings, memos: Memos | None = None) -> RowStats:
    """Encode `posts` into `writer` (staged, not committed); every post is added or skipped with a reason."""
    engine = Engine(writer, encoder, labels, memos or Memos.empty(encoder.embed_dim), settings)
    workers = settings.workers
    loader = DataLoader(PostDataset(posts, prepare), batch_size=settings.batch_size, num_workers=workers,
                        collate_fn=collate, prefetch_factor=4 if workers else None,
                        pin_memory=encoder.device.type == "cuda")
    bar = progress(len(posts), f"extract {writer.split}", "post", settings.quiet, smoothing=0.1)
    batches = iter(loader)
    with _encoder_threads(settings.threads, workers, encoder.device):
        while (batch := _next_batch(batches, engine.stats)) is not None:
            engine.encode(batch)
            if len(engine.window.items) >= settings.text_window:
                engine.write_window()
            bar.update(len(batch.items))
        engine.write_window()
    bar.close()
    engine.stats.texts_encoded = engine.texts.encoded
    return engine.stats


def select_rows(posts: Sequence[Post], done: set[str], rank: int = 0, world_size: int = 1) -> list[Post]:
    """This rank's share of the posts (every world_size-th, a stable assignment), minus those done."""
    return [p for p in posts[rank::world_size] if p.id not in done]


@contextlib.contextmanager
def _timed(phases, name: str):
    start = time.perf_counter()
    try:
        yield
    finally:
        setattr(phases, name, getattr(phases, name) + time.perf_counter() - start)


def _next_batch(batches, stats: RowStats) -> Batch | None:
    with _timed(stats.phases, "read"):
        return next(batches, None)


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
