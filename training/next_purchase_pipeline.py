"""The ``ecrm train`` stage for next purchase and customer value: data set, fit, validate, log, register.

Training examples are the eligible customers at the same monthly cutoffs as the churn model, with
their next-purchase targets (``training.labels.purchase_targets``) and point-in-time features from
Feast. Validation is on the last cutoff, strictly later than every training label window; the final
model is refitted on all cutoffs with the validated number of trees.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib.metadata import version

import matplotlib.pyplot as plt
import mlflow
import mlflow.sklearn
import numpy as np
import pandas as pd

from configs.runtime import quiet_dependencies
from configs.settings import Settings
from features.pipeline import customer_views
from features.snapshots import data_fingerprint
from features.storage import Workspace
from features.store import feature_refs
from training import plots
from training.churn_pipeline import ChurnDataset, build_dataset, stacked_cutoffs, training_features
from training.customer_base import POPULATION_COLUMNS
from training.customer_inputs import CustomerInputs, customer_inputs
from training.labels import purchase_targets, utc_datetime64
from training.metrics import churn_metrics, count_metrics
from training.next_purchase_model import NextPurchaseModel
from training.registry import NEXT_PURCHASE_MODEL, configure, find_trained, register_with_alias

Progress = Callable[[str], None]
TARGETS = ("orders_short", "orders_in_horizon", "spend_in_horizon", "days_to_next_order")


@dataclass
class PurchaseDataset:
    """Stacked examples: features, targets, the cutoff of each row, and each cutoff's customer base."""

    X: pd.DataFrame
    targets: pd.DataFrame
    cutoff: np.ndarray
    customer_id: np.ndarray
    population: pd.DataFrame
    population_cutoff: np.ndarray

    def subset(self, mask: np.ndarray) -> "PurchaseDataset":
        """The rows (and customer bases) of the cutoffs selected by ``mask``."""
        keep = np.isin(self.population_cutoff, np.unique(self.cutoff[mask]))
        return PurchaseDataset(self.X.loc[mask].reset_index(drop=True), self.targets.loc[mask].reset_index(drop=True),
                               self.cutoff[mask], self.customer_id[mask],
                               self.population.loc[keep].reset_index(drop=True), self.population_cutoff[keep])

    def fit_args(self) -> tuple:
        return (self.X, self.targets["orders_in_horizon"], self.targets["spend_in_horizon"], self.targets["orders_short"])

    def fit_kwargs(self) -> dict:
        return {"groups": self.cutoff, "population": self.population, "population_groups": self.population_cutoff}


@dataclass
class NextPurchaseTrainResult:
    """What a training run produced."""

    model: NextPurchaseModel | None
    metrics: dict[str, dict[str, float]] = field(default_factory=dict)
    run_id: str | None = None
    version: int | None = None
    alias: str | None = None
    skipped: bool = False
    message: str = ""


def build_purchase_dataset(store, order_rows: pd.DataFrame, cutoffs: list[pd.Timestamp], refs: list[str],
                           horizon_days: int, lookback_days: int, short_days: int,
                           base: ChurnDataset | None = None) -> PurchaseDataset:
    """Targets at each cutoff joined to point-in-time features from the feature store.

    ``base``: the churn data set of the same cutoffs, refs and windows; its features and customer base
    are reused (same customers in the same order), which saves the second feature retrieval.
    """
    labels = pd.concat([purchase_targets(order_rows, c, horizon_days, lookback_days, short_days) for c in cutoffs],
                       ignore_index=True)
    if base is None:
        base = build_dataset(store, order_rows, cutoffs, refs, horizon_days, lookback_days)
    if not np.array_equal(base.customer_id, labels["customer_id"].to_numpy()):
        raise ValueError("the churn data set given as base holds other customers: build it with the same cutoffs and windows")
    return PurchaseDataset(
        X=base.X,
        targets=labels[list(TARGETS)].reset_index(drop=True),
        cutoff=utc_datetime64(labels["event_timestamp"]),
        customer_id=labels["customer_id"].to_numpy(),
        population=base.population[list(POPULATION_COLUMNS)],
        population_cutoff=base.population_cutoff,
    )


def run_rate_forecast(X: pd.DataFrame, horizon_days: int, short_days: int) -> pd.DataFrame:
    """The run-rate baseline: the last 365 days' orders and spend, pro rata for the horizon."""
    f365 = np.nan_to_num(X["customer_orders__frequency_365d"].to_numpy(float))
    m365 = np.nan_to_num(X["customer_orders__monetary_365d"].to_numpy(float)).clip(min=0)
    return pd.DataFrame({
        "expected_purchases": f365 * horizon_days / 365.0,
        "expected_spend": m365 * horizon_days / 365.0,
        "p_purchase_short": 1.0 - np.exp(-f365 * short_days / 365.0),
        "clv_12m": m365,
    })


