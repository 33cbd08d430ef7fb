"""``ecrm evaluate``: the rolling-origin backtest of every model, logged to MLflow and written as a report.

One MLflow run per evaluation (metrics per cutoff as steps, the intervals, the predictions and the
HTML report as artifacts) and one self-contained HTML file in ``WS/outputs/reports``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import matplotlib.pyplot as plt
import mlflow
import numpy as np
import pandas as pd

from configs.runtime import quiet_dependencies
from configs.settings import Settings
from evaluation import figures
from evaluation.html_report import HtmlReport
from evaluation.kpis import crm_kpis
from evaluation.recommendations import RANKER, RecommenderBacktest, backtest_recommenders, verdicts
from evaluation.rolling import RollingResult, backtest_cutoffs, rolling_backtest
from features.snapshots import data_fingerprint
from features.storage import Workspace, write_parquet_atomic
from training import plots
from training.recommend_pipeline import recommender_inputs
from training.registry import configure
from training.segments import SegmentModel

Progress = Callable[[str], None]
LIFECYCLE_ORDER = ["new", "repeat", "loyal", "lapsing", "churned"]


@dataclass
class EvaluationOutput:
    """Where an evaluation went."""

    result: RollingResult
    report_path: Path
    run_id: str
    recommendations: RecommenderBacktest | None = None


def segments_by_cutoff(result: RollingResult) -> dict[pd.Timestamp, pd.DataFrame]:
    """Segments of each cutoff's customers, from a segment model fitted at that cutoff on predicted value."""
    out = {}
    for c in result.cutoffs:
        pred = result.predictions[result.predictions["cutoff"] == c].reset_index(drop=True)
        X = result.features[c]
        value = pred["clv_model"].to_numpy()
        seg = SegmentModel().fit(X, value).transform(X, value)
        seg.insert(0, "customer_id", pred["customer_id"].to_numpy())
        out[c] = seg
    return out


