"""The cache fingerprint: model + weights identity + preprocessing settings, and nothing else.

Precision, device, batch size and worker count do not enter it: they change how fast features
are made, not which features they are meant to be. Checkpoint files are identified by content
(sha256), remembered per (path, size, mtime) so a 2 GB file is hashed once, not on every run.
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

IMAGE_RULES_VERSION = "sgmft-image-1"  # exif orientation, alpha over white, 16-bit scaled to 8-bit (images.py)
IMAGE_TRANSFORM = "cn_clip image_transform: bicubic resize to R x R, no crop, CLIP mean/std"
HASH_BLOCK = 1 << 20


def preprocessing_settings(text: dict, context_length: int, resolution: int, max_images: int = 1) -> dict:
    """Everything between a raw post and the encoders' inputs.

    max_images 1 (one picture per post, as before --max-images existed) leaves the settings, and so the
    fingerprints of caches and runs made then, as they were."""
    image = {"rules": IMAGE_RULES_VERSION, "transform": IMAGE_TRANSFORM, "resolution": resolution}
    return {
        "text": {**text, "tokenizer": "cn_clip FullTokenizer (vocab.txt, lower case)", "context_length": context_length},
        "image": image if max_images == 1 else {**image, "max_images": max_images},
    }


def fingerprint(model: str, weights_identity: str, settings: dict) -> str:
    """A short hash naming how the features of a cache were made."""
    payload = json.dumps({"model": model, "weights": weights_identity, "preprocessing": settings}, sort_keys=True)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()[:20]


def hash_memo_path() -> Path:
    """Where file digests are remembered ($SGMFT_HOME, default ~/.cache/sgmft)."""
    home = os.environ.get("SGMFT_HOME") or os.path.join(os.path.expanduser("~"), ".cache", "sgmft")
    return Path(home) / "file-sha256.json"


def file_sha256(path: str | Path) -> str:
    """Content hash of a file, read from the memo when the file's size and mtime are unchanged."""
    path = Path(path).resolve()
    stat = path.stat()
    key = f"{path}|{stat.st_size}|{stat.st_mtime_ns}"
    memo_file = hash_memo_path()
    memo = _read_memo(memo_file)
    if key in memo:
        return memo[key]
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(HASH_BLOCK):
            digest.update(block)
    memo[key] = digest.hexdigest()
    _write_memo(memo_file, memo)
    return memo[key]


def _read_memo(path: Path) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def _write_memo(path: Path, memo: dict) -> None:
    try:  # a memo that cannot be written only costs a re-hash next time
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"{path.name}.tmp-{os.getpid()}")
        tmp.write_text(json.dumps(memo, indent=0), encoding="utf-8")
        os.replace(tmp, path)
    except OSError:
        pass
