"""Baseline recommenders with one small interface.

``model.fit(orders, products=None, sessions=None, as_of=t)`` learns from interactions strictly before
``t``; ``model.recommend_batch(customer_ids, k=10, list="all")`` returns a DataFrame with columns
customer_id, rank (1 = best), product_id, score, reason (the baseline's name), like
:meth:`training.recommend.Recommender.recommend_batch`. ``list="discovery"`` leaves out the items
the customer bought before (never-bought list). Customers unknown at ``as_of`` get the
popularity list. Lists are padded with popular items when a model has fewer than ``k`` scores.

- :class:`PopularityRecommender`: most distinct buyers in the last 90 days (ties: all-time buyers).
- :class:`OwnHistoryRecommender`: the customer's own items, most orders first, ties by the most
  recent purchase, padded with popularity.
- :class:`ItemKNNRecommender`: sum of cosine similarities (customer co-purchase) to the items bought,
  each item keeping its ``neighbours`` most similar items.
- :class:`EASERecommender`: EASE (closed form); ``lam`` is chosen by :func:`choose_ease_lambda` on the
  earlier cutoff ``as_of - horizon`` unless given.
- :class:`ALSRecommender`: implicit-feedback matrix factorisation (``implicit``'s CPU
  AlternatingLeastSquares on the number of orders per customer and item); factors, regularization and
  alpha are chosen per list by :func:`choose_als_params` on the earlier cutoff ``as_of - horizon``
  unless given.

:func:`baseline_models` is the one list of baselines the backtests (``ecrm evaluate``, the benchmarks)
compare the ranker with.
"""

from __future__ import annotations

import builtins
import itertools

from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pandas as pd
import scipy.sparse as sp

from training.recommend.data import as_utc, YEAR_DAYS, Encoded, Snapshot, in_sorted, run_starts
from training.recommend.metrics import per_customer_metrics
from training.recommend.similarity import cosine_neighbours, ease_weights, gram, thread_limit, top_k_dense

EASE_LAMBDAS = (30.0, 100.0, 300.0, 1000.0, 3000.0)
# ALS grid (8 fits at the earlier cutoff). Confidence is 1 + alpha * orders; the regularization must
# grow with alpha (too much of it for the confidence collapses ALS to popularity).
ALS_GRID: dict[str, tuple] = {"factors": (64, 128), "regularization": (3.0, 10.0), "alpha": (0.3, 1.0)}
ALS_DEFAULT = {"factors": 64, "regularization": 10.0, "alpha": 1.0}
ALS_LISTS = ("all", "discovery")


def popularity_order(snap: Snapshot) -> np.ndarray:
    """Item indices by 90-day buyers, then all-time buyers, then id; items never bought are left out."""
    idx = np.arange(snap.n_items)
    order = np.lexsort((idx, -snap.buyers_all, -snap.buyers_pop))
    return order[snap.buyers_all[order] > 0]


def popularity_tiebreak(snap: Snapshot) -> np.ndarray:
    """A value in (0, 1) per item, larger for more popular items (0 for items never bought)."""
    out = np.zeros(snap.n_items)
    order = popularity_order(snap)
    out[order] = 1.0 - (np.arange(len(order)) + 1.0) / (len(order) + 1.0)
    return out


