"""Candidate generation and candidate features for the two-stage recommender.

At a cutoff (a :class:`~training.recommend.data.Snapshot`), each customer gets candidates from
several sources, each with a score and a rank within the source:

- ``own``: items the customer bought before (most orders first, ties by recency);
- ``together``: items bought in the same order as the customer's items (basket cosine), summed over
  the customer's items weighted by ``0.5 ** (days since bought / half-life)``;
- ``similar``: items bought by the same customers as the customer's items (customer cosine), weighted
  the same way;
- ``ease``: EASE scores;
- ``popular``, ``trending``, ``season``: the shop's most bought items over 90 days, recently (two-week
  half-life) and in the same window last year;
- ``category``: the most bought items in the customer's favourite categories (needs products);
- ``session``: items viewed or added to the cart in the last 30 days and not bought since (needs sessions).

Every (customer, candidate) gets the features of :func:`feature_names` (source scores and ranks, times
bought, days since last bought relative to the item's repurchase interval, item popularity, trend and
seasonality, price fit vs the customer's usual price, category affinity, session signals).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp

from training.recommend.data import Encoded, Snapshot, basket_matrix, run_starts, unique_ints
from training.recommend.similarity import (cosine_neighbours, cosine_neighbours_from_gram, ease_weights,
                                              top_k_dense, top_k_dense_rows, top_k_rows)

RANK_SOURCES = ("own", "together", "similar", "ease", "popular", "trending", "season", "category")

BASE_FEATURES = (
    # own history
    "bought", "n_orders", "order_share", "log_qty", "days_since_last", "days_since_first", "own_gap",
    "since_last_vs_interval", "since_last_vs_own_gap", "n_season", "n_recent", "rank_own",
    # collaborative sources
    "s_together", "rel_together", "rank_together", "s_similar", "rel_similar", "rank_similar",
    "s_ease", "rel_ease", "rank_ease",
    # item
    "log_buyers_recent", "log_buyers_pop", "log_buyers_year", "log_buyers_all", "season_share",
    "trend_ratio", "log_trend_score", "repeat_rate", "item_interval", "log_price", "item_age",
    "item_last_sold", "rank_popular", "rank_trending", "rank_season",
    # customer
    "cust_orders", "cust_last_days", "cust_first_days", "cust_items", "price_fit",
)
CATEGORY_FEATURES = ("cat_share", "cat_trend", "rank_category")
SESSION_FEATURES = ("views", "carts", "sess_last_days")


def feature_names(has_categories: bool, has_sessions: bool) -> list[str]:
    """Feature columns for a shop with or without a category column and sessions."""
    return (list(BASE_FEATURES) + (list(CATEGORY_FEATURES) if has_categories else [])
            + (list(SESSION_FEATURES) if has_sessions else []))


@dataclass
class CandidateConfig:
    """How many candidates each source contributes per customer, and the similarity settings."""

    n_own: int = 50
    n_together: int = 30
    n_similar: int = 30
    n_ease: int = 30
    n_popular: int = 10
    n_trending: int = 10
    n_season: int = 10
    n_category: int = 10
    top_categories: int = 3
    neighbours: int = 50
    min_cooccurrence: int = 2
    ease_min_buyers: int = 2
    ease_max_items: int = 5000
    half_life_days: float | None = None  # history weight half-life; None = the horizon


@dataclass
class CutoffModels:
    """Item-item models fitted at one cutoff."""

    together: sp.csr_matrix  # item x item, basket cosine, top neighbours per row
    similar: sp.csr_matrix  # item x item, customer cosine, top neighbours per row
    ease_items: np.ndarray  # item codes EASE covers
    ease_B: np.ndarray | None  # EASE weights over ease_items


def together_neighbours(enc: Encoded, cutoff, cfg: CandidateConfig, jobs: int = 1) -> sp.csr_matrix:
    """The ``together`` model at ``cutoff``: each item's basket-cosine neighbours over the orders before it."""
    return cosine_neighbours(basket_matrix(enc, cutoff), cfg.neighbours, cfg.min_cooccurrence, jobs=jobs)


