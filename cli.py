"""The `sgmft` command line: thin typer commands, each one call into a pipeline stage."""
from __future__ import annotations

import functools
import sys
from typing import Annotated, Optional

import typer

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


def friendly_errors(command):
    """Show a user-fixable error as one line on stderr and exit 2; never a traceback for those."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        from sgmft_cache import SgmftError

        try:
            return command(*args, **kwargs)
        except SgmftError as e:
            typer.echo(f"error: {e}", err=True)
            raise typer.Exit(2) from None
        except KeyboardInterrupt:
            typer.echo("interrupted", err=True)
            raise typer.Exit(130) from None

    return wrapper


@app.command()
@friendly_errors
def extract(
    manifest: Annotated[str, typer.Option(help="Posts to encode: CSV, TSV, JSONL or Parquet with columns text, image (a path relative to the manifest's folder, or absolute) and optionally id, label, split.")] = "data/posts.csv",
    cache: Annotated[str, typer.Option(help="Feature cache to write (HDF5, SPEC §3).")] = "cache/feats.h5",
    split: Annotated[str, typer.Option(help="train, val, test, or all. Without a split column in the manifest: a stratified seeded 20 % test split, the rest train.")] = "all",
    model: Annotated[str, typer.Option(help="cn_clip model: ViT-H-14 (paper), ViT-L-14, ViT-L-14-336, ViT-B-16, RN50; or tiny (random weights, tests/demos only).")] = "ViT-H-14",
    checkpoint: Annotated[Optional[str], typer.Option(help="cn_clip checkpoint file ({'state_dict': ...}) instead of cn_clip's own download.")] = None,
    download_root: Annotated[Optional[str], typer.Option(help="Folder of cn_clip's downloaded weights (default ~/.cache/clip).")] = None,
    random_weights: Annotated[bool, typer.Option("--random-weights", help="Seeded random weights in the real architecture: for tests and benchmarks; the features mean nothing.")] = False,
    weights_seed: Annotated[int, typer.Option(help="Seed of random weights (tiny, --random-weights).")] = 0,
    seed: Annotated[int, typer.Option(help="Seed of the automatic train/test split.")] = 0,
    test_fraction: Annotated[float, typer.Option(help="Test share of the automatic split (paper: 20 %).")] = 0.2,
    stopwords: Annotated[Optional[str], typer.Option(help="Stop-word file (one word a line) replacing the shipped stopwords-iso zh+en lists.")] = None,
    extra_stopwords: Annotated[Optional[str], typer.Option(help="Stop-word file whose words are added to the list in use.")] = None,
    context_length: Annotated[int, typer.Option(help="Text tokens incl. [CLS]/[SEP] (cn_clip: 52); longer texts are cut.")] = 52,
    empty_text: Annotated[str, typer.Option(help="A text empty after cleaning: 'skip' the row (listed with its reason) or 'encode' the empty string.")] = "skip",
    device: Annotated[str, typer.Option(help="auto (cuda when present), cpu, cuda, cuda:N.")] = "auto",
    precision: Annotated[str, typer.Option(help="auto (fp16 on CUDA, fp32 on CPU), fp32, fp16, bf16.")] = "auto",
    batch_size: Annotated[int, typer.Option(min=1, help="Posts per encoder batch.")] = 64,
    workers: Annotated[Optional[int], typer.Option(min=0, help="Image decoding processes; 0 decodes in the main process (default: beside a GPU, CPU cores - 1, at most 8; on the CPU, one per 8 cores).")] = None,
    threads: Annotated[int, typer.Option(min=0, help="On CPU: the encoder's threads (0: the cores the decoding workers leave).")] = 0,
    chunk_rows: Annotated[int, typer.Option(min=1, help="Rows per staged chunk: the most work a crash can lose; texts are also sorted by length within this many rows.")] = 512,
    max_pixels: Annotated[int, typer.Option(min=1, help="Larger images are skipped as 'image too large' (default: Pillow's own limit, about 9459 x 9459).")] = 89_478_485,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace a cache made with another model, weights or preprocessing.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
    dist_timeout: Annotated[float, typer.Option(min=1, help="Under torchrun: seconds a rank waits for the others at a sync point (3600).")] = 3600.0,
):
    """Encode posts with the frozen Chinese-CLIP encoders into the feature cache (stage one).

    Resumable: rows already in the cache are not encoded again.

    Rows that cannot be encoded (broken image, empty text) are listed in the cache with their reason.

    Several GPUs or machines: torchrun --nproc-per-node N --no-python sgmft extract ... (see the README).
    """
    from pipeline.extract import ExtractConfig, extract as run_extract

    cfg = ExtractConfig(manifest=manifest, cache=cache, split=split, model=model, checkpoint=checkpoint,
                        download_root=download_root, random_weights=random_weights, weights_seed=weights_seed,
                        seed=seed, test_fraction=test_fraction, stopwords=stopwords, extra_stopwords=extra_stopwords,
                        context_length=context_length, empty_text=empty_text, device=device, precision=precision,
                        batch_size=batch_size, workers=workers, threads=threads, chunk_rows=chunk_rows,
                        max_pixels=max_pixels, overwrite=overwrite, quiet=quiet, dist_timeout=dist_timeout)
    typer.echo(run_extract(cfg).text())


@app.command()
@friendly_errors
def fit(
    cache: Annotated[str, typer.Option(help="Feature cache written by `sgmft extract`.")] = "cache/feats.h5",
    variant: Annotated[Optional[str], typer.Option(help="Head variant (default: sgmft, the paper's full model).")] = None,
    variants: Annotated[Optional[str], typer.Option(help="Sweep: comma-separated variants and groups (paper, baselines, all).")] = None,
    seeds: Annotated[Optional[str], typer.Option(help="Sweep: seeds, e.g. 0,1,2 or 0-4 (with --variant or --variants).")] = None,
    epochs: Annotated[int, typer.Option(min=1, help="Training epochs (paper: 30).")] = 30,
    lr: Annotated[float, typer.Option(min=0.0, help="Adam learning rate (paper: 1e-5).")] = 1e-5,
    batch_size: Annotated[int, typer.Option(min=1, help="Posts per step (paper: 20).")] = 20,
    seed: Annotated[int, typer.Option(help="Seeds the val carve-out, initialisation and batch order.")] = 0,
    heads: Annotated[int, typer.Option(min=1, help="Attention heads h (paper: 8).")] = 8,
    ffn_hidden: Annotated[int, typer.Option(min=1, help="FFN hidden width d_h (unstated in the paper).")] = 1024,
    input_norm: Annotated[str, typer.Option(help="'l2' puts features on CLIP's unit sphere; 'none' keeps raw outputs.")] = "l2",
    val_fraction: Annotated[float, typer.Option(help="Share of train held out for checkpoint choice when the cache has no val split.")] = 0.1,
    device: Annotated[str, typer.Option(help="auto (cuda when present), cpu, cuda, cuda:N.")] = "auto",
    out: Annotated[Optional[str], typer.Option(help="Run directory; for a sweep the folder of <variant>-seed<seed> runs (default: <cache folder>/runs/<time>-<variant>-seed<seed>).")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
):
    """Train the fusion head on a feature cache; pick the epoch by validation accuracy; evaluate on test.

    Writes a run directory: config.json, epochs.csv, checkpoint.pt, metrics.json, predictions.csv.
    With --variants and/or --seeds, loads the cache once and writes one run directory per (variant, seed).
    """
    from pipeline.fit import FitConfig, fit as run_fit
    from pipeline.fit.sweep import describe

    cfg = FitConfig(cache=cache, variant=variant or "sgmft", epochs=epochs, lr=lr, batch_size=batch_size, seed=seed,
                    heads=heads, ffn_hidden=ffn_hidden, input_norm=input_norm, val_fraction=val_fraction,
                    device=device, out=out, quiet=quiet)
    if variants is not None or seeds is not None:
        return _sweep(cfg, variant, variants, seeds)
    result = run_fit(cfg)
    typer.echo(f"{describe(result.metrics)} -> {result.run_dir}")


def _sweep(cfg, variant: Optional[str], variants: Optional[str], seeds: Optional[str]) -> None:
    from sgmft_cache import SgmftError
    from pipeline.fit.sweep import describe, expand_variants, parse_seeds, sweep

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
    run_dirs: Annotated[Optional[list[str]], typer.Argument(help="Run directories, or folders of them (default: the folder --runs).")] = None,
    runs: Annotated[str, typer.Option(help="Folder searched for run directories when none are given.")] = "cache/runs",
    out: Annotated[str, typer.Option(help="Report folder: report.md and one sub-folder of PNG figures per cache.")] = "cache/report",
    tsne: Annotated[bool, typer.Option(help="Draw the t-SNE maps of M_fuse (the slowest part).")] = True,
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
    run: Annotated[str, typer.Option(help="Run directory of `sgmft fit` (a head's or the logreg-probe's); it records how its features were made.")],
    data: Annotated[str, typer.Option(help="New posts: CSV, TSV, JSONL or Parquet with columns text, image (relative to the file's folder, or absolute) and optionally id; label and split are ignored.")],
    out: Annotated[Optional[str], typer.Option(help="Predictions CSV: id, pred, p_<class> per class, skipped_reason (default: <data folder>/<data stem>.predictions.csv).")] = None,
    cache: Annotated[Optional[str], typer.Option(help="Feature cache of the new posts, resumable (default: the CSV's path with .cache.h5).")] = None,
    checkpoint: Annotated[Optional[str], typer.Option(help="The run's cn_clip weights file on this machine (default: where the run's extract found them).")] = None,
    download_root: Annotated[Optional[str], typer.Option(help="cn_clip's weights folder on this machine (default: the run's).")] = None,
    stopwords: Annotated[Optional[str], typer.Option(help="Where the run's --stopwords file lies on this machine (default: its recorded path).")] = None,
    extra_stopwords: Annotated[Optional[str], typer.Option(help="Where the run's --extra-stopwords file lies on this machine.")] = None,
    device: Annotated[str, typer.Option(help="auto (cuda when present), cpu, cuda, cuda:N.")] = "auto",
    precision: Annotated[str, typer.Option(help="Encoders: auto (fp16 on CUDA, fp32 on CPU), fp32, fp16, bf16.")] = "auto",
    batch_size: Annotated[int, typer.Option(min=1, help="Posts per encoder batch.")] = 64,
    workers: Annotated[Optional[int], typer.Option(min=0, help="Image decoding processes; 0 decodes in the main process (default: CPU cores - 1, at most 8).")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
):
    """Predict the semantic location of new, unlabelled posts with a finished run.

    Runs stage one for the posts with the run's encoder and preprocessing — refused when the
    fingerprint differs from the run's cache — then the run's head, and writes one CSV row per post.

    Posts that cannot be encoded (missing image, empty text) get an empty prediction and their reason.
    """
    from pipeline.extract.config import default_workers
    from pipeline.predict import PredictConfig, predict as run_predict

    cfg = PredictConfig(run=run, data=data, out=out, cache=cache, checkpoint=checkpoint, download_root=download_root,
                        stopwords=stopwords, extra_stopwords=extra_stopwords, device=device, precision=precision,
                        batch_size=batch_size, workers=default_workers() if workers is None else workers, quiet=quiet)
    typer.echo(run_predict(cfg).text())


@app.command()
@friendly_errors
def demo(
    out: Annotated[str, typer.Option(help="Folder for everything the demo makes: posts, cache, runs, report, predictions.")] = "cache/demo",
    posts: Annotated[int, typer.Option(min=70, help="Posts to generate, balanced over 7 classes (560).")] = 560,
    seed: Annotated[int, typer.Option(help="Seeds the posts, splits and fits: same seed, same demo.")] = 0,
    encoder: Annotated[str, typer.Option(help="auto: ViT-H-14 when its weights are already in cn_clip's folder, else tiny (random weights); or a cn_clip model name, or tiny.")] = "auto",
    download_root: Annotated[Optional[str], typer.Option(help="cn_clip's weights folder searched by auto (default ~/.cache/clip).")] = None,
    variants: Annotated[Optional[str], typer.Option(help="Comma-separated variants and groups to fit, as `sgmft fit --variants` (default: sgmft, clip-only, sfm-only, sim-only, text-only, image-only, concat-mlp, logreg-probe).")] = None,
    epochs: Annotated[Optional[int], typer.Option(min=1, help="Epochs per fit (default: 20 with tiny, the paper's 30 with real weights).")] = None,
    lr: Annotated[Optional[float], typer.Option(min=0.0, help="Learning rate (default: 1e-3 with tiny, the paper's 1e-5 with real weights).")] = None,
    tsne: Annotated[bool, typer.Option(help="Draw the report's t-SNE maps.")] = True,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars.")] = False,
):
    """The whole pipeline offline on posts it generates itself: extract -> fit (several variants) -> report -> predict.

    With the tiny encoder (random weights) the accuracies mean nothing about SG-MFT; the demo says so loudly.
    """
    from pipeline.demo import DemoConfig, demo as run_demo
    from pipeline.fit.sweep import expand_variants

    chosen = {"variants": tuple(expand_variants(variants))} if variants else {}
    cfg = DemoConfig(out=out, posts=posts, seed=seed, encoder=encoder, download_root=download_root, epochs=epochs,
                     lr=lr, tsne=tsne, quiet=quiet, **chosen)
    typer.echo(run_demo(cfg, say=typer.echo).text())


def main() -> None:  # pragma: no cover - console entry for `python cli.py`
    app(sys.argv[1:])


if __name__ == "__main__":  # pragma: no cover
    main()
