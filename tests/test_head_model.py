"""The whole head as a model: shapes, gradients on every parameter, no NaNs, it can overfit."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from pipeline.head import VARIANTS, HeadConfig, SGMFTHead, variant_config

D = 32


def small(variant: str = "sgmft", **kw) -> SGMFTHead:
    torch.manual_seed(0)
    return SGMFTHead(variant_config(variant, HeadConfig(embed_dim=D, num_classes=7, heads=4, ffn_hidden=D, **kw)))


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_logits_shape_and_finite(variant):
    head = small(variant)
    logits = head(torch.randn(6, D), torch.randn(6, D))
    assert logits.shape == (6, 7) and torch.isfinite(logits).all()
    assert head.fuse(torch.randn(6, D), torch.randn(6, D)).shape == (6, head.fusion.out_dim)


@pytest.mark.parametrize("variant", ["sgmft", "sgmft-tau", "sigmoid-gate-tau"])
def test_every_parameter_gets_a_gradient_except_one_key_query_key(variant):
    """Over one-element sequences softmax(QKᵀ) ≡ 1, so W^Q and W^K cannot learn (a property of the
    paper's single-vector setting); every other parameter must receive a non-zero gradient (the
    temperatures τ_m, τ_e of the variants that learn them included, and the placeholders of posts that lack a
    modality)."""
    head = small(variant, fast_path=False)
    has_text, has_image = torch.arange(8) != 2, torch.arange(8) != 5
    loss = F.cross_entropy(head(torch.randn(8, D), torch.randn(8, D), has_text, has_image), torch.arange(8) % 7)
    loss.backward()
    for name, p in head.named_parameters():
        assert p.grad is not None, name
        if name.rsplit(".", 2)[-2] in ("q", "k"):
            assert p.grad.abs().max() < 1e-6, name
        else:
            assert p.grad.abs().max() > 0, name


def test_query_key_learn_when_attention_has_several_keys():
    head = small("merge-attention", fast_path=False)  # text and image become a 2-token sequence
    F.cross_entropy(head(torch.randn(8, D), torch.randn(8, D)), torch.arange(8) % 7).backward()
    for name, p in head.fusion.named_parameters():
        assert p.grad.abs().max() > 0, name


def test_no_nans_with_raw_large_features():
    head = small(input_norm="none")
    t, v = 50 * torch.randn(16, D), 50 * torch.randn(16, D)
    logits = head(t, v)
    F.cross_entropy(logits, torch.arange(16) % 7).backward()
    assert torch.isfinite(logits).all()
    assert all(torch.isfinite(p.grad).all() for p in head.parameters() if p.grad is not None)


def test_l2_input_norm_makes_the_head_scale_invariant():
    head = small().eval()
    t, v = torch.randn(4, D), torch.randn(4, D)
    torch.testing.assert_close(head(t, v), head(7 * t, 0.1 * v))


def test_overfits_a_tiny_batch():
    head = small()
    t, v, y = torch.randn(10, D), torch.randn(10, D), torch.arange(10) % 7
    opt = torch.optim.Adam(head.parameters(), lr=1e-3)
    for _ in range(150):
        opt.zero_grad()
        loss = F.cross_entropy(head(t, v), y)
        loss.backward()
        opt.step()
    assert loss.item() < 0.05
    assert (head(t, v).argmax(1) == y).all()
