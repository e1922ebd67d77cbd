"""What one training step of the head costs in FLOPs and in bytes moved, counted from the model itself."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode, sdpa_backward_flop_count, sdpa_flop_count

from pipeline.head import HeadConfig, SGMFTHead

ADAM_BYTES_PER_PARAM = 28  # reads parameter, gradient, both moments; writes parameter and both moments (fp32)


def step_cost(cfg: HeadConfig, batch: int = 20) -> dict:
    """FLOPs per sample of forward and backward, and the parameters a step reads and updates.

    Matmul FLOPs are counted by torch's FlopCounterMode on a real forward and backward (fast path, as
    trained). It has no formula for the CPU fused-attention kernel that computes X_inter (eq. 14), so
    those are added with torch's own SDPA formulas for its shapes (head size 1: query t_i, key v_j).
    Element-wise work (exponentials, LayerNorm, Adam's arithmetic) is not in the FLOP count; the
    exponentials of X_inter (D² per sample forward, D² again when the backward recomputes them) are
    listed apart because on a CPU they, not the FLOPs, set that kernel's speed."""
    torch.manual_seed(0)
    head, d = SGMFTHead(cfg), cfg.embed_dim
    t, v, y = torch.randn(batch, d), torch.randn(batch, d), torch.arange(batch) % cfg.num_classes
    with FlopCounterMode(display=False) as fwd:
        loss = F.cross_entropy(head(t, v), y)
    with FlopCounterMode(display=False) as bwd:
        loss.backward()
    x_fwd = x_bwd = 0
    if cfg.sim and not any("attention" in str(op) for op in fwd.get_flop_counts()["Global"]):
        shape = (batch, 1, d, 1)  # (B, 1 head, D elements, head size 1)
        x_fwd, x_bwd = sdpa_flop_count(shape, shape, shape), sdpa_backward_flop_count(shape, shape, shape, shape)
    live = sum(p.numel() for p in head.parameters() if p.grad is not None)
    forward, backward = (fwd.get_total_flops() + x_fwd) / batch, (bwd.get_total_flops() + x_bwd) / batch
    return dict(
        flops_per_sample=forward + backward, forward_flops_per_sample=forward, backward_flops_per_sample=backward,
        x_inter_flops_per_sample=(x_fwd + x_bwd) / batch, x_inter_exps_per_sample=2 * d * d if cfg.sim else 0,
        params=sum(p.numel() for p in head.parameters()), params_updated=live,
        bytes_per_step=_bytes_per_step(live),
    )


def _bytes_per_step(live: int) -> dict:
    """Memory traffic of one step over the updated parameters (fp32); activations are O(B·D), negligible.

    as_run: forward reads each weight, backward reads it again (input gradient) and writes its gradient,
    then the optimizer pass reads/writes the rest. optimizer: that last pass alone. fused_floor: one pass
    that applies Adam as the gradient is formed, so the gradient never reaches memory: the least any
    implementation of the same math moves."""
    return dict(as_run=live * (4 + 4 + 4 + ADAM_BYTES_PER_PARAM), optimizer=live * ADAM_BYTES_PER_PARAM,
                fused_floor=live * (4 + 24))
