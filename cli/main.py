"""``ecrm``: load data, train, score, backtest and serve, on one workspace.

Each subcommand parses its options and calls one stage function; errors from bad input are printed as
one clear line (naming the file, field or request) with exit code 2.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from cli.progress import Reporter

app = typer.Typer(add_completion=False, no_args_is_help=True, help=__doc__, pretty_exceptions_show_locals=False)
data_app = typer.Typer(no_args_is_help=True, help="Load or synthesize the shop's canonical tables.")
app.add_typer(data_app, name="data")
privacy_app = typer.Typer(no_args_is_help=True, help="Pseudonymous customer ids (see `privacy:` in the config).")
app.add_typer(privacy_app, name="privacy")


class Ctx:
    """Settings and workspace of this invocation (built from --config / --workspace / environment)."""

    def __init__(self, config: Path | None, workspace: Path | None) -> None:
        from configs.settings import load_settings
        from features.storage import Workspace

        self.settings = load_settings(config, workspace)
        self.ws = Workspace(self.settings.workspace)
        self.ws.root.mkdir(parents=True, exist_ok=True)
        # a server started from here gets this config and workspace in its own environment (serving.process);
        # this process's environment stays untouched
        self.config = Path(config).resolve() if config else None
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
    from features.privacy.loading import load_privacy

    c = _ctx(ctx)
    with c.report.stage(f"data load ({fmt})") as say:
        privacy = load_privacy(c.settings.privacy, c.ws)
        if fmt == "online-retail":
            if mapping:
                raise typer.BadParameter("--map applies to --format orders only", param_hint="--map")
            result = load_online_retail(path, timezone=timezone or "Europe/London", progress=say, privacy=privacy)
        elif fmt == "orders":
            result = load_orders(path, mapping=parse_mapping(mapping or []), timezone=timezone or "UTC", progress=say,
                                 privacy=privacy)
        else:
            raise typer.BadParameter(f"unknown format '{fmt}': use online-retail or orders", param_hint="--format")
        save_load(c.ws, result)
        say(f"stored in {c.ws.data_dir}; rejected rows with reasons in {c.ws.rejects_dir / 'rejects.parquet'}")
    width = max(len(k) for k in result.counts)
    for k, v in result.counts.items():
        typer.echo(f"{k:<{width}}  {v:>10,}")
    typer.echo(f"columns not loaded: {', '.join(result.dropped_columns) or '(none)'}")
    if result.pseudonymized:
        typer.echo("customer ids: keyed pseudonyms (ask the HTTP API with `ecrm privacy pseudonym ID`)")


@data_app.command("purge-expired")
def data_purge_expired(
    ctx: typer.Context,
    as_of: Annotated[str | None, typer.Option("--as-of", help="purge relative to this date (default: now, UTC)")] = None,
) -> None:
    """Remove orders and sessions older than privacy.retention_days from the canonical tables."""
    from features.privacy.retention import purge_expired

    c = _ctx(ctx)
    days = c.settings.privacy.retention_days
    res = purge_expired(c.ws, days, as_of=as_of)
    if res.cutoff is None:
        typer.echo("privacy.retention_days is not set: raw events are kept forever; nothing removed")
        return
    typer.echo(f"retention {days} days: removing events before {res.cutoff.isoformat()}")
    for name, n in res.removed.items():
        typer.echo(f"{name:<10} {n:>10,} removed  {res.kept.get(name, 0):>10,} kept")


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


MODELS = ("churn", "next-purchase", "segments", "recommender")


@app.command()
def train(
    ctx: typer.Context,
    as_of: Annotated[str | None, typer.Option("--as-of", help="use only events before this date (default: day after the last event)")] = None,
    horizon: Annotated[int | None, typer.Option("--horizon", min=1, help="churn horizon in days (default from config)")] = None,
    model: Annotated[list[str] | None, typer.Option("--model", help=f"train only this model: {', '.join(MODELS)} (repeatable)")] = None,
    force: Annotated[bool, typer.Option(help="retrain even if a version was trained on the same data and config")] = False,
) -> None:
    """Build features and labels, train every model (or --model), log to MLflow and register them."""
    from training.churn_pipeline import train_churn
    from training.customer_inputs import CustomerInputs
    from training.next_purchase_pipeline import train_next_purchase
    from training.recommend_pipeline import train_recommender
    from training.segment_pipeline import train_segments

    c = _ctx(ctx)
    chosen = list(model or MODELS)
    unknown = [m for m in chosen if m not in MODELS]
    if unknown:
        raise typer.BadParameter(f"unknown model(s) {unknown}: choose from {', '.join(MODELS)}", param_hint="--model")
    base = inputs = None  # the churn training set and what the customer models all read: read once
    if "churn" in chosen:
        with c.report.stage("train churn") as say:
            inputs = CustomerInputs(c.ws, as_of)
            res = train_churn(c.settings, c.ws, as_of=as_of, horizon_days=horizon, progress=say, force=force,
                              inputs=inputs)
            base = res.data
            if not res.skipped:
                m = res.metrics
                say(f"validation: ROC-AUC {m['roc_auc']:.3f}  PR-AUC {m['pr_auc']:.3f}  Brier {m['brier']:.3f}  "
                    f"top-decile lift {m['top_decile_lift']:.2f}")
    if "next-purchase" in chosen:
        with c.report.stage("train next-purchase") as say:
            inputs = inputs or CustomerInputs(c.ws, as_of)
            res = train_next_purchase(c.settings, c.ws, as_of=as_of, horizon_days=horizon, progress=say, force=force,
                                      base=base, inputs=inputs)
            if not res.skipped:
                m = res.metrics["model"]
                say(f"validation: orders deviance {m['orders_poisson_deviance']:.3f}, predicted/actual orders "
                    f"{m['orders_total_ratio']:.2f}, spend {m['spend_total_ratio']:.2f}, "
                    f"30-day purchase ROC-AUC {m['short_roc_auc']:.3f}")
    if "segments" in chosen:
        with c.report.stage("train segments") as say:
            inputs = inputs or CustomerInputs(c.ws, as_of)
            train_segments(c.settings, c.ws, as_of=as_of, progress=say, force=force, inputs=inputs)
    base = inputs = None  # (large: not held while the recommender trains)
    if "recommender" in chosen:
        with c.report.stage("train recommender") as say:
            train_recommender(c.settings, c.ws, as_of=as_of, progress=say, force=force)


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
        from features.privacy.forget import record_output_dir

        record_output_dir(c.ws, res.out_dir)  # `ecrm forget` cleans this folder too
        say(f"{res.n_scored} customers scored; risk bands {res.band_counts}")
        say(f"wrote {', '.join(res.outputs)} (and score_manifest.json) in {res.out_dir}")
    for w in res.warnings:
        mark = {"warning": "WARNING", "ok": "ok", "unavailable": "n/a"}[w["status"]]
        typer.echo(f"{mark:<8} {w['indicator']:<26} {w['message']}")


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
def evaluate(
    ctx: typer.Context,
    horizon: Annotated[int | None, typer.Option("--horizon", min=1, help="horizon in days (default from config)")] = None,
    cutoff: Annotated[list[str] | None, typer.Option("--cutoff", help="backtest cutoff date, repeatable (default from config)")] = None,
    recommender: Annotated[bool, typer.Option(help="also backtest the recommender and its baselines (slower)")] = True,
) -> None:
    """Rolling-origin backtest of every model against its baselines; MLflow run and HTML report."""
    from evaluation.evaluate import evaluate as run_evaluation

    c = _ctx(ctx)
    with c.report.stage("evaluate") as say:
        out = run_evaluation(c.settings, c.ws, horizon_days=horizon, cutoffs=cutoff, progress=say,
                             recommendations=recommender)
    res = out.result
    fmt = {c_: (lambda v: f"{v:,.0f}") if c_ == "n" else (lambda v: f"{v:.4f}") for c_ in ("roc_auc", "pr_auc", "brier",
           "top_decile_lift", "orders_poisson_deviance", "orders_total_ratio", "spend_rmse", "spend_total_ratio", "n")}
    churn = res.churn.assign(cutoff=res.churn["cutoff"].map(lambda t: str(pd_date(t))))
    typer.echo("churn")
    typer.echo(churn[["cutoff", "scorer", "roc_auc", "pr_auc", "brier", "top_decile_lift", "n"]].to_string(
        index=False, formatters=fmt, na_rep="—"))
    pur = res.purchase.assign(cutoff=res.purchase["cutoff"].map(lambda t: str(pd_date(t))))
    typer.echo("\nnext purchase")
    typer.echo(pur[["cutoff", "forecaster", "orders_poisson_deviance", "orders_total_ratio", "spend_rmse",
                    "spend_total_ratio", "n"]].to_string(index=False, formatters=fmt, na_rep="—"))
    pooled = res.intervals[res.intervals["scope"] == "all cutoffs"]
    typer.echo("\nmodel minus best baseline, all cutoffs (paired bootstrap 95% interval)")
    for _, r in pooled.iterrows():
        typer.echo(f"  {r['model']:<14} {r['metric']:<24} vs {r['best_baseline']:<9} {r['diff']:+.4f} "
                   f"[{r['ci_low']:+.4f}, {r['ci_high']:+.4f}]  {r['verdict']}")
    if out.recommendations is not None:
        from evaluation.recommendations import verdicts

        recs = out.recommendations
        typer.echo(f"\nrecommendations @{recs.k} (NDCG, recall, hit rate, MAP, catalog coverage)")
        m = recs.metrics.assign(cutoff=recs.metrics["cutoff"].map(lambda t: str(pd_date(t))))
        typer.echo(m.to_string(index=False, float_format=lambda v: f"{v:.4f}"))
        typer.echo("\nranker minus best baseline, NDCG (paired bootstrap 95% interval)")
        for _, r in verdicts(recs).iterrows():
            typer.echo(f"  {pd_date(r['cutoff'])} {r['list']:<10} vs {r['best_baseline']:<12} {r['diff']:+.4f} "
                       f"[{r['ci_low']:+.4f}, {r['ci_high']:+.4f}]  {r['verdict']}")
    typer.echo(f"\nreport: {out.report_path}\nMLflow run: {out.run_id}")


def pd_date(t) -> object:
    """The date part of a timestamp-like value."""
    import pandas as pd

    return pd.Timestamp(t).date()


@app.command()
def compare(
    ctx: typer.Context,
    model: Annotated[str | None, typer.Argument(help="ecrm-churn or ecrm-next-purchase (default: both)")] = None,
) -> None:
    """Registered versions (aliases, training date, validation metrics) and recent evaluations."""
    from evaluation.promotion import GATED, compare_table, recent_evaluations

    c = _ctx(ctx)
    for name in [model] if model else list(GATED):
        table = compare_table(c.settings, c.ws, name)
        typer.echo(f"{name}")
        typer.echo(table.to_string(index=False) if len(table) else "  (no registered versions)")
        typer.echo("")
    ev = recent_evaluations(c.settings, c.ws)
    typer.echo("recent evaluations (model minus best baseline, all cutoffs)")
    typer.echo(ev.to_string(index=False) if len(ev) else "  (none: run `ecrm evaluate`)")


@app.command()
def promote(
    ctx: typer.Context,
    model: Annotated[str, typer.Argument(help="ecrm-churn or ecrm-next-purchase")],
    cutoff: Annotated[list[str] | None, typer.Option("--cutoff", help="backtest cutoff date, repeatable (default from config)")] = None,
) -> None:
    """Move `champion` to the challenger only if it beats the champion on the same backtest (interval excludes 0)."""
    from evaluation.promotion import promote as run_gate

    c = _ctx(ctx)
    with c.report.stage(f"promotion gate {model}") as say:
        decision = run_gate(c.settings, c.ws, model, progress=say, cutoffs=cutoff)
    typer.echo(decision.reason)
    raise typer.Exit(0 if decision.promoted else 1)


@app.command()
def serve(
    ctx: typer.Context,
    port: Annotated[int | None, typer.Option("--port", help="HTTP port (default from config)")] = None,
    host: Annotated[str | None, typer.Option("--host", help="bind address (default from config, loopback)")] = None,
) -> None:
    """Run the HTTP service in the foreground (Ctrl-C stops it)."""
    from serving.process import run_foreground

    c = _ctx(ctx)
    raise typer.Exit(run_foreground(c.settings, c.ws, port=port, host=host, config=c.config))


@app.command()
def demo(
    ctx: typer.Context,
    port: Annotated[int | None, typer.Option("--port", help="HTTP port (default from config)")] = None,
) -> None:
    """Synthesize the shop, train, score, start the server in the background and show how to call it."""
    from cli.demo import run_demo

    c = _ctx(ctx)
    run_demo(c, port=port)


@app.command()
def forget(
    ctx: typer.Context,
    customer_ids: Annotated[list[str], typer.Argument(help="customer ids as in the shop's files", show_default=False)],
    out: Annotated[list[Path] | None, typer.Option("--out", help="another batch-output folder to clean (repeatable)")] = None,
) -> None:
    """Erase customers from the workspace (tables, rejects, features, online store, outputs, models) and log it."""
    from features.privacy.forget import forget_customers

    c = _ctx(ctx)
    with c.report.stage("forget") as say:
        res = forget_customers(c.settings, c.ws, customer_ids, extra_dirs=out or [])
        say(f"erasure of {res.customers} customer(s) logged at {res.erased_at.isoformat()} "
            f"({res.newly_logged} new); later loads skip them")
    width = max([len(k) for k in res.removed] or [0])
    for place, n in res.removed.items():
        typer.echo(f"{place:<{width}}  {n:>8,} removed")
    if not res.removed:
        typer.echo("nothing about these customers was found in the workspace")
    for place in res.unreachable:
        typer.echo(f"not reachable from here: {place}")
    if (c.ws.state_dir / "server.pid").is_file():
        typer.echo("a server of this workspace may be running: restart it so it drops its in-memory copy "
                   "of the recommender (`make stop`, then `ecrm serve` or `make demo`)")


@privacy_app.command("pseudonym")
def privacy_pseudonym(
    customer_ids: Annotated[list[str], typer.Argument(help="customer ids as in the shop's files", show_default=False)],
) -> None:
    """Print each id's pseudonym (the id the workspace and the HTTP API use when ids are pseudonymized)."""
    from features.privacy.pseudonyms import pseudonym_key, pseudonyms

    for cid, pid in zip(customer_ids, pseudonyms(customer_ids, pseudonym_key())):
        typer.echo(f"{cid}\t{pid}")


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
        from typer.exceptions import TyperException

        # typer 0.29 raises usage errors from its own copy of click (a TyperException), not click's
        if isinstance(exc, (click.ClickException, TyperException)) and hasattr(exc, "show"):
            exc.show()
            sys.exit(getattr(exc, "exit_code", 2))
        if isinstance(exc, known):
            typer.secho(f"error: {exc}", err=True, fg="red")
            sys.exit(2)
        raise


if __name__ == "__main__":
    main()
