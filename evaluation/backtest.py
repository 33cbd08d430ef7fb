"""Time-based backtest of the churn model against honest baselines at one cutoff.

Everything the models see is strictly before the cutoff: training labels end by the cutoff and the
features scored at the cutoff come from earlier events. The holdout is [cutoff, cutoff + H), so the data
must extend to cutoff + H.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import mlflow
import numpy as np
import pandas as pd
from lightgbm import LGBMClassifier

from configs.settings import Settings
from features.pipeline import CUSTOMER_VIEWS, customer_views, prepare_features
from features.snapshots import as_utc
from features.storage import Workspace
from features.store import feature_refs
from training.churn_model import ChurnModel
from training.churn_pipeline import build_dataset, fit_churn, stacked_cutoffs
from training.labels import customer_orders
from training.metrics import churn_metrics
from training.registry import configure

# the classic RFM-style inputs of the "LightGBM on RFM features, one cutoff" reference
RFM_FEATURES = [
    "recency_days", "tenure_days", "frequency_30d", "frequency_90d", "frequency_365d", "frequency_lifetime",
    "monetary_30d", "monetary_90d", "monetary_365d", "monetary_lifetime", "repeat_purchase_days",
    "active_span_days", "ipi_mean_days", "ipi_std_days", "last_gap_days", "avg_order_value_lifetime",
    "avg_units_per_order", "frequency_prev_90d", "orders_per_30d",
]


@dataclass
class BacktestResult:
    """Metrics per scorer on the holdout."""

    cutoff: pd.Timestamp
    horizon_days: int
    metrics: dict[str, dict[str, float]]
    run_id: str | None = None

    def table(self) -> pd.DataFrame:
        return pd.DataFrame(self.metrics).T[["roc_auc", "pr_auc", "brier", "top_decile_lift", "mean_predicted", "churn_rate", "n"]]


def backtest_churn(settings: Settings, ws: Workspace, cutoff, horizon_days: int | None = None,
                   progress: Callable[[str], None] | None = None, log: bool = True) -> BacktestResult:
    """Train as of ``cutoff`` (data before it only) and score the holdout [cutoff, cutoff + H)."""
    say = progress or (lambda _m: None)
    H = int(horizon_days or settings.churn.horizon_days)
    cutoff = as_utc(cutoff)
    orders = ws.read_table("orders")
    order_rows = customer_orders(orders)
    last = orders["ordered_at"].max()
    if cutoff + pd.Timedelta(days=H) > last + pd.Timedelta(days=1):
        raise ValueError(f"holdout [{cutoff.date()}, {(cutoff + pd.Timedelta(days=H)).date()}) runs past the last "
                         f"order ({last.date()}): choose an earlier --cutoff or a shorter --horizon")
    cuts = stacked_cutoffs(settings, order_rows, cutoff, H)
    say(f"backtest at {cutoff.date()}, H={H}: {len(cuts)} training cutoffs")
    store, views = prepare_features(settings, ws, [*cuts, cutoff], progress=say, views=CUSTOMER_VIEWS)
    refs = feature_refs(customer_views(views))
    train = build_dataset(store, order_rows, cuts, refs, H, settings.churn.eligibility_days)
    test = build_dataset(store, order_rows, [cutoff], refs, H, settings.churn.eligibility_days)
    model, _val_metrics, _b, _s, _v = fit_churn(settings, train, H, progress=say)
    model.fit_population(test.population, test.X)
    scores: dict[str, np.ndarray] = {"champion_candidate": model.predict_proba(test.X)[:, 1]}

    # baselines
    recency = test.X["customer_orders__recency_days"].to_numpy()
    scores["recency"] = recency / (np.nanmax(recency) + 1.0)
    x, t_x, T = ChurnModel._rft(test.X)
    scores["bgnbd"] = model.bgnbd_.p_no_purchase(float(H), x, t_x, T)  # fitted on the customer base at the cutoff
    rfm_cols = [f"customer_orders__{f}" for f in RFM_FEATURES]
    one = train.cutoff == train.cutoff.max()
    lgb = LGBMClassifier(n_estimators=200, learning_rate=0.05, num_leaves=15, min_child_samples=50,
                         verbose=-1, n_jobs=2, random_state=0)
    lgb.fit(train.X.loc[one, rfm_cols], train.y[one])
    scores["lgbm_rfm_1cutoff"] = lgb.predict_proba(test.X[rfm_cols])[:, 1]

    metrics = {name: churn_metrics(test.y, s) for name, s in scores.items()}
    metrics["recency"]["brier"] = float("nan")  # a rank, not a probability
    result = BacktestResult(cutoff, H, metrics)
    if log:
        configure(settings, ws)
        with mlflow.start_run(run_name=f"churn-backtest-{cutoff.date()}") as run:
            mlflow.set_tags({"ecrm.stage": "backtest", "ecrm.model": "ecrm-churn"})
            mlflow.log_params({"cutoff": cutoff.date().isoformat(), "horizon_days": H, "training_cutoffs": len(cuts)})
            for name, m in metrics.items():
                mlflow.log_metrics({f"{name}_{k}": v for k, v in m.items() if np.isfinite(v)})
            result.run_id = run.info.run_id
    return result
