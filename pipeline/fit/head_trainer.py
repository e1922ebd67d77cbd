"""The trainer of the head variants: Adam over the paper's schedule, the checkpoint of the best validation epoch."""
from __future__ import annotations

import copy
import time

import numpy as np
import torch

from sgmft_cache import SgmftError, SplitData
from pipeline.device import resolve_device
from pipeline.fit.checkpoint import load_checkpoint, save_checkpoint
from pipeline.fit.config import FitConfig
from pipeline.fit.data import FitData
from pipeline.fit.loop import Batches, adam, evaluate, head_outputs, train_epoch
from pipeline.fit.trainers import Scorer, Trained
from pipeline.head import HeadConfig, SGMFTHead, measure_guidance, variant_config
from pipeline.progress import progress
from pipeline.rundir import CHECKPOINT, RunDir


def head_config(cfg: FitConfig, embed_dim: int, num_classes: int) -> HeadConfig:
    if embed_dim % cfg.heads:
        raise SgmftError(f"--heads {cfg.heads} does not divide the cache's embed_dim {embed_dim}")
    base = HeadConfig(embed_dim=embed_dim, num_classes=num_classes, heads=cfg.heads, ffn_hidden=cfg.ffn_hidden,
                      input_norm=cfg.input_norm)
    return variant_config(cfg.variant, base)


class HeadTrainer:
    """An SG-MFT head of the variant's HeadConfig, initialised from the seed."""

    def __init__(self, cfg: FitConfig, data: FitData):
        self.cfg, self.data = cfg, data
        self.torch_device = resolve_device(cfg.device)
        self.device = str(self.torch_device)
        self.head_cfg = head_config(cfg, data.meta.embed_dim, len(data.meta.labels))
        self.settings = self.head_cfg.to_dict()
        torch.manual_seed(cfg.seed)
        self.head = SGMFTHead(self.head_cfg).to(self.torch_device)

    def train(self, run: RunDir) -> Trained:
        best = self._epochs(run)
        self.head.load_state_dict(best["state"])
        run.write_guidance(measure_guidance(self.head, self.data.val.text, self.data.val.image, split="val"))
        test = evaluate(self.head, Batches.of(self.data.test, self.torch_device), with_fusion=True)
        meta, cfg = self.data.meta, self.cfg
        info = dict(labels=list(meta.labels), cache_fingerprint=meta.fingerprint, encoder=meta.model,
                    variant=cfg.variant, seed=cfg.seed, epoch=best["epoch"], fit_config=cfg.to_dict(),
                    extraction=meta.record(), run_id=run.run_id)
        save_checkpoint(run.checkpoint, self.head, best["state"], info)
        return Trained(best["val_accuracy"], f"epoch {best['epoch']}", dict(best_epoch=best["epoch"], epochs=cfg.epochs),
                       test.logits, test.fusion)

    def _epochs(self, run: RunDir) -> dict:
        """Run every epoch; return the state of the epoch with the best validation accuracy."""
        cfg, head = self.cfg, self.head
        opt = adam(head.parameters(), cfg.lr, tuple(cfg.betas))
        generator = torch.Generator().manual_seed(cfg.seed)
        train, val = Batches.of(self.data.train, self.torch_device), Batches.of(self.data.val, self.torch_device)
        log = run.epoch_log()
        steps = -(-len(train) // cfg.batch_size)
        best = {"val_accuracy": -1.0}
        bar = progress(cfg.epochs * steps, f"fit {cfg.variant}", "step", cfg.quiet, leave=False)
        for epoch in range(1, cfg.epochs + 1):
            start = time.perf_counter()

            def on_step(n: int, loss: float, acc: float) -> None:
                bar.update(n)
                bar.set_postfix_str(f"epoch {epoch}/{cfg.epochs} loss {loss:.4f} acc {acc:.3f}")

            train_loss, train_acc = train_epoch(head, opt, train, cfg.batch_size, generator, on_step)
            ev = evaluate(head, val)
            log.append(dict(epoch=epoch, running_train_loss=train_loss, running_train_accuracy=train_acc,
                            val_loss=ev.loss, val_accuracy=ev.accuracy, seconds=time.perf_counter() - start))
            if ev.accuracy > best["val_accuracy"]:
                best = {"val_accuracy": ev.accuracy, "epoch": epoch, "state": copy.deepcopy(head.state_dict())}
        bar.close()
        return best

    @staticmethod
    def scorer(run: RunDir, device: torch.device) -> Scorer:
        head, info = load_checkpoint(run.checkpoint, device)
        run.check_trained(info.get("labels", ()), str(info.get("cache_fingerprint", "")), str(info.get("run_id", "")),
                          CHECKPOINT)

        def logits(data: SplitData) -> np.ndarray:
            return head_outputs(head, data.text, data.image, device)[0].cpu().numpy()

        return logits
