"""MC: the five fully-connected layers that map M_fuse to class logits (eq. 18)."""
from __future__ import annotations

from torch import nn


def classifier(in_dim: int, hidden: tuple[int, ...], num_classes: int, dropout: float = 0.0) -> nn.Sequential:
    """Linear layers in_dim -> hidden... -> num_classes with ReLU between; returns logits."""
    widths = (in_dim, *hidden)
    layers: list[nn.Module] = []
    for a, b in zip(widths[:-1], widths[1:]):
        layers += [nn.Linear(a, b), nn.ReLU()] + ([nn.Dropout(dropout)] if dropout else [])
    layers.append(nn.Linear(widths[-1], num_classes))
    return nn.Sequential(*layers)