def build_report(settings: Settings, result: RollingResult, segments: dict[pd.Timestamp, pd.DataFrame],
                 kpis: pd.DataFrame, data_window: tuple[pd.Timestamp, pd.Timestamp],
                 recs: RecommenderBacktest | None = None) -> HtmlReport:
    """The evaluation report: churn, next purchase, segments, CRM KPIs, each against honest baselines."""
    H = result.horizon_days
    last = result.cutoffs[-1]
    rep = HtmlReport("ecrm model evaluation",
                     f"rolling-origin backtest at {len(result.cutoffs)} cutoffs "
                     f"({', '.join(str(c.date()) for c in result.cutoffs)}), horizon {H} days")
    rep.add_heading("Set-up")
    rep.add_kv({
        "data": f"orders from {data_window[0].date()} to {data_window[1].date()}",
        "customers scored": "at each cutoff, every customer with an order in the 365 days before it",
        "holdout": f"[cutoff, cutoff + {H} days): what the customer did next",
        "training": f"as `ecrm train` would train as of each cutoff: up to {settings.churn.training_cutoffs} "
                    f"monthly cutoffs before it (as many as the history allows), labels ending by it",
        "intervals": f"paired bootstrap over customers, {settings.evaluation.bootstrap_samples} resamples, 95%",
    })
    rep.add_heading("Verdicts: model minus its best baseline")
    iv = result.intervals.copy()
    iv["scope"] = iv["scope"].map(lambda s: s if isinstance(s, str) else str(pd.Timestamp(s).date()))
    rep.add_table(iv[["model", "metric", "scope", "best_baseline", "model_value", "baseline_value", "diff",
                      "ci_low", "ci_high", "verdict"]],
                  caption="For ROC-AUC higher is better; for Brier, deviance and RMSE lower is better.")

    rep.add_heading("Churn")
    churn = result.churn.copy()
    churn["cutoff"] = churn["cutoff"].map(lambda c: str(pd.Timestamp(c).date()))
    rep.add_table(churn[["cutoff", "scorer", "roc_auc", "pr_auc", "brier", "top_decile_lift", "mean_predicted",
                         "churn_rate", "n"]],
                  caption="recency is a ranking heuristic (no probabilities, no Brier score)")
    rep.add_figure(figures.metric_by_cutoff(churn, "roc_auc"), "ROC-AUC per cutoff")
    d = result.predictions[result.predictions["cutoff"] == last]
    rep.add_figure(plots.gains_figure(d["churned"].to_numpy(), {s: d[f"churn_{s}"].to_numpy() for s in ("model", "bgnbd", "recency")}),
                   f"Cumulative gains at {last.date()}: share of churners found in the top x% of scores")
    rep.add_figure(plots.calibration_figure(d["churned"].to_numpy(), {s: d[f"churn_{s}"].to_numpy() for s in ("model", "bgnbd")}),
                   f"Calibration at {last.date()}")

    rep.add_heading("Next purchase and value")
    pur = result.purchase.copy()
    pur["cutoff"] = pur["cutoff"].map(lambda c: str(pd.Timestamp(c).date()))
    rep.add_table(pur, caption="orders and spend in the horizon; total_ratio = predicted ÷ actual total; "
                               "short = an order within the short window")
    rep.add_figure(figures.metric_by_cutoff(pur.rename(columns={"forecaster": "scorer"}), "orders_poisson_deviance"),
                   "Orders: mean Poisson deviance per cutoff (lower is better)")
    rep.add_figure(figures.predicted_vs_actual_by_group(
        d["orders"].to_numpy(float), {f: d[f"orders_{f}"].to_numpy() for f in ("model", "bgnbd_gg", "run_rate")},
        d["frequency_365d"].to_numpy(float)), f"Predicted vs actual orders by past-year frequency at {last.date()}")

    rep.add_heading("Segments")
    seg = segments[last]
    rep.add_figure(figures.segment_sizes(seg["rfm_segment"], f"RFM segments at {last.date()}"), "")
    rep.add_figure(figures.segment_sizes(seg["lifecycle_stage"], f"Lifecycle stages at {last.date()}"), "")
    rep.add_figure(figures.segment_sizes(seg["value_tier"], f"Value tiers (customer value pyramid) at {last.date()}"), "")
    if len(result.cutoffs) >= 2:
        prev = result.cutoffs[-2]
        both = segments[prev].merge(seg, on="customer_id", suffixes=("_before", "_after"))
        rep.add_figure(figures.transition_matrix(both["lifecycle_stage_before"], both["lifecycle_stage_after"],
                                                 f"Lifecycle movement {prev.date()} → {last.date()}",
                                                 order=LIFECYCLE_ORDER),
                       f"{len(both)} customers scored at both cutoffs; rows sum to 1")
        rep.add_figure(figures.transition_matrix(both["rfm_segment_before"], both["rfm_segment_after"],
                                                 f"RFM segment movement {prev.date()} → {last.date()}"), "")

    if recs is not None:
        add_recommendation_section(rep, settings, recs)

    rep.add_heading("CRM KPIs per quarter")
    rep.add_table(kpis, caption="from all orders of known customers (guests and returns excluded)")
    rep.add_figure(figures.kpi_trends(kpis), "")
    return rep


def add_recommendation_section(rep: HtmlReport, settings: Settings, recs: RecommenderBacktest) -> None:
    """The recommender against its baselines: verdicts, every metric per cutoff and list, NDCG per cutoff."""
    k, H = recs.k, settings.recommender.horizon_days
    rep.add_heading("Recommendations")
    rep.add_paragraph(f"Every customer with a purchase in the {settings.recommender.lookback_days} days before a cutoff "
                      f"gets {k} items; relevant = bought in the next {H} days (list all) or bought then and never "
                      f"before (list discovery). Customers without a relevant item are not counted.")
    v = verdicts(recs)
    v["cutoff"] = v["cutoff"].map(lambda c: str(pd.Timestamp(c).date()))
    rep.add_table(v, caption=f"{RANKER} minus the best baseline, NDCG@{k}, paired bootstrap 95% interval")
    m = recs.metrics.copy()
    m["cutoff"] = m["cutoff"].map(lambda c: str(pd.Timestamp(c).date()))
    m = m.rename(columns={x: f"{x}@{k}" for x in ("ndcg", "recall", "hit_rate", "map", "coverage")})
    rep.add_table(m, caption="coverage = share of the catalog (items sold before the cutoff) in anyone's top k")
    for lst in ("all", "discovery"):
        t = recs.metrics[recs.metrics["list"] == lst].rename(columns={"model": "scorer"})
        rep.add_figure(figures.metric_by_cutoff(t, "ndcg"), f"NDCG@{k} per cutoff, list {lst}")
    fit = recs.fit_seconds.copy()
    fit["cutoff"] = fit["cutoff"].map(lambda c: str(pd.Timestamp(c).date()))
    rep.add_table(fit.pivot(index="cutoff", columns="model", values="seconds").reset_index(),
                  caption="fit seconds per cutoff")


