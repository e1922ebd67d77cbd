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
from pipeline.fit.batches import Batches
from pipeline.fit.loop import adam, evaluate, head_outputs, train_epoch
from pipeline.fit.trainers import Scorer, Trained
from pipeline.head import HeadConfig, SGMFTHead, measure_guidance, variant_config
from pipeline.progress import progress
from pipeline.rundir import CHECKPOINT, RunDir


def head_config(cfg: FitConfig, embed_dim: int, num_classes: int) -> HeadConfig:
    if embed_dim % cfg.heads:
        raise SgmftError(f"--heads {cfg.heads} does not divide the cache's embed_dim {embed_dim}")
    try:
        base = HeadConfig(embed_dim=embed_dim, num_classes=num_classes, heads=cfg.heads, ffn_hidden=cfg.ffn_hidden,
                          input_norm=cfg.input_norm)
        return variant_config(cfg.variant, base)
    except ValueError as e:  # widths beyond HeadConfig's bounds
        raise SgmftError(f"{e} (--heads, --ffn-hidden and the cache's embed_dim set it)") from None


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
        val = _with_both(self.data.val)  # the guidance is a property of posts that have both modalities
        run.write_guidance(measure_guidance(self.head, val.text, val.image, split="val"))
        test = evaluate(self.head, self._batches(self.data.test), with_fusion=True)
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
        train, val = self._batches(self.data.train), self._batches(self.data.val)
        log = run.epoch_log()
        steps = -(-len(train) // cfg.batch_size)
        best = {"val_accuracy": -1.0}
        bar = progress(cfg.epochs * steps, f"fit {cfg.variant}", "step", cfg.quiet, leave=False)
        for epoch in range(1, cfg.epochs + 1):
            start = time.perf_counter()

            def on_step(n: int, loss: float, acc: float) -> None:
                bar.update(n)
                bar.set_postfix_str(f"epoch {epoch}/{cfg.epochs} loss {loss:.4f} acc {acc:.3f}")

            train_loss, train_acc = train_epoch(head, opt, train, cfg.batch_size, generator, on_step,
                                                modality_dropout=cfg.modality_dropout)
            ev = evaluate(head, val)
            log.append(dict(epoch=epoch, running_train_loss=train_loss, running_train_accuracy=train_acc,
                            val_loss=ev.loss, val_accuracy=ev.accuracy, seconds=time.perf_counter() - start))
            if ev.accuracy > best["val_accuracy"]:
                best = {"val_accuracy": ev.accuracy, "epoch": epoch, "state": copy.deepcopy(head.state_dict())}
        bar.close()
        return best

    def _batches(self, split: SplitData) -> Batches:
        return Batches.of(split, self.torch_device, image_sets=self.head_cfg.images != "first",
                          max_images=self.cfg.max_images)

    @staticmethod
    def scorer(run: RunDir, device: torch.device) -> Scorer:
        head, info = load_checkpoint(run.checkpoint, device)
        run.check_trained(info.get("labels", ()), str(info.get("cache_fingerprint", "")), str(info.get("run_id", "")),
                          CHECKPOINT)
        max_images = info.get("fit_config", {}).get("max_images", FitConfig.max_images)

        def logits(data: SplitData) -> np.ndarray:  # posts stay where they are, moved a batch at a time
            batches = Batches.of(data, device, image_sets=head.cfg.images != "first", max_images=max_images, stay=True)
            return head_outputs(head, batches)[0].cpu().numpy()

        return logits


def _with_both(split: SplitData) -> SplitData:
    """The posts of `split` that have a text and an image (all of a version-1 cache's)."""
    both = split.has_text & split.has_image
    return split if bool(both.all()) else split.subset(torch.nonzero(both).flatten())
