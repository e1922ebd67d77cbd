"""ExtractConfig: every setting of `sgmft extract`, with the paper's defaults where it states one."""
from __future__ import annotations

import os
from dataclasses import asdict, dataclass

SPLIT_CHOICES = ("train", "val", "test", "all")
PRECISIONS = ("auto", "fp32", "fp16", "bf16")
EMPTY_TEXT = ("skip", "encode")
PIL_MAX_PIXELS = 89_478_485  # Pillow's own decompression-bomb threshold (about 9459 x 9459)


def cores_per_process() -> int:
    """This process's share of the machine's cores: all of them, or 1/n under `torchrun --nproc-per-node n`."""
    return max(1, (os.cpu_count() or 1) // max(1, int(os.environ.get("LOCAL_WORLD_SIZE", "1") or 1)))


def default_workers(device=None) -> int:
    """Image decoding processes for an encoder on `device` (None or auto: CUDA when torch sees a GPU).

    Beside a GPU: all this process's cores but one, at most 8 — decoding is what keeps a GPU fed. On the
    CPU: one per 8 cores, none below 8 (the main process decodes between batches): decoding is a few per
    cent of a real encoder's work, and a worker beside an encoder on all cores stalls its threads
    (measured on 2 cores in BENCHMARKS.md, "Extraction")."""
    import torch

    auto = device is None or str(device) == "auto"
    on_gpu = torch.cuda.is_available() if auto else torch.device(device).type == "cuda"
    return max(1, min(8, cores_per_process() - 1)) if on_gpu else cores_per_process() // 8


@dataclass(frozen=True)
class ExtractConfig:
    manifest: str = "data/posts.csv"  # the user's posts: CSV, TSV, JSONL or Parquet (SPEC §1)
    cache: str = "cache/feats.h5"  # feature cache to write (SPEC §3)
    split: str = "all"  # train, val, test, or all splits of the manifest
    model: str = "ViT-H-14"  # cn_clip model name (paper: ViT-H-14), or "tiny" (random-weight test encoder)
    checkpoint: str | None = None  # cn_clip checkpoint file ({"state_dict": ...}); default: cn_clip's own download
    download_root: str | None = None  # cn_clip's weights folder; None = cn_clip's default ~/.cache/clip
    random_weights: bool = False  # seeded random init of the real architecture: for tests and benchmarks only
    weights_seed: int = 0  # seed of random weights (tiny, --random-weights)
    seed: int = 0  # seed of the stratified train/test split made when the manifest has no split column
    test_fraction: float = 0.2  # share held out as test when there is no split column (paper: 3,400 of 17,000)
    stopwords: str | None = None  # file, one word a line, replacing the shipped zh+en lists (stopwordsiso)
    extra_stopwords: str | None = None  # file, one word a line, added to the list in use
    context_length: int = 52  # text tokens incl. [CLS]/[SEP], cn_clip's default; longer texts are cut
    empty_text: str = "skip"  # a text empty after cleaning: "skip" the row with a reason, or "encode" ""
    device: str = "auto"  # auto (cuda when present), cpu, cuda, cuda:N
    precision: str = "auto"  # auto = fp16 on CUDA (cn_clip's own), fp32 on CPU; or fp32, fp16, bf16
    batch_size: int = 64  # posts per encoder batch
    workers: int | None = None  # image decoding processes; 0 = in the main process; None = by device (default_workers)
    threads: int = 0  # encoder intra-op threads on CPU; 0 = this process's cores minus the decoding workers
    chunk_rows: int = 512  # rows per staged chunk (at most this much work is lost to a crash) and per length-sorted text window
    max_pixels: int = PIL_MAX_PIXELS  # larger images are skipped as "image too large"
    overwrite: bool = False  # replace a cache made with another fingerprint instead of refusing
    quiet: bool = False  # no progress bar
    dist_timeout: float = 3600.0  # seconds a rank waits for the others at a sync point under torchrun

    def to_dict(self) -> dict:
        return asdict(self)