def evaluate(settings: Settings, ws: Workspace, horizon_days: int | None = None, cutoffs: list | None = None,
             progress: Progress | None = None, recommendations: bool = True) -> EvaluationOutput:
    """Run the rolling backtest, log it to MLflow and write the HTML report."""
    say = progress or (lambda _m: None)
    H = int(horizon_days or settings.churn.horizon_days)
    orders = ws.read_table("orders")
    first, last = orders["ordered_at"].min(), orders["ordered_at"].max()
    cuts = [pd.Timestamp(c) for c in cutoffs] if cutoffs else backtest_cutoffs(settings, last, H)
    say(f"backtest cutoffs {', '.join(str(c.date()) for c in cuts)}, horizon {H} days")
    result = rolling_backtest(settings, ws, cuts, H, progress=say)
    say("segments and CRM KPIs")
    segments = segments_by_cutoff(result)
    kpis = crm_kpis(orders, start=first.normalize(), end=(last + pd.Timedelta(days=1)).normalize(), freq="QS")
    recs = None
    if recommendations and settings.recommender.enabled and (inputs := recommender_inputs(ws)) is not None:
        rec_cuts = [c for c in cuts if c + pd.Timedelta(days=settings.recommender.horizon_days) <= last]
        if rec_cuts:
            recs = backtest_recommenders(*inputs, rec_cuts, settings.recommender,
                                         n_boot=settings.evaluation.bootstrap_samples, progress=say)
        else:
            say("recommender: no cutoff has a full horizon of data after it; skipped")
    report = build_report(settings, result, segments, kpis, (first, last), recs)
    stamp = pd.Timestamp.now(tz="UTC").strftime("%Y%m%dT%H%M%SZ")
    path = ws.outputs_dir / "reports" / f"evaluation-{stamp}.html"
    report.write(path)
    plt.close("all")

    configure(settings, ws)
    with mlflow.start_run(run_name=f"evaluate-{cuts[-1].date()}") as run:
        mlflow.set_tags({"ecrm.stage": "evaluate", "data_fingerprint": data_fingerprint(ws)})
        mlflow.log_params({"horizon_days": H, "cutoffs": ",".join(str(c.date()) for c in cuts),
                           "bootstrap_samples": settings.evaluation.bootstrap_samples})
        for step, c in enumerate(result.cutoffs):
            for _, row in result.churn[result.churn["cutoff"] == c].iterrows():
                mlflow.log_metrics({f"churn_{row['scorer']}_{k}": float(row[k]) for k in ("roc_auc", "pr_auc", "brier", "top_decile_lift")
                                    if np.isfinite(row[k])}, step=step)
            for _, row in result.purchase[result.purchase["cutoff"] == c].iterrows():
                mlflow.log_metrics({f"purchase_{row['forecaster']}_{k}": float(row[k]) for k in
                                    ("orders_poisson_deviance", "orders_rmse", "orders_total_ratio", "spend_rmse",
                                     "spend_total_ratio", "short_roc_auc", "short_brier") if np.isfinite(row[k])}, step=step)
        if recs is not None:
            for step, c in enumerate(result.cutoffs):
                for _, row in recs.metrics[recs.metrics["cutoff"] == c].iterrows():
                    name = f"rec_{row['list']}_{row['model'].replace(' ', '_')}"
                    mlflow.log_metrics({f"{name}_{m}_at_{recs.k}": float(row[m]) for m in
                                        ("ndcg", "recall", "hit_rate", "map", "coverage") if np.isfinite(row[m])}, step=step)
            with quiet_dependencies():
                mlflow.log_text(recs.intervals.to_csv(index=False), "recommender_intervals.csv")
                mlflow.log_text(recs.metrics.to_csv(index=False), "recommender_metrics.csv")
        pooled = result.intervals[result.intervals["scope"] == "all cutoffs"]
        for _, row in pooled.iterrows():
            mlflow.log_metrics({f"{row['model']}_{row['metric']}_diff": row["diff"],
                                f"{row['model']}_{row['metric']}_ci_low": row["ci_low"],
                                f"{row['model']}_{row['metric']}_ci_high": row["ci_high"]})
        with quiet_dependencies():
            mlflow.log_artifact(str(path), "report")
            mlflow.log_text(result.intervals.to_csv(index=False), "intervals.csv")
        pred_path = ws.outputs_dir / "reports" / f"evaluation-{stamp}-predictions.parquet"
        write_parquet_atomic(result.predictions, pred_path)
        run_id = run.info.run_id
    return EvaluationOutput(result, path, run_id, recs)