def snapshot_and_together(enc: Encoded, cutoff, horizon_days: int, cfg: CandidateConfig
                          ) -> tuple[Snapshot, sp.csr_matrix]:
    """The :class:`Snapshot` at ``cutoff`` and :func:`together_neighbours`, the latter computed in a
    background thread meanwhile: both read only the encoded events, and scipy's sparse products and most
    of numpy's work run without the GIL, so the two share two cores. The order baskets and their cosine
    are held while the snapshot is built (an estimated few hundred MB at 1M customers; the recommender's
    peak, at the final cutoff, computes them in turn)."""
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="ecrm-together") as pool:
        together = pool.submit(together_neighbours, enc, cutoff, cfg)
        snap = Snapshot(enc, cutoff, horizon_days)
        return snap, together.result()


def fit_cutoff_models(snap: Snapshot, lam: float | None, cfg: CandidateConfig,
                      baskets: sp.csr_matrix | None = None, together: sp.csr_matrix | None = None,
                      jobs: int = 1) -> CutoffModels:
    """Neighbour matrices and EASE as of the snapshot's cutoff (``lam=None``: no EASE). ``baskets``:
    ``snap.basket_matrix()`` computed beforehand (the only part that reads the encoded events, which may
    then be released); ``together``: :func:`together_neighbours` computed beforehand (baskets unused).
    ``jobs``: threads for the co-occurrence counts (the models do not depend on it)."""
    if together is None:
        together = cosine_neighbours(snap.basket_matrix() if baskets is None else baskets, cfg.neighbours,
                                     cfg.min_cooccurrence, jobs=jobs)
    del baskets
    from training.recommend.baselines import ease_universe

    uni = ease_universe(snap, cfg.ease_min_buyers, cfg.ease_max_items)
    ease = lam is not None and len(uni) >= 2
    # the customer cosine from EASE's co-buyer counts when EASE covers every item that can have a neighbour
    # (bought by min_cooccurrence customers): one pass over the customers' histories instead of two
    from_gram = bool(np.isin(np.flatnonzero(snap.buyers_all >= cfg.min_cooccurrence), uni).all())
    G = snap.history_gram(uni, jobs) if ease or from_gram else None
    if from_gram:
        similar = cosine_neighbours_from_gram(G, uni, snap.n_items, cfg.neighbours, cfg.min_cooccurrence)
    else:
        similar = cosine_neighbours(snap.history_matrix("binary"), cfg.neighbours, cfg.min_cooccurrence, jobs=jobs)
    B = ease_weights(G, lam) if ease else None
    del G
    snap.release_history_gram()
    return CutoffModels(together, similar, uni, B)


# the item-item models' and EASE's features, computed per chunk of customers in CandidateBuilder.build
COLLAB_FEATURES = ("s_ease", "rel_ease", "rank_ease", "rank_together", "s_together", "rel_together",
                   "rank_similar", "s_similar", "rel_similar")
DENSE_ITEMS = 4096  # catalogs up to this many items score the neighbour models with dense matrices


def _lookup(keys: np.ndarray, values: np.ndarray, query: np.ndarray, fill=np.nan) -> np.ndarray:
    """values[keys == q] for each q (``keys`` sorted unique); ``fill`` where absent."""
    return _Match(keys, query).take(values, fill)


class _Match:
    """Where each of ``query`` is in the sorted unique ``keys`` (searched once), to gather several
    columns aligned with ``keys``: ``take(values)`` = :func:`_lookup` (``keys``, ``values``, ``query``).
    ``rows``: positions of ``keys`` in the columns (``values[rows[i]]`` belongs to ``keys[i]``)."""

    def __init__(self, keys: np.ndarray, query: np.ndarray, rows: np.ndarray | None = None) -> None:
        self.n = len(query)
        if len(keys) == 0:
            self.hit, self.at = np.zeros(self.n, dtype=bool), np.array([], dtype=np.int64)
            self.local = self.at
            return
        pos = np.searchsorted(keys, query).clip(max=len(keys) - 1)
        self.hit = keys[pos] == query
        self.local = pos[self.hit]
        self.at = self.local if rows is None else rows[self.local]

    def take(self, values: np.ndarray, fill=np.nan) -> np.ndarray:
        """Each query's value in ``values`` (a column ``rows`` point into), ``fill`` where absent."""
        out = np.full(self.n, fill, dtype=float)
        out[self.hit] = values[self.at]
        return out

    def take_aligned(self, values: np.ndarray, fill=np.nan) -> np.ndarray:
        """The same for ``values`` aligned with ``keys``."""
        out = np.full(self.n, fill, dtype=float)
        out[self.hit] = values[self.local]
        return out


