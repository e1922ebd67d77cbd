"""`sgmft demo`: the whole pipeline on a sample of posts it generates itself — extract, fit, report, predict.

Needs no data and no network: the posts are drawn and written at run time (sample.py), and the
encoder is Chinese-CLIP ViT-H-14 when its weights already lie in cn_clip's download folder, else
the `tiny` random-weight encoder — whose accuracies mean nothing about SG-MFT, as every output says.
"""
from __future__ import annotations

import contextlib
import shutil
import time
from pathlib import Path
from typing import Callable

import pandas as pd
import torch

from sgmft_cache import SgmftError, staging_dir
from pipeline.demo.config import AUTO_ENCODER, PAPER, REAL_MODEL, TINY_EPOCHS, TINY_LR, DemoConfig
from pipeline.demo.sample import write_sample
from pipeline.demo.summary import DemoSummary, Schedule, about_this_demo, encoder_banner, feature_spread
from pipeline.extract import ExtractConfig, downloaded_weights, extract
from pipeline.fit import FitConfig, SweepRun, describe, sweep
from pipeline.predict import PredictConfig, PredictSummary, predict
from pipeline.report import ReportSummary, report


def choose_encoder(encoder: str, download_root: str | None) -> tuple[str, str]:
    """(model name, why): ViT-H-14 where its weights are already downloaded, else tiny; nothing is downloaded."""
    if encoder != AUTO_ENCODER:
        return encoder, f"asked for with --encoder {encoder}"
    found = downloaded_weights(REAL_MODEL, download_root)
    if found:
        return REAL_MODEL, f"its weights were found at {found}"
    where = download_root or "~/.cache/clip"
    return "tiny", f"{REAL_MODEL}'s weights are not in {where}; the demo downloads nothing"


def schedule(cfg: DemoConfig, model: str) -> Schedule:
    if model == "tiny":
        return Schedule(cfg.epochs or TINY_EPOCHS, cfg.lr or TINY_LR, paper=False)
    paper = FitConfig.epochs, FitConfig.lr
    return Schedule(cfg.epochs or paper[0], cfg.lr or paper[1],
                    paper=cfg.epochs in (None, paper[0]) and cfg.lr in (None, paper[1]))


def demo(cfg: DemoConfig, say: Callable[[str], None] = print) -> DemoSummary:
    """Run the demo into cfg.out; `say` gets progress lines; returns what it made and measured."""
    out, seconds = Path(cfg.out), {}
    model, why = choose_encoder(cfg.encoder, cfg.download_root)
    plan = schedule(cfg, model)
    say(encoder_banner(model, why))
    if model != "tiny" and not torch.cuda.is_available():
        say(f"note: {model} on a CPU encodes far more slowly than tiny; --encoder tiny gives the quick demo")
    with _timed(seconds, "generate"):
        manifest = write_sample(out / "posts", cfg.posts, cfg.seed)
    say(f"generated {cfg.posts} posts -> {manifest}")
    with _timed(seconds, "extract"):
        say(extract(ExtractConfig(manifest=str(manifest), cache=str(out / "feats.h5"), model=model, seed=cfg.seed,
                                  download_root=cfg.download_root, workers=cfg.workers, overwrite=True,
                                  quiet=cfg.quiet)).text())
    with _timed(seconds, "fit"), _threads(1 if model == "tiny" else None):
        runs = _fit(cfg, out, plan, say)
    with _timed(seconds, "report"), _threads(1):
        summary = report([str(r.run_dir) for r in runs], out / "report", tsne=cfg.tsne)
        about_this_demo(summary.report_path, cfg.posts, model, why, plan, feature_spread(out / "feats.h5"))
    with _timed(seconds, "predict"):
        predicted, agreement = _predict(cfg, out, summary)
    say(predicted.text())
    return DemoSummary(out, model, why, plan, runs, summary, predicted, agreement, seconds)


def _fit(cfg: DemoConfig, out: Path, plan: Schedule, say: Callable[[str], None]) -> list[SweepRun]:
    say(f"fitting {len(cfg.variants)} variants, {plan.epochs} epochs at lr {plan.lr:g}" + ("" if plan.paper else
        f" (not {PAPER}: see the note in the report)"))
    base = FitConfig(cache=str(out / "feats.h5"), epochs=plan.epochs, lr=plan.lr, seed=cfg.seed,
                     out=str(out / "runs"), overwrite=True, quiet=cfg.quiet)
    runs = sweep(base, list(cfg.variants), [cfg.seed],
                 on_run=lambda r: say(f"FAILED {r.variant}: {r.error}" if r.error else f"  {describe(r.metrics)}"))
    done = [r for r in runs if r.error is None]
    if not done:
        raise SgmftError(f"every variant failed to fit, e.g. {runs[0].variant}: {runs[0].error}")
    return done


def _predict(cfg: DemoConfig, out: Path, summary: ReportSummary) -> tuple[PredictSummary, tuple[int, int]]:
    """Fresh posts through the run with the best validation accuracy; (summary, (agreeing, predicted))."""
    manifest = write_sample(out / "new_posts", cfg.new_posts, cfg.seed + 1, prefix="new", bad_rows=True)
    cache = manifest.with_name("features.h5")
    cache.unlink(missing_ok=True)  # an earlier demo's posts had the same ids: start afresh, as extract does
    shutil.rmtree(staging_dir(cache), ignore_errors=True)
    best = summary.sections[0].best.representative()
    result = predict(PredictConfig(run=str(best.path), data=str(manifest), cache=str(cache), workers=cfg.workers,
                                   quiet=cfg.quiet))
    drawn = pd.read_csv(manifest, dtype=str, keep_default_na=False).set_index("id")["label"]
    done = result.table[result.table["pred"] != ""]
    return result, (int(sum(drawn[i] == p for i, p in zip(done["id"], done["pred"]))), len(done))


@contextlib.contextmanager
def _threads(n: int | None):
    """At most n threads for torch and the OpenMP/BLAS pools (None: as they are). Heads on 64-wide features and
    t-SNE of ~100 points gain nothing from threads, and on a busy 2-core machine their spin-waits made them
    7x (fits: 14 s vs 99 s for three variants) and 50x (t-SNE: 0.25 s vs 13 s) slower, measured."""
    from threadpoolctl import threadpool_limits

    saved = torch.get_num_threads()
    torch.set_num_threads(n or saved)
    try:
        with threadpool_limits(n):
            yield
    finally:
        torch.set_num_threads(saved)


@contextlib.contextmanager
def _timed(seconds: dict[str, float], phase: str):
    start = time.perf_counter()
    yield
    seconds[phase] = time.perf_counter() - start
