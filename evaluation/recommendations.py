"""Time-based backtest of the recommender against its baselines at one or more cutoffs.

At each cutoff every model is fitted on the events before it; every customer with a sale in the
``lookback_days`` before the cutoff gets ``k`` items per list; the truth is what they buy in
``[cutoff, cutoff + H)`` (``all``) and, of that, what they never bought before (``discovery``).
Metrics (:mod:`training.recommend.metrics`): Recall, NDCG, HitRate, MAP at ``k`` and catalog coverage.
Intervals: the ranker minus each baseline, paired bootstrap over customers.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import pandas as pd

from configs.settings import RecommenderSettings
from training.recommend import interactions
from training.recommend.baselines import baseline_models as _baseline_models
from training.recommend.data import as_utc
from training.recommend.metrics import METRICS, catalog_coverage, holdout_truth, paired_bootstrap_diff, per_customer_metrics
from training.recommend_pipeline import build_recommender

RANKER = "two-stage ranker"
LISTS = ("all", "discovery")
Progress = Callable[[str], None]


def baseline_models(knn: bool = True, als: bool = True) -> dict[str, object]:
    """The honest baselines, unfitted: popularity, own purchase history, EASE, (optionally) implicit ALS
    and item-kNN (:func:`training.recommend.baselines.baseline_models`, shared with the benchmarks).
    EASE and ALS tune their hyper-parameters on ``as_of - H`` with data before ``as_of``."""
    return dict(_baseline_models(knn=knn, als=als))


def eligible_buyers(orders: pd.DataFrame, cutoff, lookback_days: int) -> list[str]:
    """Customers with a sale line in ``[cutoff - lookback, cutoff)``."""
    cutoff = as_utc(cutoff)
    lines = interactions(orders, cutoff, start=cutoff - pd.Timedelta(days=lookback_days))
    return sorted(lines["customer_id"].astype(str).unique())


@dataclass
class RecommenderBacktest:
    """Per-cutoff results: ``metrics`` (cutoff, list, model, ndcg, recall, hit_rate, map, coverage,
    customers), ``intervals`` (cutoff, list, metric, baseline, diff, ci_low, ci_high, excludes_zero, n),
    fit seconds per (cutoff, model) and the ranker's fit info per cutoff."""

    metrics: pd.DataFrame
    intervals: pd.DataFrame
    fit_seconds: pd.DataFrame
    fit_info: dict[str, dict]
    k: int


def backtest_recommenders(orders: pd.DataFrame, products: pd.DataFrame | None, sessions: pd.DataFrame | None,
                          cutoffs: Sequence, cfg: RecommenderSettings, k: int = 10, n_boot: int = 500,
                          knn: bool = True, progress: Progress | None = None) -> RecommenderBacktest:
    """Fit the ranker and every baseline at each cutoff; score ``all`` and ``discovery`` lists against the holdout."""
    say = progress or (lambda _m: None)
    H = cfg.horizon_days
    metric_rows, interval_rows, fit_rows, infos = [], [], [], {}
    for cutoff in (as_utc(c) for c in cutoffs):
        customers = eligible_buyers(orders, cutoff, cfg.lookback_days)
        truth = holdout_truth(orders, cutoff, H, customers)
        catalog = int(interactions(orders, cutoff)["product_id"].nunique())
        models = {**baseline_models(knn), RANKER: build_recommender(cfg)}
        per: dict[str, dict[str, pd.DataFrame]] = {}
        for name, model in models.items():
            say(f"{cutoff.date()}: fitting {name}")
            t0 = time.perf_counter()
            kw = {"training_cutoffs": cfg.training_cutoffs} if name == RANKER else {}
            model.fit(orders, products, sessions, as_of=cutoff, horizon_days=H, **kw)
            fit_rows.append({"cutoff": cutoff, "model": name, "seconds": round(time.perf_counter() - t0, 2)})
            per[name] = {}
            for lst in LISTS:
                recs = model.recommend_batch(customers, k, list=lst)
                p = per_customer_metrics(recs, truth[lst], k).set_index("customer_id")
                per[name][lst] = p
                metric_rows.append({"cutoff": cutoff, "list": lst, "model": name,
                                    **{m: float(p[m].mean()) if len(p) else float("nan") for m in METRICS},
                                    "coverage": catalog_coverage(recs, catalog, k), "customers": int(len(p))})
        infos[str(cutoff.date())] = models[RANKER].fit_info_
        for lst in LISTS:
            for base in (n for n in models if n != RANKER):
                for m in METRICS:
                    b = paired_bootstrap_diff(per[RANKER][lst][m], per[base][lst][m], n_boot=n_boot)
                    interval_rows.append({"cutoff": cutoff, "list": lst, "metric": m, "baseline": base, **b})
    return RecommenderBacktest(pd.DataFrame(metric_rows), pd.DataFrame(interval_rows), pd.DataFrame(fit_rows),
                               infos, k)


def verdicts(bt: RecommenderBacktest, metric: str = "ndcg") -> pd.DataFrame:
    """Per cutoff and list: the ranker minus its best baseline on ``metric`` with the interval and a verdict."""
    rows = []
    for (cutoff, lst), g in bt.metrics.groupby(["cutoff", "list"], sort=True):
        base = g[g["model"] != RANKER].sort_values(metric, ascending=False).iloc[0]
        ranker = g[g["model"] == RANKER].iloc[0]
        iv = bt.intervals[(bt.intervals["cutoff"] == cutoff) & (bt.intervals["list"] == lst)
                          & (bt.intervals["metric"] == metric) & (bt.intervals["baseline"] == base["model"])].iloc[0]
        verdict = ("better" if iv["ci_low"] > 0 else "worse" if iv["ci_high"] < 0 else "no clear difference")
        rows.append({"cutoff": cutoff, "list": lst, "metric": f"{metric}@{bt.k}", "best_baseline": base["model"],
                     "ranker": ranker[metric], "baseline": base[metric], "diff": iv["diff"],
                     "ci_low": iv["ci_low"], "ci_high": iv["ci_high"], "verdict": verdict})
    return pd.DataFrame(rows)