class BaseRecommender:
    """Scores every (customer, item) from :meth:`_scores`; items without a score are ordered by popularity."""

    name = "base"
    n_jobs = 1  # BLAS threads while fitting (one avoids oversubscription on a shared machine)

    def fit(self, orders: pd.DataFrame, products: pd.DataFrame | None = None,
            sessions: pd.DataFrame | None = None, *, as_of, horizon_days: int = 90,
            progress: Callable[[str], None] | None = None) -> "BaseRecommender":
        """Learn from sale lines strictly before ``as_of`` (``sessions`` are accepted and ignored)."""
        if progress is not None:
            progress(f"{self.name} as of {as_utc(as_of).date()}")
        self.as_of_ = as_utc(as_of)
        self.horizon_days = horizon_days
        self.enc_ = Encoded(orders, products, None, self.as_of_)
        self.snap_ = Snapshot(self.enc_, self.as_of_, horizon_days)
        self._tiebreak = popularity_tiebreak(self.snap_)
        with thread_limit(self.n_jobs):
            self._fit_scores()
        return self

    def _fit_scores(self) -> None:
        pass

    def _scores(self, rows: np.ndarray) -> np.ndarray:
        """(len(rows) x items) scores; NaN or -inf = no score (falls back to popularity)."""
        return np.full((len(rows), self.snap_.n_items), np.nan)

    def recommend_batch(self, customer_ids, k: int = 10, list: str = "all") -> pd.DataFrame:  # noqa: A002
        """Top ``k`` per customer: DataFrame(customer_id, rank, product_id, score, reason).

        ``list="discovery"`` leaves out the items each customer bought before ``as_of``.
        """
        if list not in ("all", "discovery"):
            raise ValueError(f"list must be 'all' or 'discovery', got {list!r}")
        df = self.top_k(customer_ids, k, exclude_purchased=(list == "discovery"))
        df["reason"] = pd.array([self.name] * len(df), dtype="string")
        return df

    def recommend(self, customer_id, k: int = 10, list: str = "all") -> builtins.list[tuple[str, float, str]]:  # noqa: A002
        """Top ``k`` (product_id, score, reason) for one customer."""
        df = self.recommend_batch([customer_id], k, list)
        return [(str(p), float(s), str(r)) for p, s, r in zip(df["product_id"], df["score"], df["reason"])]

    def top_k(self, customer_ids, k: int = 10, exclude_purchased: bool = False,
              chunk: int = 1024) -> pd.DataFrame:
        """Top ``k`` per customer: DataFrame(customer_id, rank, product_id, score)."""
        enc, snap = self.enc_, self.snap_
        ids = pd.Index(pd.Series(list(customer_ids), dtype="string").astype(str))
        pos = np.searchsorted(enc.cust_ids, ids.to_numpy(dtype=object)).clip(max=max(enc.n_cust - 1, 0))
        known = enc.cust_ids[pos] == ids.to_numpy(dtype=object)
        rows = np.where(known, pos, -1)
        bought = snap.history_matrix("binary") if exclude_purchased else None
        out_c, out_p, out_s = [], [], []
        fallback = -2.0 + self._tiebreak  # in (-2, -1): below any model score of the padded models
        fallback[snap.buyers_all == 0] = -np.inf
        for lo in range(0, len(rows), chunk):
            r = rows[lo:lo + chunk]
            S = np.full((len(r), snap.n_items), np.nan)
            kr = r >= 0
            if kr.any():
                S[kr] = self._scores(r[kr])
            S = np.where(np.isfinite(S), S, fallback[None, :])
            if bought is not None and kr.any():
                b = bought[r[kr]].tocoo()
                sub = S[kr]
                sub[b.row, b.col] = -np.inf
                S[kr] = sub
            top, val = top_k_dense(S, k)
            ok = np.isfinite(val)
            out_c.append(np.repeat(ids[lo:lo + chunk].to_numpy(dtype=object), top.shape[1])[ok.ravel()])
            out_p.append(top.ravel()[ok.ravel()])
            out_s.append(val.ravel()[ok.ravel()])
        cust = np.concatenate(out_c) if out_c else np.array([], dtype=object)
        df = pd.DataFrame({"customer_id": pd.array(cust, dtype="string"),
                           "product_id": pd.array(enc.item_ids[np.concatenate(out_p)] if out_p else [], dtype="string"),
                           "score": np.concatenate(out_s) if out_s else np.array([])})
        df.insert(1, "rank", df.groupby("customer_id", sort=False).cumcount().astype("int64") + 1)
        return df[["customer_id", "rank", "product_id", "score"]]


class PopularityRecommender(BaseRecommender):
    """Most distinct buyers in the last 90 days before ``as_of``."""

    name = "popularity"


