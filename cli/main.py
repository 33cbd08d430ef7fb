"""``ecrm``: load data, train, score, backtest and serve, on one workspace.

Each subcommand parses its options and calls one stage function; errors from bad input are printed as
one clear line (naming the file, field or request) with exit code 2.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from cli.progress import Reporter

app = typer.Typer(add_completion=False, no_args_is_help=True, help=__doc__, pretty_exceptions_show_locals=False)
data_app = typer.Typer(no_args_is_help=True, help="Load or synthesize the shop's canonical tables.")
app.add_typer(data_app, name="data")


class Ctx:
    """Settings and workspace of this invocation (built from --config / --workspace / environment)."""

    def __init__(self, config: Path | None, workspace: Path | None) -> None:
        from configs.settings import load_settings
        from features.storage import Workspace

        self.settings = load_settings(config, workspace)
        self.ws = Workspace(self.settings.workspace)
        self.ws.root.mkdir(parents=True, exist_ok=True)
        os.environ["ECRM_WORKSPACE"] = str(self.ws.root)  # child processes (the server) use the same
        if config:
            os.environ["ECRM_CONFIG"] = str(Path(config).resolve())
        self.report = Reporter()


def _ctx(ctx: typer.Context) -> Ctx:
    if not isinstance(ctx.obj, Ctx):
        ctx.obj = Ctx(*ctx.obj)
    return ctx.obj


@app.callback()
def _main(
    ctx: typer.Context,
    workspace: Annotated[Path | None, typer.Option("--workspace", "-w", help="workspace folder (default from config, or ECRM_WORKSPACE)")] = None,
    config: Annotated[Path | None, typer.Option("--config", "-c", help="YAML config (default configs/default.yaml, or ECRM_CONFIG)")] = None,
) -> None:
    """ecrm: churn scores, at-risk lists and more from a shop's orders and sessions."""
    ctx.obj = (config, workspace)


@data_app.command("load")
def data_load(
    ctx: typer.Context,
    path: Annotated[Path, typer.Argument(help="the file to load")],
    fmt: Annotated[str, typer.Option("--format", help="online-retail (the UCI export) or orders (canonical order lines)")] = "orders",
    mapping: Annotated[list[str] | None, typer.Option("--map", help="canonical=source column rename, repeatable")] = None,
    timezone: Annotated[str | None, typer.Option(help="time zone of naive timestamps in the file")] = None,
) -> None:
    """Load a file of order lines into the workspace (validated; bad rows go to data/rejects)."""
    from features.loaders import load_online_retail, load_orders, parse_mapping, save_load

    c = _ctx(ctx)
    with c.report.stage(f"data load ({fmt})") as say:
        if fmt == "online-retail":
            if mapping:
                raise typer.BadParameter("--map applies to --format orders only", param_hint="--map")
            result = load_online_retail(path, timezone=timezone or "Europe/London", progress=say)
        elif fmt == "orders":
            result = load_orders(path, mapping=parse_mapping(mapping or []), timezone=timezone or "UTC", progress=say)
        else:
            raise typer.BadParameter(f"unknown format '{fmt}': use online-retail or orders", param_hint="--format")
        save_load(c.ws, result)
        say(f"stored in {c.ws.data_dir}; rejected rows with reasons in {c.ws.rejects_dir / 'rejects.parquet'}")
    width = max(len(k) for k in result.counts)
    for k, v in result.counts.items():
        typer.echo(f"{k:<{width}}  {v:>10,}")


@data_app.command("synthesize")
def data_synthesize(
    ctx: typer.Context,
    customers: Annotated[int | None, typer.Option(min=10, help="number of customers (default from config)")] = None,
    products: Annotated[int | None, typer.Option(min=10, help="number of products (default from config)")] = None,
    seed: Annotated[int | None, typer.Option(help="random seed (default from config)")] = None,
    replace: Annotated[bool, typer.Option("--replace", help="overwrite data loaded from a file")] = False,
) -> None:
    """Generate the synthetic shop (the embedded default data set) into the workspace."""
    from features.synthetic_stage import synthesize_into

    c = _ctx(ctx)
    with c.report.stage("data synthesize") as say:
        synthesize_into(c.settings, c.ws, customers=customers, products=products, seed=seed, progress=say,
                        replace=replace)


