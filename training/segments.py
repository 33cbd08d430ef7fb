"""Customer segments: RFM scores and named segments, lifecycle stage, value tier, ABC class and behavioural clusters.

``SegmentModel`` is fitted on the customers of one as-of date (every one of them has at least one order in the
365 days before it) and then assigns the same segments to any frame of customers with the stored thresholds, so
batch scoring and the HTTP service agree. Input columns carry the Feast view prefix, e.g.
``customer_orders__recency_days``; the required ones are listed in ``REQUIRED_FEATURES``. ``value`` is the
predicted 12-month value of each customer; without it the last 365 days' spend (``monetary_365d``) is the proxy.
The rules, exactly:

RFM scores (``recency_score``, ``frequency_score``, ``monetary_score``, 1..n_rfm_bins, 5 = best by default)
    R from ``recency_days``, F from ``frequency_365d``, M from ``monetary_365d``. Fit stores the edges
    ``q_i = quantile(x, i / n_rfm_bins)``, i = 1..n_rfm_bins-1 (numpy's linear interpolation, NaN ignored) in
    ``recency_edges_``, ``frequency_edges_``, ``monetary_edges_``. With ``b`` = the number of edges strictly
    below a value, ``F = M = 1 + b`` and ``R = n_rfm_bins - b`` (a low recency is good). So scores are monotone,
    tied values get the same score (heavy ties simply leave some scores unused, e.g. when 60% of customers have
    one order they all get F = 1), and values outside the training range get 1 or n_rfm_bins. A NaN value gets
    the worst score, 1.

Named RFM segment (``rfm_segment``)
    ``FM = floor((F + M) / 2 + 0.5)`` (the mean of F and M, halves rounded up), and ``SEGMENT_GRID`` maps each of
    the 25 (R, FM) pairs to one of the 11 ``SEGMENT_NAMES``::

        FM:      1               2                   3                   4          5
        R 5  New             Potential loyalist  Potential loyalist  Champions  Champions
        R 4  Promising       Potential loyalist  Potential loyalist  Loyal      Champions
        R 3  About to sleep  About to sleep      Need attention      Loyal      Loyal
        R 2  Hibernating     Hibernating         At risk             At risk    Cannot lose
        R 1  Lost            Lost                At risk             At risk    Cannot lose

    With ``n_rfm_bins`` other than 5, R and FM are first mapped onto 1..5 by ``ceil(score * 5 / n_rfm_bins)``.

Lifecycle stage (``lifecycle_stage``: new, repeat, loyal, lapsing, churned; see ``lifecycle_stage()``)
    A customer's rhythm is ``max(ipi_mean_days, min_rhythm_days)`` when ``frequency_lifetime >= 2`` and the
    inter-purchase interval is known; otherwise (one-order customers) it is ``median_rhythm_days_``: the median
    ``ipi_mean_days`` of the training customers with 2+ lifetime orders, floored at ``min_rhythm_days``
    (``default_rhythm_days`` when no training customer has one). The first rule that holds wins:
    churned if ``recency_days > churned_factor * rhythm``; lapsing if ``recency_days > lapsing_factor * rhythm``
    (equal to the bound is not beyond it); new if ``frequency_lifetime <= 1``; loyal if
    ``frequency_lifetime >= loyal_min_orders`` and ``tenure_days >= loyal_min_tenure_days``; else repeat.
    A NaN recency is never lapsing or churned, a NaN lifetime frequency counts as one order, a NaN tenure is
    never loyal.

Value tier (``value_tier``, the customer value pyramid; ``VALUE_TIERS``)
    Sort the training values descending; with ``n`` customers the top tier holds the first ``ceil(1% n)``,
    top + big the first ``ceil(5% n)`` and top + big + medium the first ``ceil(20% n)`` (``VALUE_TIER_SHARES``:
    1%, 4%, 15%, 80%). The value of the last customer of each group is stored in ``value_tier_thresholds_``
    and every customer (training or new) is put in the highest tier whose threshold their value reaches, so
    customers tied at a threshold share the higher tier. A value <= 0 or NaN is always "small". With 100
    distinct values that is exactly 1 top, 4 big, 15 medium and 80 small.

ABC class (``abc_class``)
    Values below 0 and NaN count as 0. Sort the training customers by value descending: a customer is A when
    the customers before them hold less than 80% of the total value (so the customer who crosses 80% is A),
    B when they hold less than 95%, else C. The lowest A and B values are stored in ``abc_thresholds_`` and
    every customer is classed by them (value >= A threshold: A; >= B threshold: B; else C), so ties share the
    better class. When the total value is 0 everyone is C (the thresholds are infinite).

Behavioural clusters (``cluster``; ``describe_clusters()``)
    Features: those of ``CLUSTER_FEATURES`` present in the training frame and not all NaN (stored in
    ``cluster_features_``). The counts, days and money ones (``LOG_FEATURES``) are transformed with the signed
    log1p ``sign(x) * log(1 + |x|)``; NaN is imputed with the training median of the raw feature
    (``cluster_medians_``); then ``StandardScaler``. On a random sample of at most ``cluster_sample`` rows
    (seeded by ``random_state``; all rows when there are fewer) ``KMeans(n_init=10, random_state)`` is fitted
    for every k in ``k_range`` (inclusive) and the k with the highest silhouette score of its labels on that
    sample (Euclidean, in the scaled space) wins, ties to the smaller k (``k_``, ``silhouette_by_k_``); when the
    sample is not all rows, KMeans with the chosen k is refitted on all rows. The k range is cut to at most
    half the number of distinct sample rows; when fewer than 2 clusters are possible (e.g. fewer than 3
    customers) everyone is in cluster 0 (``k_`` = 1). Clusters are
    relabelled by descending size (ties: higher mean scaled ``monetary_365d`` first, then centre coordinates),
    so cluster 0 is the largest; new customers go to the nearest relabelled centre (``cluster_centers_``).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator
from sklearn.cluster import KMeans
from sklearn.metrics import silhouette_score
from sklearn.preprocessing import StandardScaler
from sklearn.utils.validation import check_is_fitted
from threadpoolctl import threadpool_limits

PREFIX = "customer_orders__"

REQUIRED_FEATURES = ("recency_days", "tenure_days", "frequency_365d", "frequency_lifetime", "monetary_365d",
                     "ipi_mean_days")

CLUSTER_FEATURES = ("recency_days", "frequency_365d", "monetary_365d", "avg_order_value_365d", "tenure_days",
                    "distinct_products_365d", "return_rate_365d", "price_index_365d", "discount_share_365d")
# Skewed counts, durations and money: signed log1p before scaling.
LOG_FEATURES = frozenset({"recency_days", "frequency_365d", "monetary_365d", "avg_order_value_365d", "tenure_days",
                          "distinct_products_365d"})

OUTPUT_COLUMNS = ("recency_score", "frequency_score", "monetary_score", "rfm_segment", "lifecycle_stage",
                  "value_tier", "abc_class", "cluster")

SEGMENT_NAMES = ("Champions", "Loyal", "Potential loyalist", "New", "Promising", "Need attention", "About to sleep",
                 "At risk", "Cannot lose", "Hibernating", "Lost")


def _grid() -> dict[tuple[int, int], str]:
    rows = {  # R: names for FM = 1..5
        5: ("New", "Potential loyalist", "Potential loyalist", "Champions", "Champions"),
        4: ("Promising", "Potential loyalist", "Potential loyalist", "Loyal", "Champions"),
        3: ("About to sleep", "About to sleep", "Need attention", "Loyal", "Loyal"),
        2: ("Hibernating", "Hibernating", "At risk", "At risk", "Cannot lose"),
        1: ("Lost", "Lost", "At risk", "At risk", "Cannot lose"),
    }
    return {(r, fm): name for r, names in rows.items() for fm, name in enumerate(names, start=1)}


# (R, FM) -> segment name, all 25 combinations of scores 1..5.
SEGMENT_GRID: dict[tuple[int, int], str] = _grid()

LIFECYCLE_STAGES = ("new", "repeat", "loyal", "lapsing", "churned")

# Customer value pyramid, best first: (tier, share of customers).
VALUE_TIERS = ("top", "big", "medium", "small")
VALUE_TIER_SHARES = {"top": 0.01, "big": 0.04, "medium": 0.15, "small": 0.80}

ABC_SHARES = {"A": 0.80, "B": 0.15, "C": 0.05}


def _numeric(X: pd.DataFrame, col: str) -> np.ndarray:
    """A column as a float array with NaN for anything missing or non-numeric."""
    return pd.to_numeric(X[col], errors="coerce").astype("Float64").to_numpy(dtype=float, na_value=np.nan)


def _signed_log1p(x: np.ndarray) -> np.ndarray:
    return np.sign(x) * np.log1p(np.abs(x))


def quantile_edges(x: np.ndarray, n_bins: int) -> np.ndarray:
    """The ``n_bins - 1`` inner quantile edges of ``x`` (NaN ignored; zeros when ``x`` has no finite value)."""
    x = np.asarray(x, dtype=float)
    x = x[np.isfinite(x)]
    if len(x) == 0:
        return np.zeros(n_bins - 1)
    return np.quantile(x, np.arange(1, n_bins) / n_bins)


def bin_score(x: np.ndarray, edges: np.ndarray, higher_is_better: bool = True) -> np.ndarray:
    """Score 1..len(edges)+1: one plus the number of edges strictly below the value (reversed when lower is
    better); NaN gets 1."""
    x = np.asarray(x, dtype=float)
    below = (np.asarray(edges, dtype=float)[None, :] < x[:, None]).sum(axis=1)
    n_bins = len(edges) + 1
    score = 1 + below if higher_is_better else n_bins - below
    return np.where(np.isnan(x), 1, score).astype(np.int64)


def rfm_segment(r: np.ndarray, f: np.ndarray, m: np.ndarray, n_bins: int = 5) -> np.ndarray:
    """Named segment of each (R, F, M) score triple via ``SEGMENT_GRID`` on (R, round-half-up mean of F and M)."""
    r, f, m = (np.asarray(s, dtype=np.int64) for s in (r, f, m))
    fm = (f + m + 1) // 2
    if n_bins != 5:
        r = np.ceil(r * 5 / n_bins).astype(np.int64)
        fm = np.ceil(fm * 5 / n_bins).astype(np.int64)
    return np.array([SEGMENT_GRID[(int(a), int(b))] for a, b in zip(r, fm)], dtype=object)


def lifecycle_stage(recency: Any, frequency: Any, tenure: Any, ipi_mean: Any, median_rhythm_days: float, *,
                    lapsing_factor: float = 1.5, churned_factor: float = 3.0, min_rhythm_days: float = 30.0,
                    loyal_min_orders: int = 4, loyal_min_tenure_days: float = 180.0) -> np.ndarray:
    """Lifecycle stage per customer from recency, lifetime frequency, tenure (days) and mean inter-purchase
    interval (days), by the rules in the module docstring; ``median_rhythm_days`` is the rhythm of one-order
    customers (floored at ``min_rhythm_days`` here too)."""
    recency, frequency, tenure, ipi = (np.atleast_1d(np.asarray(a, dtype=float)) for a in (recency, frequency, tenure, ipi_mean))
    frequency = np.where(np.isnan(frequency), 1.0, frequency)
    fallback = max(float(median_rhythm_days), float(min_rhythm_days))
    own = (frequency >= 2) & np.isfinite(ipi)
    rhythm = np.where(own, np.maximum(np.where(own, ipi, 0.0), min_rhythm_days), fallback)
    with np.errstate(invalid="ignore"):
        churned = recency > churned_factor * rhythm
        lapsing = recency > lapsing_factor * rhythm
        loyal = (frequency >= loyal_min_orders) & (tenure >= loyal_min_tenure_days)
    return np.select([churned, lapsing, frequency <= 1, loyal], ["churned", "lapsing", "new", "loyal"],
                     default="repeat").astype(object)


def value_tier_thresholds(value: np.ndarray) -> dict[str, float]:
    """Lowest value of the top, big and medium tiers: the value of the ``ceil(c * n)``-th customer by value,
    for the cumulative shares c = 1%, 5%, 20% (``inf`` when there are no values)."""
    v = np.sort(np.nan_to_num(np.asarray(value, dtype=float), nan=0.0))[::-1]
    out, cum = {}, 0.0
    for tier in VALUE_TIERS[:-1]:
        cum += VALUE_TIER_SHARES[tier]
        k = math.ceil(round(cum * len(v), 9))
        out[tier] = float(v[k - 1]) if k >= 1 else math.inf
    return out


def value_tier(value: np.ndarray, thresholds: dict[str, float]) -> np.ndarray:
    """Value pyramid tier of each value: the best tier whose threshold it reaches; <= 0 or NaN is small."""
    v = np.asarray(value, dtype=float)
    positive = v > 0
    conds = [positive & (v >= thresholds[t]) for t in VALUE_TIERS[:-1]]
    return np.select(conds, list(VALUE_TIERS[:-1]), default=VALUE_TIERS[-1]).astype(object)


def abc_thresholds(value: np.ndarray) -> dict[str, float]:
    """Lowest value of the A and B classes (negatives and NaN count as 0; ``inf`` when nobody is in the class)."""
    v = np.sort(np.clip(np.nan_to_num(np.asarray(value, dtype=float), nan=0.0), 0.0, None))[::-1]
    total = v.sum()
    if total <= 0:
        return {"A": math.inf, "B": math.inf}
    before = (np.cumsum(v) - v) / total  # share held by the customers ranked above each one
    out = {}
    for cls, cut in (("A", ABC_SHARES["A"]), ("B", ABC_SHARES["A"] + ABC_SHARES["B"])):
        inside = before < cut - 1e-12
        out[cls] = float(v[inside].min()) if inside.any() else math.inf
    return out


def abc_class(value: np.ndarray, thresholds: dict[str, float]) -> np.ndarray:
    """ABC class of each value from the stored thresholds; <= 0 or NaN is C."""
    v = np.asarray(value, dtype=float)
    positive = v > 0
    return np.select([positive & (v >= thresholds["A"]), positive & (v >= thresholds["B"])], ["A", "B"],
                     default="C").astype(object)


class SegmentModel(BaseEstimator):
    """RFM scores and named segments, lifecycle stage, value tier, ABC class and behavioural cluster of customers.

    The exact rules are in the module docstring. ``fit(X, value)`` learns the thresholds and clusters,
    ``transform(X, value)`` returns one row per customer with the columns of ``OUTPUT_COLUMNS``.
    """

    def __init__(self, n_rfm_bins: int = 5, lapsing_factor: float = 1.5, churned_factor: float = 3.0,
                 min_rhythm_days: float = 30.0, loyal_min_orders: int = 4, loyal_min_tenure_days: float = 180.0,
                 k_range: tuple[int, int] = (2, 8), cluster_sample: int = 5000, random_state: int | None = 0,
                 default_rhythm_days: float = 90.0):
        self.n_rfm_bins = n_rfm_bins
        self.lapsing_factor = lapsing_factor
        self.churned_factor = churned_factor
        self.min_rhythm_days = min_rhythm_days
        self.loyal_min_orders = loyal_min_orders
        self.loyal_min_tenure_days = loyal_min_tenure_days
        self.k_range = k_range
        self.cluster_sample = cluster_sample
        self.random_state = random_state
        self.default_rhythm_days = default_rhythm_days

    # ------------------------------------------------------------------------------------------------------
    # validation

    def _check_params(self) -> None:
        if int(self.n_rfm_bins) < 2:
            raise ValueError(f"n_rfm_bins must be at least 2, got {self.n_rfm_bins}")
        if not 0 < self.lapsing_factor <= self.churned_factor:
            raise ValueError("need 0 < lapsing_factor <= churned_factor")
        if self.min_rhythm_days <= 0 or self.default_rhythm_days <= 0:
            raise ValueError("min_rhythm_days and default_rhythm_days must be positive")
        lo, hi = self.k_range
        if not 2 <= lo <= hi:
            raise ValueError(f"k_range must be (low, high) with 2 <= low <= high, got {self.k_range}")
        if self.cluster_sample < 3:
            raise ValueError("cluster_sample must be at least 3")

    @staticmethod
    def _check_columns(X: pd.DataFrame, features: tuple[str, ...] | list[str]) -> None:
        if not isinstance(X, pd.DataFrame):
            raise TypeError(f"X must be a pandas DataFrame, got {type(X).__name__}")
        missing = [PREFIX + f for f in features if PREFIX + f not in X.columns]
        if missing:
            raise ValueError(f"X is missing required columns: {missing}")

    @staticmethod
    def _value(X: pd.DataFrame, value: Any) -> np.ndarray:
        if value is None:
            return _numeric(X, PREFIX + "monetary_365d")
        v = np.asarray(value, dtype=float)
        if v.ndim != 1:
            raise ValueError(f"value must be 1-D, got shape {v.shape}")
        if len(v) != len(X):
            raise ValueError(f"value has {len(v)} entries but X has {len(X)} rows")
        return v

    # ------------------------------------------------------------------------------------------------------
    # clusters

    def _cluster_matrix(self, X: pd.DataFrame) -> np.ndarray:
        cols = []
        for f in self.cluster_features_:
            x = _numeric(X, PREFIX + f)
            x = np.where(np.isnan(x), self.cluster_medians_[f], x)
            cols.append(_signed_log1p(x) if f in LOG_FEATURES else x)
        return np.column_stack(cols) if cols else np.zeros((len(X), 0))

    def _fit_clusters(self, X: pd.DataFrame) -> np.ndarray:
        present = [f for f in CLUSTER_FEATURES if PREFIX + f in X.columns and np.isfinite(_numeric(X, PREFIX + f)).any()]
        self.cluster_features_ = present
        self.cluster_medians_ = {f: float(np.nanmedian(_numeric(X, PREFIX + f))) for f in present}
        Z = self._cluster_matrix(X)
        self.scaler_ = StandardScaler().fit(Z)
        Z = self.scaler_.transform(Z)
        n = len(Z)
        self.silhouette_by_k_ = {}
        rng = np.random.default_rng(self.random_state)
        sample = np.sort(rng.choice(n, size=min(n, int(self.cluster_sample)), replace=False))
        Zs = Z[sample]
        n_distinct = len(np.unique(np.round(Zs, 12), axis=0))
        hi = min(int(self.k_range[1]), n_distinct // 2, len(Zs) - 1)
        lo = min(int(self.k_range[0]), hi)
        if n < 3 or hi < 2:
            self.k_ = 1
            self.cluster_centers_ = Z.mean(axis=0, keepdims=True)
            return np.zeros(n, dtype=np.int64)

        best: tuple[float, int, KMeans] | None = None  # (silhouette, k, model); ties keep the smaller k
        # One OpenMP thread: on small machines KMeans' thread pool is far slower than a single thread.
        with threadpool_limits(limits=1, user_api="openmp"):
            for k in range(lo, hi + 1):
                km = KMeans(n_clusters=k, n_init=10, random_state=self.random_state).fit(Zs)
                n_lab = len(np.unique(km.labels_))
                score = float(silhouette_score(Zs, km.labels_)) if 2 <= n_lab < len(Zs) else -1.0
                self.silhouette_by_k_[k] = score
                if best is None or score > best[0]:
                    best = (score, k, km)
            _, self.k_, km = best
            if len(sample) < n:  # chosen on the sample: refit the chosen k on everyone
                km = KMeans(n_clusters=self.k_, n_init=10, random_state=self.random_state).fit(Z)
        labels, centers = km.labels_, km.cluster_centers_

        # Relabel: largest cluster first; ties by higher mean scaled monetary_365d, then centre coordinates.
        sizes = np.bincount(labels, minlength=self.k_)
        feats = self.cluster_features_
        m_idx = feats.index("monetary_365d") if "monetary_365d" in feats else 0
        order = sorted(range(self.k_), key=lambda c: (-sizes[c], -centers[c, m_idx], tuple(centers[c])))
        self.cluster_centers_ = centers[order]
        return self._nearest(Z)

    def _assign_clusters(self, X: pd.DataFrame) -> np.ndarray:
        if len(X) == 0:
            return np.zeros(0, dtype=np.int64)
        return self._nearest(self.scaler_.transform(self._cluster_matrix(X)))

    def _nearest(self, Z: np.ndarray) -> np.ndarray:
        d = ((Z[:, None, :] - self.cluster_centers_[None, :, :]) ** 2).sum(axis=2)
        return d.argmin(axis=1).astype(np.int64)

    def _summarise_clusters(self, X: pd.DataFrame, labels: np.ndarray) -> pd.DataFrame:
        Z = self.scaler_.transform(self._cluster_matrix(X))
        rows = []
        for c in range(self.k_):
            inside = labels == c
            row: dict[str, Any] = {"cluster": c, "customers": int(inside.sum()), "share": float(inside.mean())}
            for f in self.cluster_features_:
                raw = _numeric(X, PREFIX + f)[inside]
                row[f] = float(np.nanmean(raw)) if np.isfinite(raw).any() else math.nan
            if self.k_ == 1:
                row["distinguishing"] = "all customers (single cluster)"
            else:
                z = Z[inside].mean(axis=0)
                top = np.argsort(-np.abs(z), kind="stable")[:3]
                row["distinguishing"] = ", ".join(
                    f"{'high' if z[i] >= 0 else 'low'} {self.cluster_features_[i]} ({z[i]:+.1f} sd)" for i in top)
            rows.append(row)
        return pd.DataFrame(rows, columns=["cluster", "customers", "share", *self.cluster_features_, "distinguishing"])

    # ------------------------------------------------------------------------------------------------------
    # public API

    def fit(self, X: pd.DataFrame, value: Any = None) -> SegmentModel:
        """Learn RFM edges, the median rhythm, value-tier and ABC thresholds and the clusters from ``X``."""
        self._check_params()
        self._check_columns(X, REQUIRED_FEATURES)
        if len(X) == 0:
            raise ValueError("cannot fit segments on an empty frame")
        v = self._value(X, value)
        n = int(self.n_rfm_bins)
        self.recency_edges_ = quantile_edges(_numeric(X, PREFIX + "recency_days"), n)
        self.frequency_edges_ = quantile_edges(_numeric(X, PREFIX + "frequency_365d"), n)
        self.monetary_edges_ = quantile_edges(_numeric(X, PREFIX + "monetary_365d"), n)

        freq = _numeric(X, PREFIX + "frequency_lifetime")
        ipi = _numeric(X, PREFIX + "ipi_mean_days")
        repeat_ipi = ipi[(freq >= 2) & np.isfinite(ipi)]
        median = float(np.median(repeat_ipi)) if len(repeat_ipi) else float(self.default_rhythm_days)
        self.median_rhythm_days_ = max(median, float(self.min_rhythm_days))

        self.value_tier_thresholds_ = value_tier_thresholds(v)
        self.abc_thresholds_ = abc_thresholds(v)

        labels = self._fit_clusters(X)
        self.cluster_summary_ = self._summarise_clusters(X, labels)
        self.n_features_in_ = X.shape[1]
        return self

    def transform(self, X: pd.DataFrame, value: Any = None) -> pd.DataFrame:
        """Segments of each customer of ``X`` (rows in order, index reset), columns ``OUTPUT_COLUMNS``."""
        check_is_fitted(self, "cluster_centers_")
        self._check_columns(X, list(dict.fromkeys([*REQUIRED_FEATURES, *self.cluster_features_])))
        v = self._value(X, value)
        r = bin_score(_numeric(X, PREFIX + "recency_days"), self.recency_edges_, higher_is_better=False)
        f = bin_score(_numeric(X, PREFIX + "frequency_365d"), self.frequency_edges_)
        m = bin_score(_numeric(X, PREFIX + "monetary_365d"), self.monetary_edges_)
        stage = lifecycle_stage(
            _numeric(X, PREFIX + "recency_days"), _numeric(X, PREFIX + "frequency_lifetime"),
            _numeric(X, PREFIX + "tenure_days"), _numeric(X, PREFIX + "ipi_mean_days"), self.median_rhythm_days_,
            lapsing_factor=self.lapsing_factor, churned_factor=self.churned_factor,
            min_rhythm_days=self.min_rhythm_days, loyal_min_orders=self.loyal_min_orders,
            loyal_min_tenure_days=self.loyal_min_tenure_days)
        out = pd.DataFrame({
            "recency_score": r, "frequency_score": f, "monetary_score": m,
            "rfm_segment": rfm_segment(r, f, m, int(self.n_rfm_bins)),
            "lifecycle_stage": stage,
            "value_tier": value_tier(v, self.value_tier_thresholds_),
            "abc_class": abc_class(v, self.abc_thresholds_),
            "cluster": self._assign_clusters(X),
        })
        return out[list(OUTPUT_COLUMNS)].reset_index(drop=True)

    def fit_transform(self, X: pd.DataFrame, value: Any = None) -> pd.DataFrame:
        """``fit(X, value).transform(X, value)``."""
        return self.fit(X, value).transform(X, value)

    def describe_clusters(self) -> pd.DataFrame:
        """One row per cluster of the training customers: cluster, customers, share, the raw mean of each
        clustering feature and ``distinguishing``, the 3 features whose cluster mean lies furthest from all
        customers' mean, in standard deviations of the (log-transformed where applicable) scaled feature."""
        check_is_fitted(self, "cluster_summary_")
        return self.cluster_summary_.copy()
