"""Texts waiting for the text encoder, grouped by token count, so that each batch pads only to lengths near its own.

cn_clip's recipe pads every text to 52 tokens; one batch of 64 Weibo posts in manifest order nearly
always holds a 52-token text, so padding to the batch's longest saves nothing either. Bucketed by
length, a bucket goes to the encoder as soon as it holds a full batch — text work spreads over the
run beside the image batches — and what is left is encoded, sorted by length, whenever the engine
needs every pending text (before it writes a chunk of rows). [PAD] positions are masked, so the
vectors do not depend on the grouping (tests/test_extract_encoders.py).
"""
from __future__ import annotations

from typing import Callable, Iterable

import torch

from pipeline.extract.memo import Memo
from pipeline.extract.reader import Item

BUCKET_TOKENS = 4  # token counts 0-3, 4-7, ...: a text pads by at most 3 tokens in a full bucket

EncodeTexts = Callable[[list[list[int]]], torch.Tensor]  # token-id lists -> [N, D], in input order


class TextQueue:
    """Distinct cleaned texts not yet in the memo, by length bucket; encoded ones go into the memo."""

    def __init__(self, memo: Memo, encode: EncodeTexts, batch_size: int):
        self.memo, self.encode, self.batch_size = memo, encode, batch_size
        self.buckets: dict[int, dict[str, list[int]]] = {}  # bucket -> {cleaned text: token ids}
        self.encoded = 0  # distinct texts encoded so far

    def add(self, items: Iterable[Item]) -> None:
        """Queue the items' texts that are neither encoded nor queued; encode every bucket that fills up."""
        for it in items:
            if not it.has_text or it.text_clean in self.memo.features:
                continue
            bucket = self.buckets.setdefault(len(it.tokens) // BUCKET_TOKENS, {})
            bucket[it.text_clean] = it.tokens
            if len(bucket) >= self.batch_size:
                self._encode(self.buckets.pop(len(it.tokens) // BUCKET_TOKENS))

    def flush(self) -> None:
        """Encode every queued text (sorted by length, in batches)."""
        pending = {text: tokens for bucket in self.buckets.values() for text, tokens in bucket.items()}
        self.buckets = {}
        if pending:
            self._encode(pending)

    def _encode(self, texts: dict[str, list[int]]) -> None:
        self.memo.add(list(texts), self.encode(list(texts.values())))
        self.encoded += len(texts)
