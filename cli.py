"""The `sgmft` command line: thin typer commands, each one call into a pipeline stage.

Every option's default and help come from its stage's config dataclass (pipeline.settings), so the
two never drift apart; the configs also check the values, and a bad one is one line on stderr.
"""
from __future__ import annotations

import errno
import functools
import os
import re
import sys
import warnings
from typing import Annotated, Optional

import typer

from pipeline.demo import DemoConfig
from pipeline.extract import ExtractConfig
from pipeline.fit import FitConfig
from pipeline.predict import PredictConfig
from pipeline.report import ReportConfig
from pipeline.settings import help_of
from pipeline.variants import GROUP_NAMES

app = typer.Typer(
    help="Predict where a social-media post was written (home, school, work, ...) from its text and image, "
    "with the SG-MFT fusion head on cached Chinese-CLIP features.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def _root() -> None:
    """Stages: `extract` (encoders -> feature cache), `fit` (train the head), `report`, `predict`; `demo` runs them all."""


def opt(cls: type, name: str, *decls: str, **kw) -> typer.models.OptionInfo:
    """A typer option whose help is the config field's own."""
    return typer.Option(*decls, help=help_of(cls, name), **kw)


def friendly_errors(command):
    """Show a user-fixable error as one line on stderr and exit 2, a file-system or HDF5 error (disk full,
    read-only, permission) as one line saying what and where and exit 1; never a traceback for those."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        from sgmft_cache import SgmftError, SgmftWarning

        try:
            with warnings.catch_warnings():
                warnings.simplefilter("default", SgmftWarning)
                warnings.showwarning = _one_line_warning  # the library's warnings, one line each on stderr
                return command(*args, **kwargs)
        except SgmftError as e:
            typer.echo(f"error: {e}", err=True)
            raise typer.Exit(2) from None
        except KeyboardInterrupt:
            typer.echo("interrupted", err=True)
            raise typer.Exit(130) from None
        except OSError as e:  # h5py raises its file errors as OSError too
            typer.echo(f"error: {os_error_line(e)}", err=True)
            raise typer.Exit(1) from None

    return wrapper


def _one_line_warning(message, category, filename, lineno, file=None, line=None) -> None:
    typer.echo(f"warning: {message}", err=True)


OS_HINTS = {errno.ENOSPC: "the disk is full: free space or write elsewhere", errno.EDQUOT: "over the disk quota: "
            "free space or write elsewhere", errno.EROFS: "a read-only file system: write elsewhere",
            errno.EACCES: "no permission: make it writable or write elsewhere", errno.EPERM: "not permitted: make it "
            "writable or write elsewhere", errno.EFBIG: "larger than this file system or the file size limit allows"}


def os_error_line(e: OSError) -> str:
    """"<where>: <what> (<hint>)" for an OSError of Python's (errno, filename) or of h5py (both in the message)."""
    text = str(e).replace("\n", " ")
    named = re.search(r"(?:file)?name = '([^']*)'", text)
    number = re.search(r"errno = (\d+)", text)
    code = e.errno or (int(number[1]) if number else None)
    where = e.filename or (named[1] if named else "")
    what = e.strerror or (os.strerror(code) if code else text[:300])
    hint = OS_HINTS.get(code)
    line = f"{where}: {what}" if where else what
    return f"{line} ({hint})" if hint else line


E, F, P, R, D = ExtractConfig, FitConfig, PredictConfig, ReportConfig, DemoConfig


@app.command()
@friendly_errors
def extract(
    manifest: Annotated[str, opt(E, "manifest")] = E.manifest,
    cache: Annotated[str, opt(E, "cache")] = E.cache,
    split: Annotated[str, opt(E, "split")] = E.split,
    model: Annotated[str, opt(E, "model")] = E.model,
    checkpoint: Annotated[Optional[str], opt(E, "checkpoint")] = E.checkpoint,
    download_root: Annotated[Optional[str], opt(E, "download_root")] = E.download_root,
    random_weights: Annotated[bool, opt(E, "random_weights", "--random-weights")] = E.random_weights,
    weights_seed: Annotated[int, opt(E, "weights_seed")] = E.weights_seed,
    seed: Annotated[int, opt(E, "seed")] = E.seed,
    test_fraction: Annotated[float, opt(E, "test_fraction")] = E.test_fraction,
    stopwords: Annotated[Optional[str], opt(E, "stopwords")] = E.stopwords,
    extra_stopwords: Annotated[Optional[str], opt(E, "extra_stopwords")] = E.extra_stopwords,
    context_length: Annotated[int, opt(E, "context_length")] = E.context_length,
    empty_text: Annotated[str, opt(E, "empty_text")] = E.empty_text,
    device: Annotated[str, opt(E, "device")] = E.device,
    precision: Annotated[str, opt(E, "precision")] = E.precision,
    batch_size: Annotated[int, opt(E, "batch_size")] = E.batch_size,
    workers: Annotated[Optional[int], opt(E, "workers")] = E.workers,
    threads: Annotated[int, opt(E, "threads")] = E.threads,
    chunk_rows: Annotated[int, opt(E, "chunk_rows")] = E.chunk_rows,
    max_pixels: Annotated[int, opt(E, "max_pixels")] = E.max_pixels,
    max_image_bytes: Annotated[int, opt(E, "max_image_bytes")] = E.max_image_bytes,
    max_images: Annotated[int, opt(E, "max_images")] = E.max_images,
    overwrite: Annotated[bool, opt(E, "overwrite", "--overwrite")] = E.overwrite,
    quiet: Annotated[bool, opt(E, "quiet", "--quiet", "-q")] = E.quiet,
    dist_timeout: Annotated[float, opt(E, "dist_timeout")] = E.dist_timeout,
):
    """Encode posts with the frozen Chinese-CLIP encoders into the feature cache (stage one).

    Resumable: rows already in the cache are not encoded again.

    A post is kept with whatever it has that is usable: its text, its images (up to --max-images), or both.
    Rows with neither are listed in the cache with their reason; so are pictures left out of kept posts.

    Several GPUs or machines: torchrun --nproc-per-node N --no-python sgmft extract ... (see the README).
    """
    from pipeline.extract import extract as run_extract

    cfg = ExtractConfig(manifest=manifest, cache=cache, split=split, model=model, checkpoint=checkpoint,
                        download_root=download_root, random_weights=random_weights, weights_seed=weights_seed,
                        seed=seed, test_fraction=test_fraction, stopwords=stopwords, extra_stopwords=extra_stopwords,
                        context_length=context_length, empty_text=empty_text, device=device, precision=precision,
                        batch_size=batch_size, workers=workers, threads=threads, chunk_rows=chunk_rows,
                        max_pixels=max_pixels, max_image_bytes=max_image_bytes, max_images=max_images,
                        overwrite=overwrite, quiet=quiet, dist_timeout=dist_timeout)
    typer.echo(run_extract(cfg).text())


@app.command()
@friendly_errors
def fit(
    cache: Annotated[str, opt(F, "cache")] = F.cache,
    variant: Annotated[Optional[str], opt(F, "variant")] = None,
    variants: Annotated[Optional[str], typer.Option(help="Sweep: comma-separated variants and groups "
                                                    f"({', '.join(GROUP_NAMES)}).")] = None,
    seeds: Annotated[Optional[str], typer.Option(help="Sweep: seeds, e.g. 0,1,2 or 0-4 (with --variant or "
                                                 "--variants).")] = None,
    epochs: Annotated[int, opt(F, "epochs")] = F.epochs,
    lr: Annotated[float, opt(F, "lr")] = F.lr,
    batch_size: Annotated[int, opt(F, "batch_size")] = F.batch_size,
    seed: Annotated[int, opt(F, "seed")] = F.seed,
    heads: Annotated[int, opt(F, "heads")] = F.heads,
    ffn_hidden: Annotated[int, opt(F, "ffn_hidden")] = F.ffn_hidden,
    input_norm: Annotated[str, opt(F, "input_norm")] = F.input_norm,
    modality_dropout: Annotated[float, opt(F, "modality_dropout")] = F.modality_dropout,
    max_images: Annotated[int, opt(F, "max_images")] = F.max_images,
    val_fraction: Annotated[float, opt(F, "val_fraction")] = F.val_fraction,
    device: Annotated[str, opt(F, "device")] = F.device,
    out: Annotated[Optional[str], opt(F, "out")] = F.out,
    overwrite: Annotated[bool, opt(F, "overwrite", "--overwrite")] = F.overwrite,
    quiet: Annotated[bool, opt(F, "quiet", "--quiet", "-q")] = F.quiet,
):
    """Train the fusion head on a feature cache; pick the epoch by validation accuracy; evaluate on test.

    Writes a run directory: config.json, epochs.csv, checkpoint.pt, metrics.json, predictions.csv.
    With --variants and/or --seeds, loads the cache once and writes one run directory per (variant, seed).
    """
    from pipeline.fit import describe, fit as run_fit

    cfg = FitConfig(cache=cache, variant=variant or F.variant, epochs=epochs, lr=lr, batch_size=batch_size,
                    seed=seed, heads=heads, ffn_hidden=ffn_hidden, input_norm=input_norm,
                    modality_dropout=modality_dropout, max_images=max_images, val_fraction=val_fraction,
                    device=device, out=out, overwrite=overwrite, quiet=quiet)
    if variants is not None or seeds is not None:
        return _sweep(cfg, variant, variants, seeds)
    result = run_fit(cfg)
    typer.echo(f"{describe(result.metrics)} -> {result.run_dir}")


def _sweep(cfg: FitConfig, variant: Optional[str], variants: Optional[str], seeds: Optional[str]) -> None:
    from sgmft_cache import SgmftError
    from pipeline.fit import describe, expand_variants, parse_seeds, sweep

    if variant is not None and variants is not None:
        raise SgmftError("give --variant or --variants, not both")
    names = expand_variants(variants) if variants is not None else [cfg.variant]
    seed_list = parse_seeds(seeds) if seeds is not None else [cfg.seed]
    typer.echo(f"sweep: {len(names)} variant(s) x {len(seed_list)} seed(s) on {cfg.cache}")

    def show(run) -> None:
        if run.error:
            typer.echo(f"FAILED {run.variant} seed {run.seed}: {run.error}", err=True)
        else:
            typer.echo(f"{describe(run.metrics)} -> {run.run_dir}")

    failed = [r for r in sweep(cfg, names, seed_list, on_run=show) if r.error]
    if failed:
        typer.echo(f"{len(failed)} of {len(names) * len(seed_list)} runs failed: "
                   + ", ".join(f"{r.variant} seed {r.seed}" for r in failed), err=True)
        raise typer.Exit(1)


@app.command()
@friendly_errors
def report(
    run_dirs: Annotated[Optional[list[str]], typer.Argument(help="Run directories, or folders of them (default: the "
                                                            "folder --runs).")] = None,
    runs: Annotated[str, opt(R, "runs")] = R.runs,
    out: Annotated[str, opt(R, "out")] = R.out,
    tsne: Annotated[bool, opt(R, "tsne")] = R.tsne,
):
    """Tables (ours beside the paper's Tables 2-4) and figures of finished runs, one part per feature cache."""
    from pipeline.report import report as run_report

    summary = run_report(run_dirs or [runs], out, tsne=tsne)
    typer.echo(summary.markdown)
    for line in summary.skipped:
        typer.echo(f"skipped {line}", err=True)
    typer.echo(f"report written to {summary.report_path}")


@app.command()
@friendly_errors
def predict(
    run: Annotated[str, opt(P, "run")],
    data: Annotated[str, opt(P, "data")],
    out: Annotated[Optional[str], opt(P, "out")] = P.out,
    cache: Annotated[Optional[str], opt(P, "cache")] = P.cache,
    checkpoint: Annotated[Optional[str], opt(P, "checkpoint")] = P.checkpoint,
    download_root: Annotated[Optional[str], opt(P, "download_root")] = P.download_root,
    stopwords: Annotated[Optional[str], opt(P, "stopwords")] = P.stopwords,
    extra_stopwords: Annotated[Optional[str], opt(P, "extra_stopwords")] = P.extra_stopwords,
    device: Annotated[str, opt(P, "device")] = P.device,
    precision: Annotated[str, opt(P, "precision")] = P.precision,
    batch_size: Annotated[int, opt(P, "batch_size")] = P.batch_size,
    workers: Annotated[Optional[int], opt(P, "workers")] = P.workers,
    quiet: Annotated[bool, opt(P, "quiet", "--quiet", "-q")] = P.quiet,
):
    """Predict the semantic location of new, unlabelled posts with a finished run.

    Runs stage one for the posts with the run's encoder and preprocessing — refused when the
    fingerprint differs from the run's cache — then the run's head, and writes one CSV row per post.

    Posts that cannot be encoded (missing image, empty text) get an empty prediction and their reason.
    """
    from pipeline.predict import predict as run_predict

    cfg = PredictConfig(run=run, data=data, out=out, cache=cache, checkpoint=checkpoint, download_root=download_root,
                        stopwords=stopwords, extra_stopwords=extra_stopwords, device=device, precision=precision,
                        batch_size=batch_size, workers=workers, quiet=quiet)
    typer.echo(run_predict(cfg).text())


@app.command()
@friendly_errors
def demo(
    out: Annotated[str, opt(D, "out")] = D.out,
    posts: Annotated[int, opt(D, "posts")] = D.posts,
    seed: Annotated[int, opt(D, "seed")] = D.seed,
    encoder: Annotated[str, opt(D, "encoder")] = D.encoder,
    download_root: Annotated[Optional[str], opt(D, "download_root")] = D.download_root,
    variants: Annotated[Optional[str], opt(D, "variants")] = None,
    epochs: Annotated[Optional[int], opt(D, "epochs")] = D.epochs,
    lr: Annotated[Optional[float], opt(D, "lr")] = D.lr,
    tsne: Annotated[bool, opt(D, "tsne")] = D.tsne,
    quiet: Annotated[bool, opt(D, "quiet", "--quiet", "-q")] = D.quiet,
):
    """The whole pipeline offline on posts it generates itself: extract -> fit (several variants) -> report -> predict.

    With the tiny encoder (random weights) the accuracies mean nothing about SG-MFT; the demo says so loudly.
    """
    from pipeline.demo import demo as run_demo
    from pipeline.fit import expand_variants

    chosen = {"variants": tuple(expand_variants(variants))} if variants else {}
    cfg = DemoConfig(out=out, posts=posts, seed=seed, encoder=encoder, download_root=download_root, epochs=epochs,
                     lr=lr, tsne=tsne, quiet=quiet, **chosen)
    typer.echo(run_demo(cfg, say=typer.echo).text())


def main() -> None:  # pragma: no cover - console entry for `python cli.py`
    app(sys.argv[1:])


if __name__ == "__main__":  # pragma: no cover
    main()
