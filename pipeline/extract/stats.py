"""What an extraction loop did: rows written, skipped by reason kind, distinct inputs encoded, time per phase."""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Sequence

BEYOND_CAP = "beyond --max-images"  # the kind of the pictures --max-images leaves out
POST_KINDS = ("text+image", "text only", "image only")  # what a written post carries (SPEC §7)
SEVERAL = "several images"  # counted beside its kind


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
    kinds: Counter = field(default_factory=Counter)  # POST_KINDS and SEVERAL -> rows written by this run
    dropped: Counter = field(default_factory=Counter)  # problem kind -> pictures left out of rows that were written
    images_used: int = 0  # images stored in the rows written (a post's several count several times)
    texts_used: int = 0  # texts stored in the rows written
    images_encoded: int = 0  # distinct images through the encoder
    texts_encoded: int = 0  # distinct cleaned texts through the encoder
    phases: Phases = field(default_factory=Phases)

    @property
    def reused(self) -> tuple[int, int]:
        """(images, texts) whose features came from an identical input encoded earlier in the run."""
        return self.images_used - self.images_encoded, self.texts_used - self.texts_encoded

    def count(self, written: Sequence) -> None:
        """Account for rows handed to the writer (reader.Item: has_text, image_keys, problems, beyond_cap)."""
        for it in written:
            n = len(it.image_keys)
            self.kinds[post_kind(it.has_text, n)] += 1
            self.kinds[SEVERAL] += n > 1
            self.dropped.update(skip_kind(problem) for problem in it.problems)
            if it.beyond_cap:
                self.dropped[BEYOND_CAP] += it.beyond_cap
            self.images_used += n
            self.texts_used += it.has_text
        self.written += len(written)


def post_kind(has_text: bool, images: int) -> str:
    """text+image, text only or image only."""
    return POST_KINDS[0] if has_text and images else POST_KINDS[1] if has_text else POST_KINDS[2]


def skip_kind(reason: str) -> str:
    """The part of a skip reason before its detail: what summaries group rows by."""
    return reason.split(":", 1)[0]