@app.command()
def train(
    ctx: typer.Context,
    as_of: Annotated[str | None, typer.Option("--as-of", help="use only events before this date (default: day after the last event)")] = None,
    horizon: Annotated[int | None, typer.Option("--horizon", min=1, help="churn horizon in days (default from config)")] = None,
    force: Annotated[bool, typer.Option(help="retrain even if a version was trained on the same data and config")] = False,
) -> None:
    """Build features and labels, train the churn model, log it to MLflow and register it."""
    from training.churn_pipeline import train_churn

    c = _ctx(ctx)
    with c.report.stage("train churn") as say:
        res = train_churn(c.settings, c.ws, as_of=as_of, horizon_days=horizon, progress=say, force=force)
        if not res.skipped:
            m = res.metrics
            say(f"validation: ROC-AUC {m['roc_auc']:.3f}  PR-AUC {m['pr_auc']:.3f}  Brier {m['brier']:.3f}  "
                f"top-decile lift {m['top_decile_lift']:.2f}")


@app.command()
def score(
    ctx: typer.Context,
    out: Annotated[Path, typer.Option("--out", help="output folder for churn.parquet and at_risk.csv")],
    as_of: Annotated[str | None, typer.Option("--as-of", help="score as of this date (default: day after the last event)")] = None,
) -> None:
    """Score every active customer with the champion model and write the at-risk list."""
    from serving.batch import score_batch

    c = _ctx(ctx)
    with c.report.stage("score") as say:
        res = score_batch(c.settings, c.ws, out, as_of=as_of, progress=say)
        say(f"{res.n_scored} customers scored; risk bands {res.band_counts}")
        say(f"wrote {res.out_dir / 'churn.parquet'} and {res.out_dir / 'at_risk.csv'}")


@app.command()
def backtest(
    ctx: typer.Context,
    cutoff: Annotated[str, typer.Option("--cutoff", help="train on data before this date, evaluate on [cutoff, cutoff + H)")],
    horizon: Annotated[int | None, typer.Option("--horizon", min=1, help="churn horizon in days")] = None,
) -> None:
    """Backtest the churn model against recency, BG/NBD and a one-cutoff LightGBM, and print the metrics."""
    from evaluation.backtest import backtest_churn

    c = _ctx(ctx)
    with c.report.stage("backtest churn") as say:
        res = backtest_churn(c.settings, c.ws, cutoff, horizon, progress=say)
    typer.echo(f"churn backtest, cutoff {res.cutoff.date()}, horizon {res.horizon_days} days (holdout inside the data)")
    table = res.table()
    formatters = {c: (lambda v: f"{v:,.0f}") if c == "n" else (lambda v: f"{v:.4f}") for c in table.columns}
    typer.echo(table.to_string(formatters=formatters, na_rep="—"))
    typer.echo("(recency is a ranking heuristic: it has no probabilities, so no Brier score)")


@app.command()
def serve(
    ctx: typer.Context,
    port: Annotated[int | None, typer.Option("--port", help="HTTP port (default from config)")] = None,
    host: Annotated[str | None, typer.Option("--host", help="bind address (default from config, loopback)")] = None,
) -> None:
    """Run the HTTP service in the foreground (Ctrl-C stops it)."""
    from serving.process import run_foreground

    c = _ctx(ctx)
    raise typer.Exit(run_foreground(c.settings, c.ws, port=port, host=host))


@app.command()
def demo(
    ctx: typer.Context,
    port: Annotated[int | None, typer.Option("--port", help="HTTP port (default from config)")] = None,
) -> None:
    """Synthesize the shop, train, score, start the server in the background and show how to call it."""
    from cli.demo import run_demo

    c = _ctx(ctx)
    run_demo(c, port=port)


def main() -> None:
    """Console entry point: run the app, turning known input errors into one-line messages."""
    from configs.runtime import default_library_logging

    default_library_logging()
    from configs.settings import ConfigError
    from features.schema import SchemaError

    known: tuple[type[BaseException], ...] = (ConfigError, SchemaError, FileNotFoundError, FileExistsError,
                                              LookupError, ValueError)
    try:
        from features.loaders import DataFileError

        known = (DataFileError, *known)
    except ImportError:  # pragma: no cover
        pass
    try:
        app(standalone_mode=False)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except typer.Abort:
        sys.exit(130)
    except Exception as exc:  # noqa: BLE001 - reported below
        import click

        if isinstance(exc, click.ClickException):
            exc.show()
            sys.exit(exc.exit_code)
        if isinstance(exc, known):
            typer.secho(f"error: {exc}", err=True, fg="red")
            sys.exit(2)
        raise


if __name__ == "__main__":
    main()
