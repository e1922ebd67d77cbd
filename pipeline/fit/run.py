"""`sgmft fit`: train the head on a cache, choose by validation accuracy, evaluate on test."""
from __future__ import annotations

import copy
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from tqdm import tqdm

from sgmft_cache import SgmftError
from pipeline.device import resolve_device
from pipeline.fit.checkpoint import save_checkpoint
from pipeline.fit.config import FitConfig
from pipeline.fit.data import CachedSplits, FitData, load_cached_splits, prepare
from pipeline.fit.loop import Batches, adam, evaluate, train_epoch
from pipeline.fit.outputs import EpochLog, extraction_record, new_run_dir, write_json, write_predictions
from pipeline.fit.probe import PROBE, fit_probe
from pipeline.head import VARIANTS, HeadConfig, SGMFTHead, variant_config
from pipeline.metrics import macro_f1


@dataclass(frozen=True)
class FitResult:
    run_dir: Path
    metrics: dict


def head_config(cfg: FitConfig, embed_dim: int, num_classes: int) -> HeadConfig:
    if cfg.variant not in VARIANTS:
        raise SgmftError(f"unknown variant {cfg.variant!r}; choose from {', '.join([*VARIANTS, PROBE])}")
    if embed_dim % cfg.heads:
        raise SgmftError(f"--heads {cfg.heads} does not divide the cache's embed_dim {embed_dim}")
    base = HeadConfig(
        embed_dim=embed_dim, num_classes=num_classes, heads=cfg.heads,
        ffn_hidden=cfg.ffn_hidden, input_norm=cfg.input_norm,
    )
    return variant_config(cfg.variant, base)


def fit(cfg: FitConfig, splits: CachedSplits | None = None) -> FitResult:
    """Train one variant with one seed; `splits` lets a sweep load the cache once."""
    splits = splits or load_cached_splits(cfg.cache)
    if cfg.variant == PROBE:  # not a head: a linear model on the concatenated features
        return FitResult(*fit_probe(cfg, splits))
    data = prepare(splits, cfg.val_fraction, cfg.seed)
    device = resolve_device(cfg.device)
    hcfg = head_config(cfg, data.meta.embed_dim, len(data.meta.labels))
    torch.manual_seed(cfg.seed)
    head = SGMFTHead(hcfg).to(device)
    run_dir = new_run_dir(cfg.out, cfg.cache, cfg.variant, cfg.seed)
    write_json(run_dir / "config.json", _resolved_config(cfg, hcfg, data, device))
    best = _train(cfg, head, data, device, run_dir)
    head.load_state_dict(best["state"])
    return FitResult(run_dir, _finish(cfg, head, data, device, run_dir, best))


def _train(cfg: FitConfig, head: SGMFTHead, data: FitData, device: torch.device, run_dir: Path) -> dict:
    """Run every epoch; return the state of the epoch with the best validation accuracy."""
    opt = adam(head.parameters(), cfg.lr, tuple(cfg.betas))
    generator = torch.Generator().manual_seed(cfg.seed)
    train, val = Batches.of(data.train, device), Batches.of(data.val, device)
    log = EpochLog(run_dir / "epochs.csv")
    steps = -(-len(train) // cfg.batch_size)
    best = {"val_accuracy": -1.0}
    bar = tqdm(total=cfg.epochs * steps, disable=cfg.quiet, unit="step", desc=f"fit {cfg.variant}", leave=False)
    for epoch in range(1, cfg.epochs + 1):
        start = time.perf_counter()

        def on_step(n: int, loss: float, acc: float) -> None:
            bar.update(n)
            bar.set_postfix_str(f"epoch {epoch}/{cfg.epochs} loss {loss:.4f} acc {acc:.3f}")

        train_loss, train_acc = train_epoch(head, opt, train, cfg.batch_size, generator, on_step)
        ev = evaluate(head, val)
        log.append(dict(epoch=epoch, train_loss=train_loss, train_accuracy=train_acc, val_loss=ev.loss,
                        val_accuracy=ev.accuracy, seconds=time.perf_counter() - start))
        if ev.accuracy > best["val_accuracy"]:
            best = {"val_accuracy": ev.accuracy, "epoch": epoch, "state": copy.deepcopy(head.state_dict())}
    bar.close()
    return best


def _finish(cfg: FitConfig, head: SGMFTHead, data: FitData, device: torch.device, run_dir: Path, best: dict) -> dict:
    test = evaluate(head, Batches.of(data.test, device), with_fusion=True)
    labels = list(data.meta.labels)
    y_true = data.test.label.numpy()
    pred = write_predictions(run_dir, data.test.ids, y_true, test.logits, test.fusion, labels)
    info = dict(labels=labels, cache_fingerprint=data.meta.fingerprint, encoder=data.meta.model,
                variant=cfg.variant, seed=cfg.seed, epoch=best["epoch"], fit_config=cfg.to_dict(),
                extraction=extraction_record(data.meta))
    save_checkpoint(run_dir / "checkpoint.pt", head, best["state"], info)
    metrics = dict(
        variant=cfg.variant, seed=cfg.seed, test_accuracy=test.accuracy,
        test_macro_f1=macro_f1(y_true, pred, len(labels)), test_loss=test.loss,
        val_accuracy=best["val_accuracy"], best_epoch=best["epoch"], epochs=cfg.epochs,
        cache=str(cfg.cache), cache_fingerprint=data.meta.fingerprint, encoder=data.meta.model,
        encoder_note=data.meta.extra.get("encoder_note", ""), labels=labels, val_source=data.val_source,
        train_size=len(data.train), val_size=len(data.val), test_size=len(data.test), device=str(device),
    )
    write_json(run_dir / "metrics.json", metrics)  # written last: its presence marks a finished run
    return metrics


def _resolved_config(cfg: FitConfig, hcfg: HeadConfig, data: FitData, device: torch.device) -> dict:
    return dict(fit=cfg.to_dict(), head=hcfg.to_dict(), device=str(device), val_source=data.val_source,
                cache_fingerprint=data.meta.fingerprint, encoder=data.meta.model, labels=list(data.meta.labels),
                torch=torch.__version__, extraction=extraction_record(data.meta))