class _NeighbourScores:
    """A neighbour model's scores ``W[r] @ S`` for a chunk of customers ``r`` (sorted): each customer's
    ``top`` items (``top_keys``, sorted by customer, then score descending, ties by item) and, through
    :meth:`features`, any (customer, item)'s score, relative score and rank among the top. With ``dense``
    (``S`` as a dense array, small catalogs) the scores are a dense chunk read by position; otherwise a
    sparse product searched by key. Both give the same numbers."""

    def __init__(self, Wr: sp.csr_matrix, S: sp.csr_matrix, dense: np.ndarray | None, r: np.ndarray, top: int
                 ) -> None:
        n = S.shape[1]
        self.n = n
        if dense is not None:
            D = np.asarray(Wr @ dense)
            row, col, val = top_k_dense_rows(D, top)
            self.rowmax = D.max(axis=1) if n else np.zeros(len(r))
            self.D, self.p_keys = D, None
        else:
            P = sp.csr_matrix(Wr @ S)
            P.sort_indices()
            row, col, val = top_k_rows(P, top)
            self.rowmax = np.zeros(len(r))
            nz = np.flatnonzero(np.diff(P.indptr) > 0)
            if len(nz):
                self.rowmax[nz] = np.maximum.reduceat(P.data, P.indptr[nz])
            prow = np.repeat(np.arange(len(r), dtype=np.int64), np.diff(P.indptr))
            self.D, self.p_keys, self.p_vals = None, prow * n + P.indices, P.data
        self.top_keys = r[row].astype(np.int64) * n + col
        start = run_starts(row)
        self.top_rank = (np.arange(len(row)) - np.repeat(start, np.diff(np.r_[start, len(row)])) + 1).astype(float)

    def features(self, keys: np.ndarray, local: np.ndarray, items: np.ndarray
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(score, score / the customer's largest, rank among the customer's top) of the chunk's sorted
        ``keys`` (customer positions in the chunk ``local``, items ``items``): 0, 0 and NaN where none."""
        if self.D is not None:
            s = self.D[local, items]
        else:
            s = _lookup(self.p_keys, self.p_vals, local.astype(np.int64) * self.n + items, 0.0)
        mx = self.rowmax[local]
        rel = np.where(mx > 0, s / np.where(mx > 0, mx, 1.0), 0.0)
        order = np.argsort(self.top_keys)
        rank = _lookup(self.top_keys[order], self.top_rank[order], keys)
        return s, rel, rank


def _rows_of(ptr: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Positions in a table sorted by customer of the rows of customers ``rows``, in that order, given the
    table's per-customer start positions ``ptr`` (length customers + 1, as a CSR ``indptr``). For sorted
    unique ``rows``: ``np.flatnonzero(np.isin(table_customers, rows))`` without reading the whole table."""
    lo, hi = ptr[rows], ptr[rows + 1]
    counts = hi - lo
    total = int(counts.sum())
    if total == 0:
        return np.array([], dtype=np.int64)
    return np.repeat(lo - np.r_[0, np.cumsum(counts)[:-1]], counts) + np.arange(total)


def _rank_within(group: np.ndarray, score: np.ndarray, tie: np.ndarray | None = None) -> np.ndarray:
    """1-based rank of ``score`` (descending) within ``group``; ties by ``tie`` ascending."""
    tie = np.zeros(len(score)) if tie is None else tie
    order = np.lexsort((tie, -score, group))
    g = group[order]
    start = np.r_[0, np.flatnonzero(np.diff(g)) + 1]
    rank = np.empty(len(g), dtype=float)
    rank[order] = np.arange(len(g)) - np.repeat(start, np.diff(np.r_[start, len(g)])) + 1
    return rank


def _global_top(score: np.ndarray, n: int, eligible: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Top ``n`` item codes by ``score`` among ``eligible`` items (ties by code) and their ranks."""
    idx = np.flatnonzero(eligible & np.isfinite(score) & (score > 0))
    idx = idx[np.lexsort((idx, -score[idx]))][:n]
    return idx, np.arange(1, len(idx) + 1, dtype=float)


class CandidateBuilder:
    """Builds candidates and their features for customers (row codes) at one cutoff."""

    def __init__(self, snap: Snapshot, models: CutoffModels, cfg: CandidateConfig) -> None:
        self.snap, self.models, self.cfg = snap, models, cfg
        n = snap.n_items
        self.half_life = float(cfg.half_life_days or snap.horizon_days)
        self.W = snap.history_matrix("decay", self.half_life)
        self.W.sort_indices()  # a customer's items ascending (together_contributor's ties)
        # small catalogs: the neighbour models as dense arrays (W[r] @ dense: a dense chunk of scores)
        self._dense = ({name: getattr(models, name).toarray() for name in ("together", "similar")}
                       if n <= DENSE_ITEMS else {})
        self._contrib_cache: tuple | None = None  # together_contributor's sorted neighbours, on first use
        sold = snap.buyers_all > 0
        self.available = sold
        self.pop_items, self.pop_rank = _global_top(snap.buyers_pop, cfg.n_popular, sold)
        self.trend_items, self.trend_rank = _global_top(snap.trend_score, cfg.n_trending, sold)
        if snap.season_known:
            self.season_items, self.season_rank = _global_top(snap.buyers_season, cfg.n_season, sold)
        else:
            self.season_items, self.season_rank = np.array([], dtype=np.int64), np.array([])
        self.rank_popular_all = np.full(n, np.nan)
        self.rank_popular_all[self.pop_items] = self.pop_rank
        self.rank_trending_all = np.full(n, np.nan)
        self.rank_trending_all[self.trend_items] = self.trend_rank
        self.rank_season_all = np.full(n, np.nan)
        self.rank_season_all[self.season_items] = self.season_rank
        if snap.has_categories:
            icat = snap.enc.item_cat
            ok = np.flatnonzero((icat >= 0) & sold)
            # category rank: by 90-day buyers, then all-time buyers, within the category
            r = _rank_within(icat[ok], snap.buyers_pop[ok] + 1e-6 * np.log1p(snap.buyers_all[ok]), ok.astype(float))
            self.cat_rank_all = np.full(n, np.nan)
            self.cat_rank_all[ok] = r
        ci = snap.ci
        # a chunk of customers reads only its rows of the customer-item and session tables (both sorted
        # by key = customer x items + item): per-customer start positions
        starts = np.arange(snap.n_cust + 1, dtype=np.int64) * n
        self.ci_ptr = np.searchsorted(snap.ci_key, starts)
        # the columns as they are (int32 counts are gathered into float features per chunk): no copies of
        # the whole table, and a customer's own-item ranks are computed per chunk (ranks within a customer)
        self.ci_cols = {c: ci[c].to_numpy() for c in
                        ("cust", "n_orders", "qty", "last_days", "first_days", "own_gap", "n_season", "n_recent")}
        self.sess_ptr = np.searchsorted(snap.sess_key, starts) if snap.has_sessions else None
        self.sess_cols = ({c: snap.sess[c].to_numpy() for c in ("views", "carts", "last_days")}
                          if snap.has_sessions else None)  # (as they are: gathered into floats per chunk)

    def _own_rank(self, at: np.ndarray) -> np.ndarray:
        """1-based rank of the customer-item rows ``at`` (all rows of their customers, as from
        :func:`_rows_of`) within their customer: most orders first, then most recent."""
        c = self.ci_cols
        return _rank_within(c["cust"][at], c["n_orders"][at].astype(float), c["last_days"][at])

    # -- sources ---------------------------------------------------------------------------------
    def _pairs(self, rows: np.ndarray, own_at: np.ndarray, own_rank: np.ndarray) -> dict[str, tuple]:
        """Keys (and scores) of the sources other than the item-item models for customer codes ``rows``
        (sorted); nothing about a chunk is kept on the builder. ``own_at``: the customers' rows of the
        customer-item table (:func:`_rows_of`), ``own_rank``: their :meth:`_own_rank`."""
        snap, cfg, n = self.snap, self.cfg, self.snap.n_items
        out: dict[str, tuple] = {}
        keep = own_rank <= cfg.n_own
        out["own"] = (snap.ci_key[own_at[keep]], own_rank[keep])
        rr = rows.astype(np.int64)[:, None] * n
        glob = [self.pop_items, self.trend_items, self.season_items]
        for name, items in zip(("popular", "trending", "season"), glob):
            out[name] = ((rr + items[None, :]).ravel(), np.zeros(len(rows) * len(items)))
        if snap.has_categories and cfg.n_category > 0:
            share = snap.cust_cat_share[rows].tocoo()
            # the customer's top categories
            rk = _rank_within(share.row, share.data, share.col.astype(float))
            keep = rk <= cfg.top_categories
            cr, cc = share.row[keep], share.col[keep]
            icat = snap.enc.item_cat
            ok = np.flatnonzero((icat >= 0) & (self.cat_rank_all <= cfg.n_category))
            by_cat = pd.Series(ok).groupby(icat[ok]).apply(np.asarray).to_dict()
            ks = [rows[r].astype(np.int64) * n + by_cat[cat] for r, cat in zip(cr, cc) if cat in by_cat]
            out["category"] = (np.concatenate(ks) if ks else np.array([], dtype=np.int64), None)
        if snap.has_sessions and len(snap.sess_key):
            out["session"] = (snap.sess_key[_rows_of(self.sess_ptr, rows)], None)
        return out

    def _neighbour_scores(self, r: np.ndarray, name: str) -> "_NeighbourScores":
        """The ``together`` or ``similar`` scores of customers ``r`` (sorted): every item's, their top
        ``n_together`` / ``n_similar`` and the customers' largest."""
        S = getattr(self.models, name)
        top = self.cfg.n_together if name == "together" else self.cfg.n_similar
        return _NeighbourScores(self.W[r], S, self._dense.get(name), r, top)

    def build(self, rows: np.ndarray, chunk: int = 1024) -> pd.DataFrame:
        """Candidates with features for customer codes ``rows``: columns cust, item, key + features."""
        rows = unique_ints(np.asarray(rows, dtype=np.int64))
        snap, cfg, n = self.snap, self.cfg, self.snap.n_items
        if len(rows) == 0:
            return pd.DataFrame(columns=["cust", "item", "key"])
        at = _rows_of(self.ci_ptr, rows)  # the customers' own-history rows, and their ranks
        own_rank = self._own_rank(at)
        src = self._pairs(rows, at, own_rank)
        base_keys = unique_ints(np.concatenate([k for k, _ in src.values()]))
        # per chunk of customers: the item-item models' and EASE's scores of every item; their top items
        # join the candidates, their scores are gathered for all
        models = self.models
        parts: dict[str, list] = {c: [] for c in ("key", *COLLAB_FEATURES)}
        upos = np.full(n, -1, dtype=np.int64)
        upos[models.ease_items] = np.arange(len(models.ease_items))
        X = snap.history_matrix("binary")
        for lo in range(0, len(rows), chunk):
            r = rows[lo:lo + chunk]
            a, b = np.searchsorted(base_keys, [r[0] * n, (r[-1] + 1) * n])
            nb = {name: self._neighbour_scores(r, name) for name in ("together", "similar")}
            new_keys = [base_keys[a:b], nb["together"].top_keys, nb["similar"].top_keys]
            if models.ease_B is not None:
                E = np.asarray(X[r][:, models.ease_items] @ models.ease_B)
                top, val = top_k_dense(E, cfg.n_ease)
                ek = (r[:, None] * n + models.ease_items[top]).ravel()
                new_keys.append(ek)
            keys = unique_ints(np.concatenate(new_keys))
            local = np.searchsorted(r, keys // n)
            items = keys % n
            if models.ease_B is not None:
                u = upos[items]
                ev = np.full(len(keys), np.nan)
                ok = u >= 0
                ev[ok] = E[local[ok], u[ok]]
                rowmax = E.max(axis=1)
                rel = ev / np.where(rowmax[local] > 0, rowmax[local], np.nan)
                eo = np.argsort(ek)
                ranks = np.tile(np.arange(1, top.shape[1] + 1, dtype=float), len(r))
                erank = _lookup(ek[eo], ranks[eo], keys)
            else:
                ev = rel = erank = np.full(len(keys), np.nan)
            parts["key"].append(keys)
            parts["s_ease"].append(ev)
            parts["rel_ease"].append(rel)
            parts["rank_ease"].append(erank)
            for name, sc in nb.items():
                s_, rel_, rank_ = sc.features(keys, local, items)
                parts[f"s_{name}"].append(s_)
                parts[f"rel_{name}"].append(rel_)
                parts[f"rank_{name}"].append(rank_)
            del nb
        key = np.concatenate(parts.pop("key"))
        cust, item = key // n, key % n
        f: dict[str, np.ndarray] = {"cust": cust, "item": item, "key": key}
        f.update({c: np.concatenate(parts.pop(c)) for c in ("s_ease", "rel_ease", "rank_ease")})
        # own history: the customer-item rows of these customers only
        own_rows = _Match(snap.ci_key[at], key, rows=at)  # one search for every own-history column
        own = lambda col, fill=np.nan: own_rows.take(self.ci_cols[col], fill)  # noqa: E731
        n_orders = own("n_orders", 0.0)
        f["bought"] = (n_orders > 0).astype(float)
        f["n_orders"] = n_orders
        f["order_share"] = n_orders / np.maximum(snap.cust_orders[cust], 1.0)
        f["log_qty"] = np.log1p(np.maximum(own("qty", 0.0), 0.0))
        last = own("last_days")
        f["days_since_last"] = last
        f["days_since_first"] = own("first_days")
        own_gap = own("own_gap")
        f["own_gap"] = own_gap
        interval = np.where(np.isnan(snap.item_interval), snap.global_interval, snap.item_interval)
        f["since_last_vs_interval"] = last / np.maximum(interval[item], 1.0)
        f["since_last_vs_own_gap"] = last / np.maximum(own_gap, 1.0)
        f["n_season"] = own("n_season", 0.0) if snap.season_known else np.full(len(key), np.nan)
        f["n_recent"] = own("n_recent", 0.0)
        f["rank_own"] = own_rows.take_aligned(own_rank)
        f.update({c: np.concatenate(parts.pop(c)) for c in COLLAB_FEATURES[3:]})
        # item
        f["log_buyers_recent"] = np.log1p(snap.buyers_recent[item])
        f["log_buyers_pop"] = np.log1p(snap.buyers_pop[item])
        f["log_buyers_year"] = np.log1p(snap.buyers_year[item])
        f["log_buyers_all"] = np.log1p(snap.buyers_all[item])
        f["season_share"] = snap.buyers_season[item] / np.maximum(snap.buyers_year[item], 1.0)
        f["trend_ratio"] = snap.trend_ratio[item]
        f["log_trend_score"] = np.log1p(snap.trend_score[item])
        f["repeat_rate"] = snap.repeat_rate[item]
        f["item_interval"] = snap.item_interval[item]
        f["log_price"] = np.log(np.maximum(snap.item_price[item], 1e-6))
        f["item_age"] = snap.item_first_days[item]
        f["item_last_sold"] = snap.item_last_days[item]
        f["rank_popular"] = self.rank_popular_all[item]
        f["rank_trending"] = self.rank_trending_all[item]
        f["rank_season"] = self.rank_season_all[item]
        # customer
        f["cust_orders"] = snap.cust_orders[cust]
        f["cust_last_days"] = snap.cust_last_days[cust]
        f["cust_first_days"] = snap.cust_first_days[cust]
        f["cust_items"] = snap.cust_items[cust]
        f["price_fit"] = f["log_price"] - snap.cust_log_price[cust]
        if snap.has_categories:
            icat = snap.enc.item_cat[item]
            ok = icat >= 0
            share = np.full(len(key), np.nan)
            if ok.any():
                share[ok] = np.asarray(snap.cust_cat_share[cust[ok], icat[ok]]).ravel()
            f["cat_share"] = share
            f["cat_trend"] = np.where(ok, snap.cat_trend[np.maximum(icat, 0)], np.nan)
            f["rank_category"] = self.cat_rank_all[item]
        if snap.has_sessions:
            at = _rows_of(self.sess_ptr, rows)
            sess_rows = _Match(snap.sess_key[at], key, rows=at)
            s = self.sess_cols
            f["views"] = sess_rows.take(s["views"], 0.0)
            f["carts"] = sess_rows.take(s["carts"], 0.0)
            f["sess_last_days"] = sess_rows.take(s["last_days"])
        # the features as one float32 block, written column by column (a frame of float64 columns cast one
        # by one copied each column twice: 15 % of the building time)
        names = list(f)[3:]
        M = np.empty((len(key), len(names)), dtype=np.float32, order="F")
        for j, name in enumerate(names):
            M[:, j] = f.pop(name)
        df = pd.DataFrame(M, columns=names, copy=False)
        for name in ("key", "item", "cust"):
            df.insert(0, name, f.pop(name))
        return df

    # -- reasons ---------------------------------------------------------------------------------
    def together_contributor(self, cust: np.ndarray, item: np.ndarray) -> np.ndarray:
        """For each pair, the customer's item contributing most to its ``together`` score (-1 if none).

        The contribution of the customer's item ``h`` is ``W[c, h] * together[h, item]``; ties go to the
        lower ``h``. Expanded over the customer's own items (a few dozen each) rather than over every item
        listing ``item`` as a neighbour (thousands for popular items).
        """
        out = np.full(len(cust), -1, dtype=np.int64)
        if len(cust) == 0:
            return out
        if self._contrib_cache is None and "together" not in self._dense:  # the same for every call
            S = sp.csr_matrix(self.models.together, copy=True)
            S.sort_indices()
            s_keys = np.repeat(np.arange(S.shape[0], dtype=np.int64), np.diff(S.indptr)) * S.shape[1] + S.indices
            self._contrib_cache = (S, s_keys)
        S, s_keys = self._contrib_cache or (None, None)
        W = self.W
        n = self.snap.n_items
        cust = np.asarray(cust, dtype=np.int64)
        item = np.asarray(item, dtype=np.int64)
        counts = np.diff(W.indptr)[cust]
        pos = _rows_of(W.indptr, cust)  # each pair's customer's items
        if len(pos) == 0:
            return out
        pair = np.repeat(np.arange(len(cust)), counts)
        h = W.indices[pos].astype(np.int64)
        dense = self._dense.get("together")
        s = dense[h, item[pair]] if dense is not None else _lookup(s_keys, S.data, h * n + item[pair], 0.0)
        ok = s > 0
        pair, h, contrib = pair[ok], h[ok], W.data[pos[ok]] * s[ok]
        ok = contrib > 0
        pair, h, contrib = pair[ok], h[ok], contrib[ok]
        if len(pair) == 0:
            return out
        # pairs are contiguous and, within a pair, the customer's items ascending: the first item with
        # the pair's largest contribution wins (no sort)
        start = run_starts(pair)
        best = np.repeat(np.maximum.reduceat(contrib, start), np.diff(np.r_[start, len(pair)]))
        top = np.flatnonzero(contrib == best)
        top = top[np.r_[True, pair[top[1:]] != pair[top[:-1]]]]
        out[pair[top]] = h[top]
        return out
