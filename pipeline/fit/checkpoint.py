"""The best checkpoint of a run: head weights plus everything needed to use them on their own."""
from __future__ import annotations

import io
from pathlib import Path

import torch

from sgmft_cache import SgmftError
from pipeline.head import HeadConfig, SGMFTHead
from pipeline.rundir import CHECKPOINT, RunDir, write_bytes


def save_checkpoint(path: Path, head: SGMFTHead, state: dict, info: dict) -> None:
    """`info` carries labels, cache fingerprint, encoder model, variant and fit config. Serialised in memory, then
    written whole (a full disk is an OSError and leaves no truncated checkpoint)."""
    buffer = io.BytesIO()
    torch.save({"head_config": head.cfg.to_dict(), "state_dict": state, **info}, buffer)
    write_bytes(path, buffer.getvalue())


def load_checkpoint(path: str | Path, device: str | torch.device = "cpu") -> tuple[SGMFTHead, dict]:
    """(head in eval mode with the saved weights, the rest of the checkpoint: labels, fingerprint, ...)."""
    path = Path(path)
    if path.is_dir():
        path = RunDir(path).checkpoint
    if not path.exists():
        raise SgmftError(f"{path}: no checkpoint here (a run directory of `sgmft fit` holds {CHECKPOINT})")
    try:
        ckpt = torch.load(path, map_location=device, weights_only=True)
    except Exception as e:  # a truncated or foreign file
        raise SgmftError(f"{path}: not a readable sgmft checkpoint ({type(e).__name__}: {e})") from None
    try:
        cfg = HeadConfig.from_dict(ckpt["head_config"])  # checked before any weight is allocated
    except (KeyError, TypeError, ValueError) as e:
        raise SgmftError(f"{path}: not a checkpoint sgmft wrote ({type(e).__name__}: {e})") from None
    head = SGMFTHead(cfg).to(device)
    _load_weights(head, ckpt["state_dict"], path)
    head.eval()
    info = {k: v for k, v in ckpt.items() if k not in ("state_dict", "head_config")}
    return head, info


def _load_weights(head: SGMFTHead, state: dict, path: Path) -> None:
    """The saved weights; a run made before the placeholders of missing modalities existed keeps the fresh ones
    (it never saw a post without a text or an image, so they were never trained)."""
    result = head.load_state_dict(state, strict=False)
    missing = [k for k in result.missing_keys if not k.startswith("inputs.")]
    if missing or result.unexpected_keys:
        raise SgmftError(f"{path}: the checkpoint does not fit its own head config (missing {missing}, unexpected "
                         f"{result.unexpected_keys}); fit the run again")
