"""The training loop itself: Adam as built, the seeded batch order, the running figures, evaluation."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from pipeline.fit import loop
from pipeline.fit.loop import Batches, adam, evaluate, head_outputs, train_epoch
from pipeline.head import HeadConfig, SGMFTHead

N, D, K = 23, 4, 3
pytestmark = pytest.mark.usefixtures("one_thread")


class Recorder(nn.Module):
    """A linear 'head' that records which rows (by the id in text[:, 0]) each training batch holds."""

    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(2 * D, K)
        self.batches: list[list[int]] = []

    def forward(self, t, v):
        self.batches.append(t[:, 0].long().tolist())
        return self.linear(torch.cat([t, v], dim=1))


def rows(n: int = N) -> Batches:
    ids = torch.arange(n, dtype=torch.float32)[:, None]
    text = torch.cat([ids, torch.randn(n, D - 1)], dim=1)
    return Batches(text, torch.randn(n, D), torch.arange(n) % K)


def orders(seed: int, epochs: int = 2, batch: int = 5) -> list[list[list[int]]]:
    torch.manual_seed(0)
    head, data = Recorder(), rows()
    opt = torch.optim.SGD(head.parameters(), lr=0.0)
    gen = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(epochs):
        head.batches = []
        train_epoch(head, opt, data, batch, gen)
        out.append(head.batches)
    return out


def test_every_row_once_per_epoch_in_batches_of_the_batch_size():
    for epoch in orders(seed=0):
        assert sorted(i for b in epoch for i in b) == list(range(N))
        assert [len(b) for b in epoch] == [5, 5, 5, 5, 3]


def test_batches_are_shuffled_by_the_seed():
    a, b, other = orders(seed=7), orders(seed=7), orders(seed=8)
    assert a == b
    flat = lambda epoch: [i for batch in epoch for i in batch]  # noqa: E731
    assert flat(a[0]) != flat(other[0])
    assert flat(a[0]) != list(range(N)) and flat(a[0]) != flat(a[1])  # shuffled, and anew each epoch
    gen = torch.Generator().manual_seed(7)
    assert flat(a[0]) == torch.randperm(N, generator=gen).tolist()  # the generator's own permutation


def test_train_epoch_returns_running_means_taken_before_each_update_and_reports_progress():
    torch.manual_seed(0)
    head, data = Recorder(), rows()
    before = [p.detach().clone() for p in head.parameters()]
    opt = torch.optim.SGD(head.parameters(), lr=0.5)
    seen = []
    gen = torch.Generator().manual_seed(0)
    loss, acc = train_epoch(head, opt, data, 4, gen, on_step=lambda n, l, a: seen.append((n, l, a)), report_every=4)
    # the same batches on the weights before each step, replayed by hand
    replay = Recorder()
    with torch.no_grad():
        for p, b in zip(replay.parameters(), before):
            p.copy_(b)
    ropt = torch.optim.SGD(replay.parameters(), lr=0.5)
    order = torch.randperm(N, generator=torch.Generator().manual_seed(0))
    total, correct = 0.0, 0
    for start in range(0, N, 4):
        idx = order[start:start + 4]
        logits = replay(data.text[idx], data.image[idx])
        batch_loss = F.cross_entropy(logits, data.label[idx])
        total += float(batch_loss.detach()) * len(idx)
        correct += int((logits.argmax(1) == data.label[idx]).sum())
        ropt.zero_grad()
        batch_loss.backward()
        ropt.step()
    assert loss == pytest.approx(total / N, rel=1e-5) and acc == pytest.approx(correct / N)
    for p, q in zip(head.parameters(), replay.parameters()):
        torch.testing.assert_close(p, q)
    assert [n for n, _, _ in seen] == [4, 2] and seen[-1][1:] == pytest.approx((loss, acc))
    assert sum(n for n, _, _ in seen) == math.ceil(N / 4)  # the progress bar reaches every step
    assert head.training


def test_adam_is_built_with_the_given_settings_over_every_parameter():
    head = nn.Linear(3, 2)
    opt = adam(head.parameters(), 1e-5, (0.9, 0.99))
    assert isinstance(opt, torch.optim.Adam)
    group = opt.param_groups[0]
    assert (group["lr"], group["betas"], group["eps"], group["weight_decay"]) == (1e-5, (0.9, 0.99), 1e-8, 0)
    assert not group["amsgrad"] and not group["maximize"]
    assert {id(p) for p in group["params"]} == {id(p) for p in head.parameters()} and len(opt.param_groups) == 1


def test_adam_falls_back_when_there_is_no_fused_kernel(monkeypatch):
    real = torch.optim.Adam
    made = []

    def no_fused(params, **kw):
        if kw.get("fused"):
            raise RuntimeError("fused=True requires CUDA")
        made.append(kw)
        return real(params, **kw)

    monkeypatch.setattr(loop.torch.optim, "Adam", no_fused)
    opt = adam(nn.Linear(3, 2).parameters(), 1e-3, (0.8, 0.9))
    assert made == [dict(lr=1e-3, betas=(0.8, 0.9))] and len(opt.param_groups[0]["params"]) == 2


def small_head() -> SGMFTHead:
    torch.manual_seed(0)
    return SGMFTHead(HeadConfig(embed_dim=D, num_classes=K, heads=2, ffn_hidden=8, classifier_hidden=(6,)))


def test_evaluate_is_the_heads_loss_and_accuracy_in_eval_mode_in_any_batch_size():
    head, data = small_head(), rows()
    head.train()
    ev = evaluate(head, data, batch_size=4, with_fusion=True)
    assert not head.training
    with torch.no_grad():
        logits = head(data.text, data.image)
    assert ev.loss == pytest.approx(float(F.cross_entropy(logits, data.label)), rel=1e-5)
    assert ev.accuracy == pytest.approx(float((logits.argmax(1) == data.label).float().mean()))
    torch.testing.assert_close(torch.from_numpy(ev.logits), logits)
    torch.testing.assert_close(torch.from_numpy(ev.fusion), head.fuse(data.text, data.image).detach())
    assert evaluate(head, data).fusion is None
    torch.testing.assert_close(torch.from_numpy(evaluate(head, data, batch_size=1).logits), logits)


def test_head_outputs_of_no_posts():
    head = small_head()
    logits, fusion = head_outputs(head, Batches(torch.zeros(0, D), torch.zeros(0, D), torch.zeros(0, dtype=torch.long)))
    assert logits.shape == (0, K) and fusion is None
