"""ExtractConfig: every setting of `sgmft extract`, with the paper's defaults where it states one, and their checks."""
from __future__ import annotations

import os
from dataclasses import asdict, dataclass

from sgmft_cache import DEFAULT_CACHE, DEFAULT_CHUNK_ROWS, SgmftError
from pipeline.device import AUTO
from pipeline.settings import setting

SPLIT_CHOICES = ("train", "val", "test", "all")
PRECISIONS = (AUTO, "fp32", "fp16", "bf16")  # auto: fp16 on CUDA (cn_clip's own), fp32 on CPU
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

    auto = device is None or str(device) == AUTO
    on_gpu = torch.cuda.is_available() if auto else torch.device(device).type == "cuda"
    return max(1, min(8, cores_per_process() - 1)) if on_gpu else cores_per_process() // 8


@dataclass(frozen=True)
class ExtractConfig:
    manifest: str = setting("data/posts.csv", "Posts to encode: CSV, TSV, JSONL or Parquet with columns text, image "
                            "(a path relative to the manifest's folder, or absolute) and/or images (several paths, "
                            "'|'-separated in CSV/TSV, a list in JSONL/Parquet), optionally id, label, split; a post "
                            "may lack a text or its images.")
    max_images: int = setting(9, "Images used per post (Weibo posts carry up to 9, now 18); further ones are left "
                              "out and noted.")
    cache: str = setting(DEFAULT_CACHE, "Feature cache to write (HDF5, SPEC §3).")
    split: str = setting("all", "train, val, test, or all. Without a split column in the manifest: a stratified "
                         "seeded test split (--test-fraction), the rest train.")
    model: str = setting("ViT-H-14", "cn_clip model: ViT-H-14 (paper), ViT-L-14, ViT-L-14-336, ViT-B-16, RN50; or "
                         "tiny (random weights, tests/demos only).")
    checkpoint: str | None = setting(None, "cn_clip checkpoint file ({'state_dict': ...}) instead of cn_clip's own "
                                     "download.")
    download_root: str | None = setting(None, "Folder of cn_clip's downloaded weights (default ~/.cache/clip).")
    random_weights: bool = setting(False, "Seeded random weights in the real architecture: for tests and "
                                   "benchmarks; the features mean nothing.")
    weights_seed: int = setting(0, "Seed of random weights (tiny, --random-weights).")
    seed: int = setting(0, "Seed of the automatic train/test split.")
    test_fraction: float = setting(0.2, "Test share of the automatic split (paper: 3,400 of 17,000 posts).")
    stopwords: str | None = setting(None, "Stop-word file (one word a line) replacing the shipped stopwords-iso "
                                    "zh+en lists.")
    extra_stopwords: str | None = setting(None, "Stop-word file whose words are added to the list in use.")
    context_length: int = setting(52, "Text tokens incl. [CLS]/[SEP] (cn_clip's default); longer texts are cut.")
    empty_text: str = setting("skip", "A text empty after cleaning: 'skip' it (the post is kept with its images; "
                              "one with no usable image is skipped, listed with its reason) or 'encode' the empty "
                              "string.")
    device: str = setting(AUTO, "auto (cuda when present), cpu, cuda, cuda:N.")
    precision: str = setting(AUTO, "auto (fp16 on CUDA, cn_clip's own; fp32 on CPU), fp32, fp16, bf16.")
    batch_size: int = setting(64, "Posts per encoder batch.")
    workers: int | None = setting(None, "Image decoding processes; 0 decodes in the main process (default, by "
                                  "device: beside a GPU this process's cores - 1, at most 8; on the CPU one per 8 "
                                  "cores).")
    threads: int = setting(0, "On CPU: the encoder's threads (0: the cores the decoding workers leave).")
    chunk_rows: int = setting(DEFAULT_CHUNK_ROWS, "Rows per staged chunk: the most work a crash can lose; texts are also sorted "
                              "by length within this many rows.")
    max_pixels: int = setting(PIL_MAX_PIXELS, "Larger images are skipped as 'image too large' (default: Pillow's "
                              "own limit, about 9459 x 9459).")
    max_image_bytes: int = setting(50_000_000, "Image files larger than this many bytes are skipped unread as "
                                   "'image file too large'.")
    overwrite: bool = setting(False, "Replace a cache made with another model, weights or preprocessing.")
    quiet: bool = setting(False, "No progress bar.")
    dist_timeout: float = setting(3600.0, "Under torchrun: seconds a rank waits for the others at a sync point.")

    def __post_init__(self) -> None:
        problems = [
            (self.split not in SPLIT_CHOICES, f"--split {self.split}: choose one of {', '.join(SPLIT_CHOICES)}"),
            (self.empty_text not in EMPTY_TEXT, f"--empty-text {self.empty_text}: choose skip or encode"),
            (self.precision not in PRECISIONS, f"--precision {self.precision}: choose {', '.join(PRECISIONS)}"),
            (not 0.0 < self.test_fraction < 1.0, f"--test-fraction {self.test_fraction}: must lie between 0 and 1"),
            (not 3 <= self.context_length <= 512, f"--context-length {self.context_length}: must lie in 3..512"),
            (min(self.batch_size, self.chunk_rows, self.max_pixels, self.max_image_bytes, self.max_images) < 1,
             "--batch-size, --chunk-rows, --max-pixels, --max-image-bytes and --max-images must be positive"),
            ((self.workers or 0) < 0, f"--workers {self.workers}: must be 0 (decode in the main process) or more"),
            (self.threads < 0, f"--threads {self.threads}: must be 0 (automatic) or more"),
            (self.dist_timeout <= 0, f"--dist-timeout {self.dist_timeout}: must be positive"),
        ]
        for bad, message in problems:
            if bad:
                raise SgmftError(message)

    def to_dict(self) -> dict:
        return asdict(self)
