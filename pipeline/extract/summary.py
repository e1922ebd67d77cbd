"""What an extraction did, per split: rows written, already there, skipped by reason, time per phase."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pipeline.extract.stats import POST_KINDS, SEVERAL, RowStats


@dataclass(frozen=True)
class SplitSummary:
    split: str
    posts: int  # rows of this split in the manifest
    already: int  # rows that had features from an earlier run, not encoded again
    stats: RowStats  # what this run did
    in_cache: int  # rows with features in the split after this run
    seconds: float

    @property
    def skipped(self) -> int:
        return sum(self.stats.skipped.values())

    def lines(self) -> list[str]:
        s, p = self.stats, self.stats.phases
        rate = (s.written + self.skipped) / self.seconds if self.seconds else 0.0
        reasons = ", ".join(f"{n} {kind}" for kind, n in s.skipped.most_common())
        kinds = ", ".join(f"{s.kinds[kind]} {kind}" for kind in (*POST_KINDS, SEVERAL) if s.kinds[kind])
        dropped = ", ".join(f"{n} {kind}" for kind, n in s.dropped.most_common())
        return [
            f"{self.split}: {self.posts} posts: {s.written} encoded now, {self.already} already in the cache, "
            f"{self.skipped} skipped{f' ({reasons})' if reasons else ''}; {self.in_cache} rows with features",
            *([f"  encoded now: {kinds}"] if kinds else []),
            *([f"  pictures left out of kept posts: {sum(s.dropped.values())} ({dropped})"] if dropped else []),
            f"  encoded {s.images_encoded} distinct images ({s.reused[0]} duplicates reused), "
            f"{s.texts_encoded} distinct texts ({s.reused[1]} reused); {rate:.1f} posts/s",
            f"  time: waiting for decode {p.read:.1f} s (workers busy {p.decode:.1f} s), "
            f"encode {p.encode:.1f} s, write {p.write:.1f} s, total {self.seconds:.1f} s",
        ]


@dataclass(frozen=True)
class ExtractSummary:
    cache: Path
    model: str
    fingerprint: str
    precision: str
    device: str
    note: str  # the encoder note: loud when the weights are random
    splits: list[SplitSummary]  # under torchrun: this rank's share of each split
    shard: str | None = None  # under torchrun: "rank r of n, shard <file>"
    folded: int = 0  # shard files and staged chunks merged into the cache by this process

    def lines(self) -> list[str]:
        head = [f"{self.cache}: model {self.model}, {self.precision} on {self.device}, fingerprint {self.fingerprint}"]
        if self.note.startswith("RANDOM"):
            head.append(f"  {self.note}")
        if self.shard:
            head.append(f"  {self.shard}")
        tail = [f"merged {self.folded} shard file(s) and staged chunk(s) into {self.cache}"] if self.folded else []
        return head + [line for split in self.splits for line in split.lines()] + tail

    def text(self) -> str:
        return "\n".join(self.lines())