def evaluate_forecasts(targets: pd.DataFrame, forecasts: dict[str, pd.DataFrame]) -> dict[str, dict[str, float]]:
    """Metrics of each forecast (model or baseline): orders, spend and P(order in the short window)."""
    out: dict[str, dict[str, float]] = {}
    short = (targets["orders_short"].to_numpy() > 0).astype(int)
    for name, f in forecasts.items():
        o = count_metrics(targets["orders_in_horizon"], f["expected_purchases"])
        s = count_metrics(targets["spend_in_horizon"], f["expected_spend"])
        c = churn_metrics(short, f["p_purchase_short"])
        out[name] = {**{f"orders_{k}": v for k, v in o.items() if k != "n"},
                     **{f"spend_{k}": v for k, v in s.items() if k in ("rmse", "total_ratio", "mae")},
                     "short_roc_auc": c["roc_auc"], "short_brier": c["brier"], "n": o["n"]}
    return out


def make_model(settings: Settings, horizon_days: int, **overrides) -> NextPurchaseModel:
    """A NextPurchaseModel with the configured hyper-parameters."""
    params = settings.next_purchase.lightgbm.model_dump()
    params.update(overrides)
    return NextPurchaseModel(horizon_days=horizon_days, short_days=settings.next_purchase.short_days,
                             tweedie_variance_power=settings.next_purchase.tweedie_variance_power,
                             n_jobs=settings.compute.threads, **params)


def fit_next_purchase(settings: Settings, data: PurchaseDataset, horizon_days: int, progress: Progress | None = None
                      ) -> tuple[NextPurchaseModel, dict[str, dict[str, float]], dict[str, pd.DataFrame], PurchaseDataset]:
    """Validate on the last cutoff, then refit on all. Returns model, metrics per forecaster, forecasts, val."""
    cuts = np.array(sorted(pd.unique(data.cutoff)))
    val_cut = cuts[-1]
    train_mask = data.cutoff <= val_cut - np.timedelta64(horizon_days, "D")
    if train_mask.sum() == 0:
        raise ValueError(f"not enough history to validate the next-purchase model: need training cutoffs at least "
                         f"{horizon_days} days before {pd.Timestamp(val_cut).date()}")
    train, val = data.subset(train_mask), data.subset(data.cutoff == val_cut)
    if progress:
        progress(f"validating on cutoff {pd.Timestamp(val_cut).date()} ({len(val.X)} customers), "
                 f"training on {len(np.unique(train.cutoff))} earlier cutoffs ({len(train.X)} rows)")
    probe = make_model(settings, horizon_days).fit(
        *train.fit_args(), **train.fit_kwargs(),
        eval_set=(val.X, *[val.targets[c] for c in ("orders_in_horizon", "spend_in_horizon", "orders_short")]),
        eval_population=val.population)
    probe.fit_population(val.population, val.X)
    forecasts = {"model": probe.predict_frame(val.X), "bgnbd_gg": probe.baseline_frame(val.X),
                 "run_rate": run_rate_forecast(val.X, horizon_days, settings.next_purchase.short_days)}
    metrics = evaluate_forecasts(val.targets, forecasts)
    if progress:
        m, b = metrics["model"], metrics["bgnbd_gg"]
        progress(f"validation orders deviance {m['orders_poisson_deviance']:.3f} (BG/NBD {b['orders_poisson_deviance']:.3f}, "
                 f"run rate {metrics['run_rate']['orders_poisson_deviance']:.3f}); predicted/actual orders "
                 f"{m['orders_total_ratio']:.2f}; refitting on all {len(cuts)} cutoffs")
    trees = {k: max(20, int(round(v * 1.1))) for k, v in probe.best_iterations_.items()}
    final = make_model(settings, horizon_days, n_estimators=trees).fit(*data.fit_args(), **data.fit_kwargs())
    return final, metrics, forecasts, val


