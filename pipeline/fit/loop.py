"""One training epoch and one evaluation pass over tensors already in memory."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterable

import numpy as np
import torch
import torch.nn.functional as F

from pipeline.fit.batches import Batches, drop_modalities
from pipeline.head import SGMFTHead


def adam(params: Iterable[torch.nn.Parameter], lr: float, betas: tuple[float, float]) -> torch.optim.Adam:
    """Adam (paper §4.3) as one fused kernel over all parameters where this torch has one for the device.

    The step is memory-bound (it reads and writes every parameter and both moments): the fused kernel
    makes one pass over them, the default implementation one per operation (BENCHMARKS.md)."""
    params = list(params)
    try:
        return torch.optim.Adam(params, lr=lr, betas=betas, fused=True)
    except (RuntimeError, ValueError):  # torch < 2.4 on CPU, or a device without the fused kernel
        return torch.optim.Adam(params, lr=lr, betas=betas)


@dataclass(frozen=True)
class Evaluation:
    loss: float
    accuracy: float
    logits: np.ndarray  # [N, C]
    fusion: np.ndarray | None  # [N, D_fuse] M_fuse, when asked for


def train_epoch(
    head: SGMFTHead,
    opt: torch.optim.Optimizer,
    data: Batches,
    batch_size: int,
    generator: torch.Generator,
    on_step: Callable[[int, float, float], None] = lambda steps, loss, acc: None,
    report_every: int = 25,
    modality_dropout: float = 0.0,
) -> tuple[float, float]:
    """One pass in a seeded random order; returns the mean loss and accuracy over the epoch.

    `on_step(steps, running_loss, running_acc)` is called every `report_every` steps (reading the
    running figures waits for the device, so not on every step). With `modality_dropout` p > 0 each
    post that has both modalities loses one of them with probability p for its step (drop_modalities)."""
    head.train()
    order = torch.randperm(len(data), generator=generator).to(data.label.device)
    loss_sum = torch.zeros((), device=data.label.device)
    correct = torch.zeros((), dtype=torch.long, device=data.label.device)
    for step, start in enumerate(range(0, len(data), batch_size), 1):
        idx = order[start : start + batch_size]
        masks = drop_modalities(*data.masks(idx), modality_dropout, generator) if modality_dropout else (None, None)
        x = data.inputs(idx, *masks)
        logits = head(x.pop("t"), x.pop("v"), **x)  # features positional: hooks see them as the model's inputs
        loss = F.cross_entropy(logits, data.label[idx])  # (18-19)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        loss_sum += loss.detach() * len(idx)
        correct += (logits.detach().argmax(dim=1) == data.label[idx]).sum()
        if step % report_every == 0:
            seen = start + len(idx)
            on_step(report_every, float(loss_sum) / seen, float(correct) / seen)
    on_step(step % report_every, float(loss_sum) / len(data), float(correct) / len(data))
    return float(loss_sum) / len(data), float(correct) / len(data)


@torch.no_grad()
def head_outputs(head: SGMFTHead, data: Batches, batch_size: int = 1024,
                 with_fusion: bool = False) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(logits [N, C], M_fuse [N, D_fuse] when asked for) in eval mode, `batch_size` posts at a time."""
    head.eval()
    logits, fusion = [], []
    for start in range(0, len(data), batch_size):
        idx = torch.arange(start, min(start + batch_size, len(data)))
        m_fuse = head.fuse(**data.inputs(idx))
        logits.append(head.classifier(m_fuse))
        if with_fusion:
            fusion.append(m_fuse)
    if not logits:
        return torch.zeros(0, head.cfg.num_classes, device=data.device or data.label.device), None
    return torch.cat(logits), torch.cat(fusion) if with_fusion else None


def evaluate(head: SGMFTHead, data: Batches, batch_size: int = 1024, with_fusion: bool = False) -> Evaluation:
    all_logits, fusion = head_outputs(head, data, batch_size, with_fusion)
    label = data.label.to(all_logits.device)
    loss = float(F.cross_entropy(all_logits, label))
    acc = float((all_logits.argmax(dim=1) == label).float().mean())
    return Evaluation(loss, acc, all_logits.cpu().numpy(), fusion.cpu().numpy() if with_fusion else None)
