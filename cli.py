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
    variant: Annotated[str, typer.Option(help="Head variant (sgmft = the paper's full model).")] = "sgmft",
    epochs: Annotated[int, typer.Option(min=1, help="Training epochs (paper: 30).")] = 30,
    lr: Annotated[float, typer.Option(min=0.0, help="Adam learning rate (paper: 1e-5).")] = 1e-5,
    batch_size: Annotated[int, typer.Option(min=1, help="Posts per step (paper: 20).")] = 20,
    seed: Annotated[int, typer.Option(help="Seeds the val carve-out, initialisation and batch order.")] = 0,
    heads: Annotated[int, typer.Option(min=1, help="Attention heads h (paper: 8).")] = 8,
    ffn_hidden: Annotated[int, typer.Option(min=1, help="FFN hidden width d_h (unstated in the paper).")] = 1024,
    input_norm: Annotated[str, typer.Option(help="'l2' puts features on CLIP's unit sphere; 'none' keeps raw outputs.")] = "l2",
    val_fraction: Annotated[float, typer.Option(help="Share of train held out for checkpoint choice when the cache has no val split.")] = 0.1,
    device: Annotated[str, typer.Option(help="auto (cuda when present), cpu, cuda, cuda:N.")] = "auto",
    out: Annotated[Optional[str], typer.Option(help="Run directory [default: <cache folder>/runs/<time>-<variant>-seed<seed>].")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
):
    """Train the fusion head on a feature cache; pick the epoch by validation accuracy; evaluate on test.

    Writes a run directory: config.json, epochs.csv, checkpoint.pt, metrics.json, predictions.csv.
    """
    from pipeline.fit import FitConfig, fit as run_fit

    cfg = FitConfig(cache=cache, variant=variant, epochs=epochs, lr=lr, batch_size=batch_size, seed=seed,
                    heads=heads, ffn_hidden=ffn_hidden, input_norm=input_norm, val_fraction=val_fraction,
                    device=device, out=out, quiet=quiet)
    result = run_fit(cfg)
    m = result.metrics
    typer.echo(
        f"{m['variant']} seed {m['seed']}: test accuracy {m['test_accuracy']:.4f}, macro-F1 {m['test_macro_f1']:.4f} "
        f"(val {m['val_accuracy']:.4f} at epoch {m['best_epoch']}) -> {result.run_dir}"
    )


def main() -> None:  # pragma: no cover - console entry for `python cli.py`
    app(sys.argv[1:])


if __name__ == "__main__":  # pragma: no cover
    main()
