"""The fit benchmark's reference computes the same function as the head, and reads the same rows."""
from __future__ import annotations

import sys
from pathlib import Path

import h5py
import pytest
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/ is a folder of scripts, not installed
from benchmarks.reference_fit import ReferenceHead, reference_loader  # noqa: E402
from pipeline.head import HeadConfig, SGMFTHead, variant_config  # noqa: E402

D, H = 16, 4


def test_reference_equals_head_in_logits_and_gradients():
    torch.manual_seed(0)
    head = SGMFTHead(HeadConfig(embed_dim=D, num_classes=7, heads=H, ffn_hidden=2 * D)).double()  # tight tolerances
    ref = ReferenceHead(head)
    t, v = torch.randn(5, D, dtype=torch.float64), torch.randn(5, D, dtype=torch.float64)
    y = torch.tensor([0, 1, 2, 3, 6])
    got = head(t, v)
    torch.testing.assert_close(ref(t, v), got)
    named = [(n, p) for n, p in head.named_parameters() if not n.startswith("inputs.")]  # placeholders: unused here
    params = [p for _, p in named]
    ours = torch.autograd.grad(F.cross_entropy(got, y), params, allow_unused=True)
    theirs = torch.autograd.grad(F.cross_entropy(ref(t, v), y), params)
    for (name, _), a, b in zip(named, ours, theirs):
        if a is None:  # one-key Q/K, skipped by the fast path: the reference's gradient is 0 up to rounding
            assert b.abs().max() < 1e-12, name
        else:
            torch.testing.assert_close(a, b, msg=name)


def test_reference_refuses_variants_it_does_not_implement():
    with pytest.raises(ValueError):
        ReferenceHead(SGMFTHead(variant_config("sfm-only", HeadConfig(embed_dim=D, heads=H, ffn_hidden=D))))


def test_reference_loader_reads_every_row_once(synthetic_cache):
    with h5py.File(synthetic_cache, "r") as f:
        text, label = torch.from_numpy(f["train/text"][...]), torch.from_numpy(f["train/label"][...])
    rows = [(t, y) for tb, _, yb in reference_loader(synthetic_cache, batch_size=20) for t, y in zip(tb, yb)]
    assert len(rows) == len(label)
    got = torch.stack([t for t, _ in rows])
    order = torch.cdist(got, text).argmin(dim=1)  # where each loaded row sits in the file
    assert sorted(order.tolist()) == list(range(len(label)))
    assert torch.equal(torch.tensor([int(y) for _, y in rows]), label[order])


def test_flop_count_matches_the_layer_shapes():
    """BENCHMARKS.md's FLOPs per sample: FlopCounterMode plus X_inter's attention, checked by hand here."""
    from benchmarks.flops import step_cost

    d, hid, cls = 16, 24, (12, 8)
    cost = step_cost(HeadConfig(embed_dim=d, num_classes=5, heads=H, ffn_hidden=hid, classifier_hidden=cls), batch=4)
    # one-key fast path: V and output projections run, Q and K do not
    macs = 6 * d * d + (2 * d * hid + hid * d) + (d * hid + hid * d) + 4 * 2 * d * d  # SIM attn, FFNs, SFM
    macs += d * 12 + 12 * 8 + 8 * 5  # classifier
    x_inter = 2 * 2 * d * d  # Q Kᵀ and P V with head size 1, D queries and D keys
    assert cost["forward_flops_per_sample"] == 2 * macs + x_inter
    skipped = (4 + 8) * (d * d + d)  # W^Q, W^K (+ biases) of the SIM's two QKV and of the SFM's four attentions
    skipped += 2 * d  # the placeholders of a missing text / image: posts with both modalities never use them
    assert cost["params_updated"] == cost["params"] - skipped
