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
    """Stages: `extract` (encoders -> feature cache), `fit` (train the head), `report`, `predict`."""


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
def fit(
    cache: Annotated[str, typer.Option(help="Feature cache written by `sgmft extract`.")] = "cache/feats.h5",
    variant: Annotated[Optional[str], typer.Option(help="Head variant (sgmft = the paper's full model) [default: sgmft].")] = None,
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
    out: Annotated[Optional[str], typer.Option(help="Run directory; for a sweep the folder of <variant>-seed<seed> runs [default: <cache folder>/runs/<time>-<variant>-seed<seed>].")] = None,
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
    run_dirs: Annotated[Optional[list[str]], typer.Argument(help="Run directories (or folders of them) [default: --runs].")] = None,
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


def main() -> None:  # pragma: no cover - console entry for `python cli.py`
    app(sys.argv[1:])


if __name__ == "__main__":  # pragma: no cover
    main()
