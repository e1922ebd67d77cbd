"""Device names shared by every stage: auto, cpu, cuda, cuda:N."""
from __future__ import annotations

from typing import TYPE_CHECKING

from sgmft_cache import SgmftError

if TYPE_CHECKING:
    import torch

AUTO = "auto"  # the default of every stage's --device: CUDA when this PyTorch sees a GPU, else the CPU


def resolve_device(name: str) -> "torch.device":
    """`auto` is CUDA when this PyTorch sees a GPU, else the CPU; a CUDA name without a GPU is refused."""
    import torch

    if name == AUTO:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise SgmftError(f"--device {name}: not a device name (try auto, cpu, cuda, cuda:1)") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SgmftError(f"--device {name}: this PyTorch sees no CUDA device; use --device cpu or auto")
    return device
