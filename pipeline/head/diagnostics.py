"""Is the similarity guidance active? Measurements of a head's SIM on a batch of features (no training).

Two questions, per head:
- how far P^m and the rows of P^e are from uniform: entropy relative to log D (1 = uniform, 0 = one
  channel) and max·D (1 = uniform, D = one channel), the gate read as shares of its sum;
- how much each modality's SIM output depends on the other: a gradient ratio (local) and a swap
  ratio (replace one modality by another post's), ≈ 0 where the other modality cannot reach it.
"""
from __future__ import annotations

import math

import torch

from pipeline.head.model import SGMFTHead
from pipeline.head.sim import SimilarityInteraction
from pipeline.rundir import Guidance

POSTS = 128  # posts measured per run: means to a few %, a few seconds at D = 1024 on a CPU
P_E_POSTS = 32  # of them, whose P^e is materialised (32·D rows of D entries: a mean over 32,768 rows at D = 1024)
P_E_CHUNK = 8  # posts per materialised P^e: 8·D² floats = 32 MiB at D = 1024
PROBES = 2  # random output directions per post for each gradient norm (a Hutchinson estimate of ‖J‖_F)


def relative_entropy(p: torch.Tensor) -> torch.Tensor:
    """H(p / Σp) / log n over the last dim (n entries): 1 for a uniform p, 0 for one entry."""
    q = p / p.sum(-1, keepdim=True)
    return torch.special.entr(q).sum(-1) / math.log(p.shape[-1])


def peak(p: torch.Tensor) -> torch.Tensor:
    """max(p / Σp) · n over the last dim: 1 for a uniform p, n for one entry."""
    return (p / p.sum(-1, keepdim=True)).amax(-1) * p.shape[-1]


@torch.no_grad()
def p_m_spread(sim: SimilarityInteraction, t: torch.Tensor, v: torch.Tensor) -> dict[str, float]:
    """P^m's relative entropy and peak (means over posts) and its mean entry, CA's weight in eq. 12."""
    p_m = sim.p_m(t, v)
    return dict(p_m_entropy=float(relative_entropy(p_m).mean()), p_m_peak=float(peak(p_m).mean()),
                p_m_mean=float(p_m.mean()))


@torch.no_grad()
def p_e_spread(sim: SimilarityInteraction, t: torch.Tensor, v: torch.Tensor, chunk: int = P_E_CHUNK) -> dict[str, float]:
    """Relative entropy and peak of the rows of P^e, means over rows and posts (P^e materialised a chunk at a time)."""
    entropy = peak_sum = 0.0
    for start in range(0, len(t), chunk):
        p_e = sim.p_e(t[start:start + chunk], v[start:start + chunk])  # (b, D, D)
        entropy += float(relative_entropy(p_e).mean(-1).sum())
        peak_sum += float(peak(p_e).mean(-1).sum())
    return dict(p_e_entropy=entropy / len(t), p_e_peak=peak_sum / len(t))


def gradient_ratios(sim: SimilarityInteraction, t: torch.Tensor, v: torch.Tensor, probes: int = PROBES,
                    seed: int = 0) -> tuple[float, float]:
    """(text on image, image on text): ‖∂F_text^S/∂v‖·‖v‖ / (‖∂F_text^S/∂t‖·‖t‖) and its mirror.

    Frobenius norms of the Jacobians, summed over posts, estimated with `probes` random output
    directions u per post (E‖Jᵀu‖² = ‖J‖_F² for u ~ N(0, I)); each input's gradient is scaled by
    the input's norm, so that features of different scales compare.
    """
    t, v = t.detach().requires_grad_(), v.detach().requires_grad_()
    with torch.enable_grad():
        outputs = [f[:, 0] for f in sim(t, v)]  # F_text^S, F_image^S  (B, D)
        generator = torch.Generator().manual_seed(seed)
        sq = torch.zeros(2, 2, dtype=torch.float64)  # [output text/image, input t/v]
        norms = torch.stack([t.detach().square().sum(-1), v.detach().square().sum(-1)])  # (2, B)
        for _ in range(probes):
            for k, f in enumerate(outputs):
                u = torch.randn(f.shape, generator=generator).to(f)
                grads = torch.autograd.grad((f * u).sum(), (t, v), retain_graph=True)
                for j, g in enumerate(grads):
                    sq[k, j] += float((g.square().sum(-1) * norms[j]).sum())
    return math.sqrt(sq[0, 1] / sq[0, 0]), math.sqrt(sq[1, 0] / sq[1, 1])


@torch.no_grad()
def swap_ratios(sim: SimilarityInteraction, t: torch.Tensor, v: torch.Tensor) -> tuple[float, float]:
    """(text on image, image on text): how far F_text^S moves when v is replaced by another post's v,
    over how far it moves when t is (mean norms over posts); and the mirror for F_image^S. NaN for one post."""
    if len(t) < 2:
        return float("nan"), float("nan")
    other = torch.roll(torch.arange(len(t), device=t.device), 1)  # each post gets its neighbour's feature
    f_text, f_image = (f[:, 0] for f in sim(t, v))
    text_v, image_v = (f[:, 0] for f in sim(t, v[other]))  # the image swapped
    text_t, image_t = (f[:, 0] for f in sim(t[other], v))  # the text swapped
    moved = lambda a, b: float((a - b).norm(dim=-1).mean())  # noqa: E731
    return moved(text_v, f_text) / moved(text_t, f_text), moved(image_t, f_image) / moved(image_v, f_image)


def measure_guidance(head: SGMFTHead, text: torch.Tensor, image: torch.Tensor, split: str = "val",
                     posts: int = POSTS) -> Guidance:
    """The Guidance record of `head` on the first `posts` rows of (text, image) [N, D], raw features as cached."""
    cfg = head.cfg
    if head.sim is None:
        return Guidance.without_sim(split, cfg.embed_dim, cfg.gate)
    was_training = head.training
    head.eval()
    device = next(head.parameters()).device
    t, v = head.normalise(text[:posts].to(device).float(), image[:posts].to(device).float())
    sim = head.sim
    text_on_image, image_on_text = gradient_ratios(sim, t, v)
    swap_text, swap_image = swap_ratios(sim, t, v)
    head.train(was_training)
    return Guidance(True, split, len(t), cfg.embed_dim, cfg.gate, _number(sim.tau_m()), _number(sim.tau_e()),
                    **p_m_spread(sim, t, v), **p_e_spread(sim, t[:P_E_POSTS], v[:P_E_POSTS]), text_on_image_grad=text_on_image,
                    image_on_text_grad=image_on_text, text_on_image_swap=swap_text, image_on_text_swap=swap_image)


def _number(tau: float | torch.Tensor) -> float:
    return float(tau.detach()) if isinstance(tau, torch.Tensor) else float(tau)
