"""Ranking metrics for top-k recommendation lists, and a paired bootstrap for comparing two recommenders.

Definitions (binary relevance; ``rel`` = the customer's relevant items, ``hits`` = relevant items in the
top ``k``):

- ``recall@k``   = hits / |rel|
- ``hit_rate@k`` = 1 if hits > 0 else 0
- ``ndcg@k``     = sum over relevant items at rank r <= k of 1 / log2(r + 1), divided by the same sum
  for an ideal list (its first min(k, |rel|) ranks relevant)
- ``map@k``      = mean over customers of AP@k = sum over relevant ranks r <= k of precision@r,
  divided by min(k, |rel|)
- ``coverage``   = distinct items in anyone's top k / catalog size

Customers are averaged with equal weight. Only customers with at least one relevant item count; a
customer without a list scores zero. For the ``all`` evaluation ``rel`` is every item bought in the
holdout window; for ``discovery`` it is the items among those never bought by that customer before
the cutoff (customers left with no such item are excluded).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from training.recommend.data import holdout_items, interactions

METRICS = ("ndcg", "recall", "hit_rate", "map")


def _as_pairs(df: pd.DataFrame) -> pd.DataFrame:
    return df.astype({"customer_id": "string", "product_id": "string"})


def per_customer_metrics(recs: pd.DataFrame, truth: pd.DataFrame, k: int = 10) -> pd.DataFrame:
    """One row per customer in ``truth``: n_relevant, hits, ndcg, recall, hit_rate, map (AP@k).

    ``recs``: customer_id, rank (1 = best), product_id. ``truth``: customer_id, product_id (relevant
    pairs; duplicates ignored). Ranks beyond ``k`` are ignored.
    """
    truth = _as_pairs(truth[["customer_id", "product_id"]]).drop_duplicates()
    n_rel = truth.groupby("customer_id", observed=True).size().rename("n_relevant")
    out = pd.DataFrame({"n_relevant": n_rel})
    out.index = out.index.astype("string")
    out.index.name = "customer_id"
    r = _as_pairs(recs.loc[recs["rank"] <= k, ["customer_id", "rank", "product_id"]])
    r = r.drop_duplicates(["customer_id", "product_id"])
    hit = r.merge(truth, on=["customer_id", "product_id"], how="inner")
    rank = hit["rank"].to_numpy(dtype=float)
    hit = hit.assign(gain=1.0 / np.log2(rank + 1.0))
    hit = hit.sort_values(["customer_id", "rank"])
    hit["nth"] = hit.groupby("customer_id", observed=True).cumcount() + 1
    hit["prec"] = hit["nth"] / hit["rank"]
    g = hit.groupby("customer_id", observed=True)
    out["hits"] = g.size().reindex(out.index).fillna(0).astype("int64")
    dcg = g["gain"].sum().reindex(out.index).fillna(0.0)
    ideal_n = np.minimum(out["n_relevant"].to_numpy(), k)
    disc = np.r_[0.0, np.cumsum(1.0 / np.log2(np.arange(2, k + 2)))]
    out["ndcg"] = dcg.to_numpy() / disc[ideal_n]
    out["recall"] = out["hits"] / out["n_relevant"]
    out["hit_rate"] = (out["hits"] > 0).astype(float)
    out["map"] = g["prec"].sum().reindex(out.index).fillna(0.0).to_numpy() / ideal_n
    return out.reset_index()


def catalog_coverage(recs: pd.DataFrame, catalog_size: int, k: int = 10) -> float:
    """Distinct products in anyone's top ``k`` divided by ``catalog_size``."""
    if catalog_size <= 0:
        return float("nan")
    return float(recs.loc[recs["rank"] <= k, "product_id"].nunique() / catalog_size)


def ranking_metrics(recs: pd.DataFrame, truth: pd.DataFrame, k: int = 10, catalog_size: int | None = None) -> dict:
    """Means of :func:`per_customer_metrics` (``ndcg@k``, ...), ``n_customers`` and, given a catalog size,
    ``coverage@k``."""
    per = per_customer_metrics(recs, truth, k)
    out = {f"{m}@{k}": float(per[m].mean()) if len(per) else float("nan") for m in METRICS}
    out["n_customers"] = int(len(per))
    if catalog_size is not None:
        out[f"coverage@{k}"] = catalog_coverage(recs, catalog_size, k)
    return out


def discovery_truth(truth: pd.DataFrame, orders: pd.DataFrame, cutoff) -> pd.DataFrame:
    """The pairs of ``truth`` whose product the customer never bought before ``cutoff``."""
    before = interactions(orders, cutoff)[["customer_id", "product_id"]].drop_duplicates()
    t = _as_pairs(truth[["customer_id", "product_id"]]).drop_duplicates()
    m = t.merge(_as_pairs(before).assign(_seen=True), on=["customer_id", "product_id"], how="left")
    return t.loc[m["_seen"].isna().to_numpy()].reset_index(drop=True)


def holdout_truth(orders: pd.DataFrame, cutoff, horizon_days: int = 90, customers=None) -> dict[str, pd.DataFrame]:
    """``{"all": pairs bought in [cutoff, cutoff + H), "discovery": those never bought before}``."""
    truth = holdout_items(orders, cutoff, horizon_days, customers)
    return {"all": truth, "discovery": discovery_truth(truth, orders, cutoff)}


def paired_bootstrap_diff(a: pd.Series, b: pd.Series, n_boot: int = 1000, seed: int = 0,
                          level: float = 0.95) -> dict[str, float]:
    """Mean of ``a - b`` over customers and its percentile bootstrap interval (customers resampled, paired).

    ``a`` and ``b`` are per-customer metrics of two models indexed by customer (e.g. the ``ndcg``
    column of :func:`per_customer_metrics` with ``customer_id`` as index); only customers in both count.
    """
    a, b = a.align(b, join="inner")
    d = (a.to_numpy(dtype=float) - b.to_numpy(dtype=float))
    n = len(d)
    if n == 0:
        return {"diff": float("nan"), "ci_low": float("nan"), "ci_high": float("nan"), "excludes_zero": False,
                "n": 0}
    rng = np.random.default_rng(seed)
    means = np.empty(n_boot)
    for i in range(0, n_boot, 100):  # resample in blocks to bound memory
        m = min(100, n_boot - i)
        means[i:i + m] = d[rng.integers(0, n, size=(m, n))].mean(axis=1)
    lo, hi = np.percentile(means, [50 * (1 - level), 50 * (1 + level)])
    return {"diff": float(d.mean()), "ci_low": float(lo), "ci_high": float(hi),
            "excludes_zero": bool(lo > 0 or hi < 0), "n": int(n)}
