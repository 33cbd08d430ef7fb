"""Rolling-origin backtest of every customer model against its baselines, on the same customers.

At each backtest cutoff c (oldest first): the models are trained exactly as ``ecrm train`` would train
them as of c (training labels end by c, features from events before c), then they and their baselines
score the customers eligible at c (an order in the 365 days before c), and the scores are compared
with what happened in the holdout [c, c + H). The data must extend to the last cutoff + H.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from configs.settings import Settings
from evaluation.bootstrap import paired_bootstrap
from features.pipeline import CUSTOMER_VIEWS, customer_views, prepare_features
from features.snapshots import as_utc
from features.storage import Workspace
from features.store import feature_refs
from training.churn_pipeline import build_dataset, fit_churn, stacked_cutoffs
from training.customer_base import bgnbd_inputs
from training.labels import customer_orders
from training.metrics import churn_metrics, count_metrics, fast_roc_auc
from training.next_purchase_pipeline import build_purchase_dataset, fit_next_purchase, run_rate_forecast

Progress = Callable[[str], None]

CHURN_SCORERS = ("model", "recency", "bgnbd")
PURCHASE_FORECASTERS = ("model", "bgnbd_gg", "run_rate")


def backtest_cutoffs(settings: Settings, last_order: pd.Timestamp, horizon_days: int, n: int | None = None,
                     step_days: int | None = None, last_cutoff=None) -> list[pd.Timestamp]:
    """The evaluation cutoffs, oldest first: the last one is H days before the end of the data (midnight)."""
    n = n or settings.evaluation.cutoffs
    step = step_days or settings.evaluation.cutoff_step_days
    end = as_utc(last_cutoff) if last_cutoff is not None else (
        (last_order + pd.Timedelta(days=1)).normalize() - pd.Timedelta(days=horizon_days))
    return sorted(end - pd.Timedelta(days=step * k) for k in range(n))


@dataclass
class CutoffPredictions:
    """Everything scored at one cutoff: one row per eligible customer."""

    cutoff: pd.Timestamp
    frame: pd.DataFrame  # customer_id, actuals, scores of every model and baseline
    features: pd.DataFrame  # the customers' features at the cutoff, same rows (for segments in reports)


def predict_at_cutoff(settings: Settings, ws: Workspace, cutoff: pd.Timestamp, horizon_days: int,
                      progress: Progress | None = None, models: tuple[str, ...] = ("churn", "next_purchase")
                      ) -> CutoffPredictions:
    """Train the ``models`` (churn, next_purchase) as of ``cutoff`` and score its eligible customers."""
    say = progress or (lambda _m: None)
    H = horizon_days
    orders = ws.read_table("orders")
    order_rows = customer_orders(orders)
    cuts = stacked_cutoffs(settings, order_rows, cutoff, H)
    store, views = prepare_features(settings, ws, [*cuts, cutoff], progress=say, views=CUSTOMER_VIEWS)
    refs = feature_refs(customer_views(views))
    lookback = settings.churn.eligibility_days
    short = settings.next_purchase.short_days

    test = build_dataset(store, order_rows, [cutoff], refs, H, lookback)
    recency = test.X["customer_orders__recency_days"].to_numpy(float)
    frame = pd.DataFrame({
        "cutoff": cutoff,
        "customer_id": test.customer_id,
        "churned": test.y,
        "frequency_365d": test.X["customer_orders__frequency_365d"].to_numpy(float),
    })
    train = build_dataset(store, order_rows, cuts, refs, H, lookback)
    if "churn" in models:
        say(f"cutoff {cutoff.date()}: churn model on {len(cuts)} training cutoffs")
        churn, *_ = fit_churn(settings, train, H)
        churn.fit_population(test.population, test.X)
        x, t_x, T = bgnbd_inputs(test.X)
        frame["churn_model"] = churn.predict_proba(test.X)[:, 1]
        frame["churn_recency"] = recency / (np.nanmax(recency) + 1.0)
        frame["churn_bgnbd"] = churn.bgnbd_.p_no_purchase(float(H), x, t_x, T)
    if "next_purchase" in models:
        say(f"cutoff {cutoff.date()}: next-purchase model")
        ptrain = build_purchase_dataset(store, order_rows, cuts, refs, H, lookback, short, base=train)
        ptest = build_purchase_dataset(store, order_rows, [cutoff], refs, H, lookback, short, base=test)
        if not np.array_equal(ptest.customer_id, test.customer_id):
            raise AssertionError("churn and next-purchase test sets must hold the same customers in the same order")
        purchase, *_ = fit_next_purchase(settings, ptrain, H)
        purchase.fit_population(ptest.population, ptest.X)
        forecasts = {"model": purchase.predict_frame(ptest.X), "bgnbd_gg": purchase.baseline_frame(ptest.X),
                     "run_rate": run_rate_forecast(ptest.X, H, short)}
        frame["orders"] = ptest.targets["orders_in_horizon"].to_numpy()
        frame["orders_short"] = ptest.targets["orders_short"].to_numpy()
        frame["spend"] = ptest.targets["spend_in_horizon"].to_numpy()
        for name, f in forecasts.items():
            frame[f"orders_{name}"] = f["expected_purchases"].to_numpy()
            frame[f"spend_{name}"] = f["expected_spend"].to_numpy()
            frame[f"short_{name}"] = f["p_purchase_short"].to_numpy()
            frame[f"clv_{name}"] = f["clv_12m"].to_numpy()
    return CutoffPredictions(cutoff, frame, test.X.reset_index(drop=True))


def _brier(y, p) -> float:
    return float(np.mean((np.asarray(p, float) - np.asarray(y, float)) ** 2))


def _auc(y, p) -> float:
    return fast_roc_auc(y, p)


def _deviance(y, mu) -> float:
    return count_metrics(y, mu)["poisson_deviance"]


def _rmse(y, mu) -> float:
    return float(np.sqrt(np.mean((np.asarray(y, float) - np.asarray(mu, float)) ** 2)))


@dataclass
class RollingResult:
    """Predictions and metrics of every model and baseline at every cutoff, plus paired intervals."""

    horizon_days: int
    cutoffs: list[pd.Timestamp]
    predictions: pd.DataFrame
    churn: pd.DataFrame = field(default_factory=pd.DataFrame)  # rows (cutoff, scorer)
    purchase: pd.DataFrame = field(default_factory=pd.DataFrame)  # rows (cutoff, forecaster)
    intervals: pd.DataFrame = field(default_factory=pd.DataFrame)  # model minus best baseline, per cutoff and pooled
    features: dict[pd.Timestamp, pd.DataFrame] = field(default_factory=dict)  # per cutoff, rows as in predictions


def score_predictions(pred: pd.DataFrame, horizon_days: int, bootstrap_samples: int = 500, seed: int = 0) -> RollingResult:
    """Metrics per cutoff and model, and paired bootstrap intervals of the model minus its best baseline."""
    churn_rows, purchase_rows, interval_rows = [], [], []
    cutoffs = sorted(pred["cutoff"].unique())
    for c in cutoffs:
        d = pred[pred["cutoff"] == c]
        for s in (CHURN_SCORERS if "churn_model" in d else ()):
            m = churn_metrics(d["churned"], d[f"churn_{s}"])
            if s == "recency":
                m["brier"] = float("nan")  # a rank, not a probability
            churn_rows.append({"cutoff": c, "scorer": s, **m})
        for f in (PURCHASE_FORECASTERS if "orders_model" in d else ()):
            o = count_metrics(d["orders"], d[f"orders_{f}"])
            sp = count_metrics(d["spend"], d[f"spend_{f}"])
            sh = churn_metrics((d["orders_short"] > 0).astype(int), d[f"short_{f}"])
            purchase_rows.append({"cutoff": c, "forecaster": f,
                                  "orders_poisson_deviance": o["poisson_deviance"], "orders_rmse": o["rmse"],
                                  "orders_total_ratio": o["total_ratio"], "spend_rmse": sp["rmse"],
                                  "spend_total_ratio": sp["total_ratio"], "short_roc_auc": sh["roc_auc"],
                                  "short_brier": sh["brier"], "n": o["n"]})
    churn = pd.DataFrame(churn_rows)
    purchase = pd.DataFrame(purchase_rows)

    checks = [  # (model, metric name, actual column, prediction prefix, metric fn, lower is better, baselines)
        ("churn", "roc_auc", "churned", "churn_", _auc, False, ("recency", "bgnbd")),
        ("churn", "brier", "churned", "churn_", _brier, True, ("bgnbd",)),
        ("next_purchase", "orders_poisson_deviance", "orders", "orders_", _deviance, True, ("bgnbd_gg", "run_rate")),
        ("next_purchase", "spend_rmse", "spend", "spend_", _rmse, True, ("bgnbd_gg", "run_rate")),
    ]
    scopes = [(pd.Timestamp(c), pred["cutoff"] == c) for c in cutoffs] + [("all cutoffs", np.ones(len(pred), bool))]
    for model, metric, actual, prefix, fn, lower, baselines in checks:
        if f"{prefix}model" not in pred:
            continue
        for scope, mask in scopes:
            d = pred[mask]
            vals = {b: fn(d[actual].to_numpy(), d[f"{prefix}{b}"].to_numpy()) for b in baselines}
            best = min(vals, key=vals.get) if lower else max(vals, key=vals.get)
            res = paired_bootstrap(d[actual].to_numpy(), d[f"{prefix}model"].to_numpy(), d[f"{prefix}{best}"].to_numpy(),
                                   fn, n_samples=bootstrap_samples, seed=seed,
                                   strata=d["cutoff"].to_numpy() if scope == "all cutoffs" else None)
            better = (res["diff"] < 0) if lower else (res["diff"] > 0)
            interval_rows.append({"model": model, "metric": metric, "scope": scope, "best_baseline": best,
                                  "model_value": fn(d[actual].to_numpy(), d[f"{prefix}model"].to_numpy()),
                                  "baseline_value": vals[best], **res,
                                  "verdict": ("better" if better else "worse") if res["excludes_zero"] else "no clear difference"})
    return RollingResult(horizon_days, [pd.Timestamp(c) for c in cutoffs], pred, churn, purchase, pd.DataFrame(interval_rows))


def rolling_backtest(settings: Settings, ws: Workspace, cutoffs: list[pd.Timestamp], horizon_days: int,
                     progress: Progress | None = None, models: tuple[str, ...] = ("churn", "next_purchase")
                     ) -> RollingResult:
    """Train and score at every cutoff, then compute metrics and intervals."""
    say = progress or (lambda _m: None)
    orders = ws.read_table("orders")
    last = orders["ordered_at"].max()
    for c in cutoffs:
        if c + pd.Timedelta(days=horizon_days) > last + pd.Timedelta(days=1):
            raise ValueError(f"backtest cutoff {c.date()}: its holdout ends {(c + pd.Timedelta(days=horizon_days)).date()}, "
                             f"after the last order ({last.date()}); use earlier cutoffs or a shorter horizon")
    parts = []
    for i, c in enumerate(cutoffs, 1):
        say(f"backtest cutoff {i}/{len(cutoffs)}: {c.date()}")
        parts.append(predict_at_cutoff(settings, ws, c, horizon_days, progress=say, models=models))
    pred = pd.concat([p.frame for p in parts], ignore_index=True)
    say(f"metrics and paired bootstrap intervals ({settings.evaluation.bootstrap_samples} resamples)")
    result = score_predictions(pred, horizon_days, settings.evaluation.bootstrap_samples)
    result.features = {p.cutoff: p.features for p in parts}
    return result