class OwnHistoryRecommender(BaseRecommender):
    """The customer's items by number of orders, ties by recency; padded with popularity."""

    name = "own history"

    def _fit_scores(self) -> None:
        ci = self.snap_.ci
        recency = 1.0 - ci["last_days"].to_numpy() / (ci["last_days"].max() + 1.0)  # in (0, 1]
        self._own = sp.csr_matrix((ci["n_orders"].to_numpy() + recency * 0.999,
                                   (ci["cust"].to_numpy(), ci["item"].to_numpy())),
                                  shape=(self.snap_.n_cust, self.snap_.n_items))

    def _scores(self, rows):
        S = self._own[rows].toarray()
        S[S == 0] = np.nan
        return S


class ItemKNNRecommender(BaseRecommender):
    """Item-based kNN with cosine similarity of customer co-purchases."""

    name = "item-kNN"

    def __init__(self, neighbours: int = 100) -> None:
        self.neighbours = neighbours

    def _fit_scores(self) -> None:
        X = self.snap_.history_matrix("binary")
        self.sim_ = cosine_neighbours(X, top=self.neighbours)
        self._X = X

    def _scores(self, rows):
        S = (self._X[rows] @ self.sim_).toarray()
        S[S <= 0] = np.nan
        return S


EASE_LAMBDA_CUSTOMERS = 100_000  # customers scored to choose EASE's lambda: a seeded sample above this


def ease_universe(snap: Snapshot, min_buyers: int = 2, max_items: int = 5000) -> np.ndarray:
    """Items EASE models: at least ``min_buyers`` buyers, at most ``max_items`` of the most bought."""
    cand = np.flatnonzero(snap.buyers_all >= min_buyers)
    if len(cand) > max_items:
        cand = np.sort(cand[np.argsort(-snap.buyers_all[cand], kind="stable")[:max_items]])
    return cand


def ease_scores(X_u: sp.csr_matrix, B: np.ndarray) -> np.ndarray:
    return np.asarray(X_u @ B)


def _ease_top_new(X_rows: sp.csr_matrix, B: np.ndarray, k: int) -> np.ndarray:
    """Top ``k`` EASE item positions per row among the items the row's customer never bought."""
    S = np.asarray(X_rows @ B)
    S[X_rows.toarray() > 0] = -np.inf
    return top_k_dense(S, k)[0]


