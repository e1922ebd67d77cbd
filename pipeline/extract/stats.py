"""What an extraction loop did: rows written, skipped by reason kind, distinct inputs encoded, time per phase."""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field


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


def skip_kind(reason: str) -> str:
    """The part of a skip reason before its detail: what summaries group rows by."""
    return reason.split(":", 1)[0]