def config_hash(settings: Settings, as_of: pd.Timestamp, horizon_days: int) -> str:
    """Hash of everything that changes the trained model."""
    payload = json.dumps({"np": settings.next_purchase.model_dump(mode="json"), "churn": settings.churn.model_dump(mode="json"),
                          "as_of": str(as_of), "h": horizon_days}, sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def train_next_purchase(settings: Settings, ws: Workspace, as_of=None, horizon_days: int | None = None,
                        progress: Progress | None = None, force: bool = False,
                        base: ChurnDataset | None = None, inputs: CustomerInputs | None = None
                        ) -> NextPurchaseTrainResult:
    """Train, validate, log to MLflow and register ``ecrm-next-purchase``. ``base``: the churn model's
    training set of this run; ``inputs``: the order rows and score-date features shared with the other
    customer models (read here when None)."""
    say = progress or (lambda _m: None)
    H = int(horizon_days or settings.churn.horizon_days)
    inputs = customer_inputs(ws, as_of, inputs)
    order_rows, as_of = inputs.order_rows, inputs.as_of
    cutoffs = stacked_cutoffs(settings, order_rows, as_of, H)
    client = configure(settings, ws)
    tags = {"data_fingerprint": data_fingerprint(ws), "config_hash": config_hash(settings, as_of, H),
            "model_config": config_hash(settings, None, H), "as_of": as_of.isoformat(), "horizon_days": H}
    if not force and (found := find_trained(client, NEXT_PURCHASE_MODEL, tags)):
        ref, alias = found
        msg = f"{NEXT_PURCHASE_MODEL} v{ref.version} (@{alias}) is already trained on this data and config"
        say(msg)
        return NextPurchaseTrainResult(None, run_id=ref.run_id, version=ref.version, alias=alias, skipped=True, message=msg)

    store, views, training_rows = training_features(settings, ws, order_rows, cutoffs, as_of, say)
    refs = feature_refs(customer_views(views))
    data = build_purchase_dataset(store, training_rows, cutoffs, refs, H,
                                  settings.churn.eligibility_days,
                                  settings.next_purchase.short_days, base=base)
    say(f"training set: {len(data.X)} rows, mean orders in {H} days {data.targets['orders_in_horizon'].mean():.2f}")
    model, metrics, forecasts, val = fit_next_purchase(settings, data, H, progress=say)
    X_now, population_now = inputs.score_date_features(store, refs, settings.churn.eligibility_days)
    model.fit_population(population_now, X_now)

    with mlflow.start_run(run_name=f"next-purchase-train-{as_of.date()}") as run:
        mlflow.set_tags({"ecrm.stage": "train", "ecrm.model": NEXT_PURCHASE_MODEL, **tags})
        mlflow.log_params({"as_of": as_of.date().isoformat(), "horizon_days": H,
                           "short_days": settings.next_purchase.short_days, "cutoffs": len(cutoffs),
                           "first_cutoff": cutoffs[0].date().isoformat(), "last_cutoff": cutoffs[-1].date().isoformat(),
                           "training_rows": len(data.X), **{f"trees_{k}": v for k, v in model.best_iterations_.items()}})
        for name, m in metrics.items():
            mlflow.log_metrics({f"val_{name}_{k}": v for k, v in m.items() if np.isfinite(v)})
        mlflow.log_dict(settings.model_dump(mode="json"), "config.json")
        freq = val.X["customer_orders__frequency_365d"].to_numpy(float)
        mlflow.log_figure(plots.predicted_vs_actual_figure(val.targets["orders_in_horizon"].to_numpy(float),
                                                           {k: f["expected_purchases"].to_numpy() for k, f in forecasts.items()},
                                                           freq), "plots/orders_by_frequency.png")
        for part in ("orders", "spend", "short"):
            mlflow.log_text(model.feature_importance(part).to_csv(header=["gain"]), f"feature_importance_{part}.csv")
        plt.close("all")
        with quiet_dependencies():
            info = mlflow.sklearn.log_model(
                model, name="model", serialization_format="pickle",
                pip_requirements=[f"{d}=={version(d)}" for d in ("lightgbm", "scikit-learn", "pandas", "scipy")],
                metadata={"feature_refs": refs, "horizon_days": H, "as_of": as_of.isoformat()},
            )
        run_id = run.info.run_id
    m, b = metrics["model"], metrics["run_rate"]
    good = m["orders_poisson_deviance"] < b["orders_poisson_deviance"]
    ref, alias = register_with_alias(client, NEXT_PURCHASE_MODEL, run_id, info.model_uri,
                                     {**tags, "val_orders_poisson_deviance": round(m["orders_poisson_deviance"], 4),
                                      "feature_refs": json.dumps(refs)}, good)
    msg = (f"{NEXT_PURCHASE_MODEL} v{ref.version} registered" + (f" as @{alias}" if alias else
           " without alias: it did not beat the run-rate baseline on validation"))
    say(msg)
    return NextPurchaseTrainResult(model, metrics, run_id, ref.version, alias, message=msg)