def choose_ease_lambda(enc: Encoded, cutoff, horizon_days: int, lambdas=EASE_LAMBDAS, k: int = 10,
                       min_buyers: int = 2, max_items: int = 5000, lookback_days: int = YEAR_DAYS,
                       snap: Snapshot | None = None, chunk: int = 8192,
                       max_customers: int | None = EASE_LAMBDA_CUSTOMERS, jobs: int = 1) -> tuple[float, dict]:
    """The ``lam`` with the best mean NDCG@k of the ``discovery`` list at ``cutoff`` (ties: larger lam).

    Fit on interactions before ``cutoff``, scored on the items each customer with an order in the
    ``lookback_days`` before it bought in ``[cutoff, cutoff + H)`` and had never bought before. All of
    it lies before ``enc.as_of`` when ``cutoff + H <= as_of``. ``snap``: the snapshot at ``cutoff`` if
    already computed. The customers are scored ``chunk`` at a time (dense rows x items scores: at 1M
    customers, 300k rows x 1,000 items held at once took 5 GB); above ``max_customers`` such customers
    (None: no cap), a seeded random sample of that many (at 1M, 237k customers took 53 s for the five
    lambdas; a sample of 100k scored each lambda within 0.0003 of all of them). ``jobs`` > 1: that many
    lambdas are scored at once in threads (scipy's sparse products and numpy's partitions release the GIL);
    the scores do not depend on it. Returns (lam, {lam: ndcg}).
    """
    snap = Snapshot(enc, cutoff, horizon_days) if snap is None else snap
    uni = ease_universe(snap, min_buyers, max_items)
    n = enc.n_items
    # relevant: (customer, item) keys bought in the horizon, never before, by customers of the lookback
    labels = enc.labels(cutoff, horizon_days)
    known = snap.ci_key
    relevant = labels[~in_sorted(labels, known)]
    relevant = relevant[snap.cust_last_days[relevant // n] <= lookback_days]
    rel_c = relevant // n  # sorted (the keys are): customers and their counts without numpy's hashing unique
    first = run_starts(rel_c)
    rows, n_rel = rel_c[first], np.diff(np.r_[first, len(rel_c)])
    if max_customers is not None and len(rows) > max_customers:
        pick = np.sort(np.random.default_rng(0).choice(len(rows), size=int(max_customers), replace=False))
        rows, n_rel = rows[pick], n_rel[pick]
    if len(rows) == 0 or len(uni) < 2:
        return float(lambdas[len(lambdas) // 2]), {}
    X = snap.history_matrix("binary")
    G = snap.history_gram(uni, jobs)  # kept for the cutoff's item-item models
    Xr = X[rows][:, uni]
    gains = 1.0 / np.log2(np.arange(2, k + 2))
    ideal = np.r_[0.0, np.cumsum(gains)][np.minimum(n_rel, k)]

    def ndcg(lam: float) -> float:  # NDCG@k per customer (metrics.per_customer_metrics), averaged
        B = ease_weights(G, lam)
        top = np.concatenate([_ease_top_new(Xr[lo:lo + chunk], B, k) for lo in range(0, len(rows), chunk)])
        keys = rows[:, None] * n + uni[top]
        dcg = (in_sorted(keys, relevant) * gains[:top.shape[1]]).sum(axis=1)
        return float(np.mean(dcg / ideal))

    lambdas = [float(lam) for lam in lambdas]
    if jobs > 1 and len(lambdas) > 1:
        with ThreadPoolExecutor(max_workers=int(jobs), thread_name_prefix="ecrm-ease") as pool:
            scores = dict(zip(lambdas, pool.map(ndcg, lambdas)))
    else:
        scores = {lam: ndcg(lam) for lam in lambdas}
    best = max(scores, key=lambda lam: (round(scores[lam], 12), lam))
    return best, scores


class EASERecommender(BaseRecommender):
    """EASE over the items with at least ``min_buyers`` buyers; ``lam=None`` chooses it on ``as_of - H``."""

    name = "EASE"

    def __init__(self, lam: float | None = None, lambdas=EASE_LAMBDAS, min_buyers: int = 2,
                 max_items: int = 5000) -> None:
        self.lam = lam
        self.lambdas = lambdas
        self.min_buyers = min_buyers
        self.max_items = max_items

    def _fit_scores(self) -> None:
        if self.lam is None:
            earlier = self.as_of_ - pd.Timedelta(days=self.horizon_days)
            self.lam_, self.lambda_scores_ = choose_ease_lambda(
                self.enc_, earlier, self.horizon_days, self.lambdas, min_buyers=self.min_buyers,
                max_items=self.max_items)
        else:
            self.lam_, self.lambda_scores_ = float(self.lam), {}
        self.universe_ = ease_universe(self.snap_, self.min_buyers, self.max_items)
        X = self.snap_.history_matrix("binary")
        self._Xu = sp.csr_matrix(X[:, self.universe_])
        self.B_ = ease_weights(gram(self._Xu), self.lam_)

    def _scores(self, rows):
        S = np.full((len(rows), self.snap_.n_items), np.nan)
        S[:, self.universe_] = np.asarray(self._Xu[rows] @ self.B_)
        return S


# -- ALS (implicit) ----------------------------------------------------------------------------
def als_matrix(snap: Snapshot, universe: np.ndarray) -> sp.csr_matrix:
    """Customers x ``universe`` items: number of orders with the item before the snapshot's cutoff (float32)."""
    ci = snap.ci
    M = sp.csr_matrix((ci["n_orders"].to_numpy(dtype=np.float32), (ci["cust"].to_numpy(), ci["item"].to_numpy())),
                      shape=(snap.n_cust, snap.n_items), dtype=np.float32)
    return sp.csr_matrix(M[:, universe], dtype=np.float32)


def fit_als(M: sp.csr_matrix, factors: int, regularization: float, alpha: float, iterations: int = 15,
            seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(user factors, item factors) of ``implicit``'s CPU ALS on ``M`` (users x items), one thread, fixed seed."""
    from implicit.cpu.als import AlternatingLeastSquares

    with thread_limit(1):
        model = AlternatingLeastSquares(factors=int(factors), regularization=float(regularization),
                                        alpha=float(alpha), iterations=int(iterations), num_threads=1,
                                        random_state=int(seed))
        model.fit(sp.csr_matrix(M, dtype=np.float32), show_progress=False)
    return np.asarray(model.user_factors, dtype=np.float32), np.asarray(model.item_factors, dtype=np.float32)


def als_grid(grid: Mapping[str, tuple], **fixed) -> list[dict]:
    """The grid points (dicts of factors, regularization, alpha); a non-None ``fixed`` value replaces its axis."""
    axes = {name: ((fixed[name],) if fixed.get(name) is not None else tuple(grid[name]))
            for name in ("factors", "regularization", "alpha")}
    return [dict(zip(axes, values)) for values in itertools.product(*axes.values())]


def choose_als_params(enc: Encoded, cutoff, horizon_days: int, grid: Mapping[str, tuple] = ALS_GRID, k: int = 10,
                      min_buyers: int = 2, iterations: int = 15, seed: int = 0,
                      lookback_days: int = YEAR_DAYS) -> tuple[dict[str, dict], list[dict]]:
    """The ALS parameters with the best mean NDCG@k at ``cutoff``, per list (``all`` and ``discovery``).

    Each grid point is fitted on interactions before ``cutoff`` and scored, like the final model, on
    what each customer with an order in the ``lookback_days`` before it bought in ``[cutoff, cutoff + H)``
    (``all``) and, of that, never bought before (``discovery``; bought items are left out of the list).
    All of it lies before ``enc.as_of`` when ``cutoff + H <= as_of``. Ties go to the earlier grid point.
    Returns ({list: params}, [{**params, "all": ndcg, "discovery": ndcg}, ...]); without anything to
    score on, every list gets :data:`ALS_DEFAULT` restricted to the grid's axes.
    """
    points = als_grid(grid)
    snap = Snapshot(enc, cutoff, horizon_days)
    uni = ease_universe(snap, min_buyers, max_items=snap.n_items)
    X = snap.history_matrix("binary")
    eligible = np.flatnonzero(snap.cust_last_days <= lookback_days)
    labels = enc.labels(cutoff, horizon_days)
    lab_c, lab_i = labels // enc.n_items, labels % enc.n_items
    keep = in_sorted(lab_c, eligible)
    lab_c, lab_i = lab_c[keep], lab_i[keep]
    seen = np.asarray(X[lab_c, lab_i]).ravel() > 0 if len(lab_c) else np.zeros(0, dtype=bool)
    truth = {"all": pd.DataFrame({"customer_id": lab_c.astype(str), "product_id": lab_i.astype(str)})}
    truth["discovery"] = truth["all"][~seen]
    rows = np.unique(lab_c)
    if len(rows) == 0 or len(uni) < 2:
        default = {name: (ALS_DEFAULT[name] if ALS_DEFAULT[name] in tuple(grid[name]) else tuple(grid[name])[0])
                   for name in ("factors", "regularization", "alpha")}
        return {lst: dict(default) for lst in ALS_LISTS}, []
    M = als_matrix(snap, uni)
    fallback = -2.0 + popularity_tiebreak(snap)
    fallback[snap.buyers_all == 0] = -np.inf
    bought = X[rows].tocoo()
    table = []
    for params in points:
        U, V = fit_als(M, iterations=iterations, seed=seed, **params)
        S = np.tile(fallback, (len(rows), 1))
        S[:, uni] = U[rows] @ V.T
        row = dict(params)
        for lst in ALS_LISTS:
            if lst == "discovery":
                S[bought.row, bought.col] = -np.inf
            top, val = top_k_dense(S, k)
            ok = np.isfinite(val).ravel()
            recs = pd.DataFrame({"customer_id": np.repeat(rows, top.shape[1]).astype(str)[ok],
                                 "rank": np.tile(np.arange(1, top.shape[1] + 1), len(rows))[ok],
                                 "product_id": top.ravel()[ok].astype(str)})
            t = truth[lst]
            row[lst] = float(per_customer_metrics(recs, t, k)["ndcg"].mean()) if len(t) else float("nan")
        table.append(row)
    best = {}
    for lst in ALS_LISTS:
        vals = [r[lst] for r in table]
        if all(np.isnan(v) for v in vals):
            vals = [r["all"] for r in table]
        j = max(range(len(table)), key=lambda i: (round(vals[i], 12) if np.isfinite(vals[i]) else -np.inf, -i))
        best[lst] = {name: table[j][name] for name in ("factors", "regularization", "alpha")}
    return best, table


class ALSRecommender(BaseRecommender):
    """implicit ALS over the items with at least ``min_buyers`` buyers (confidence 1 + alpha * orders).

    ``factors``, ``regularization`` and ``alpha`` left None are chosen on ``as_of - H`` by
    :func:`choose_als_params` from ``grid``, separately for the ``all`` and ``discovery`` lists (one model
    is fitted per distinct choice). Single thread and a fixed ``seed``: the same data give the same lists.
    Items outside the universe and unknown customers fall back to popularity.
    """

    name = "ALS"

    def __init__(self, factors: int | None = None, regularization: float | None = None, alpha: float | None = None,
                 grid: Mapping[str, tuple] = ALS_GRID, iterations: int = 15, min_buyers: int = 2,
                 seed: int = 0) -> None:
        self.factors = factors
        self.regularization = regularization
        self.alpha = alpha
        self.grid = grid
        self.iterations = iterations
        self.min_buyers = min_buyers
        self.seed = seed

    def _fit_scores(self) -> None:
        points = als_grid(self.grid, factors=self.factors, regularization=self.regularization, alpha=self.alpha)
        if len(points) == 1:
            self.params_, self.param_scores_ = {lst: dict(points[0]) for lst in ALS_LISTS}, []
        else:
            earlier = self.as_of_ - pd.Timedelta(days=self.horizon_days)
            grid = {name: tuple(dict.fromkeys(p[name] for p in points)) for name in points[0]}
            self.params_, self.param_scores_ = choose_als_params(
                self.enc_, earlier, self.horizon_days, grid, min_buyers=self.min_buyers,
                iterations=self.iterations, seed=self.seed)
        self.universe_ = ease_universe(self.snap_, self.min_buyers, max_items=self.snap_.n_items)
        self.factors_: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        self._list = "all"
        if len(self.universe_) == 0:
            return
        M = als_matrix(self.snap_, self.universe_)
        fitted: dict[tuple, tuple[np.ndarray, np.ndarray]] = {}
        for lst in ALS_LISTS:
            key = tuple(sorted(self.params_[lst].items()))
            if key not in fitted:
                fitted[key] = fit_als(M, iterations=self.iterations, seed=self.seed, **self.params_[lst])
            self.factors_[lst] = fitted[key]

    def top_k(self, customer_ids, k: int = 10, exclude_purchased: bool = False, chunk: int = 1024) -> pd.DataFrame:
        self._list = "discovery" if exclude_purchased else "all"
        return super().top_k(customer_ids, k, exclude_purchased, chunk)

    def _scores(self, rows):
        S = np.full((len(rows), self.snap_.n_items), np.nan)
        if self.factors_:
            U, V = self.factors_[self._list]
            S[:, self.universe_] = U[rows] @ V.T
        return S


def baseline_models(knn: bool = True, als: bool = True) -> dict[str, BaseRecommender]:
    """The honest baselines, unfitted, by report name: popularity, own purchase history, EASE and
    (optionally) implicit ALS and item-kNN. EASE and ALS tune on ``as_of - H`` with data before ``as_of``."""
    models: dict[str, BaseRecommender] = {"popularity": PopularityRecommender(), "own history": OwnHistoryRecommender(),
                                          "EASE": EASERecommender()}
    if als:
        models["ALS"] = ALSRecommender()
    if knn:
        models["item-kNN"] = ItemKNNRecommender()
    return models
