"""Interactions and point-in-time statistics for the recommender.

An **interaction** is a sale line (not a return or cancellation) with a known customer and a known
product. Everything is computed *as of* a cutoff ``t``: only events strictly before ``t`` are used.

:class:`Encoded` turns the canonical tables into integer arrays once (customers, products, categories,
orders and session events before the fit's ``as_of``); :class:`Snapshot` holds the statistics as of one
cutoff (customer x item history, item popularity, trend and repurchase interval, customer price level
and category shares, session signals) computed from those arrays by masking on time, so several
training cutoffs share one encoding.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.sparse as sp

from training.recommend.similarity import gram

DAY_US = 86_400 * 1_000_000  # microseconds in a day
YEAR_DAYS = 365
RECENT_DAYS = 30  # "recent" window for trends and session signals
POPULAR_DAYS = 90  # the popularity window


def as_utc(ts) -> pd.Timestamp:
    """A timestamp in UTC (naive input is taken as UTC)."""
    ts = pd.Timestamp(ts)
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


def _interaction_mask(orders: pd.DataFrame, as_of=None, start=None) -> np.ndarray:
    """Which rows of ``orders`` are sale lines with a customer and a product ordered in ``[start, as_of)``."""
    keep = ~orders["is_return"].astype(bool) & orders["customer_id"].notna() & orders["product_id"].notna()
    if as_of is not None:
        keep &= orders["ordered_at"] < as_utc(as_of)
    if start is not None:
        keep &= orders["ordered_at"] >= as_utc(start)
    return keep.to_numpy(dtype=bool)


def interactions(orders: pd.DataFrame, as_of=None, start=None) -> pd.DataFrame:
    """Sale lines with a customer and a product, ordered in ``[start, as_of)`` (bounds optional).

    Columns: customer_id, product_id, order_id, ordered_at, quantity, unit_price (as in the orders table).
    """
    cols = ["customer_id", "product_id", "order_id", "ordered_at", "quantity", "unit_price"]
    return orders.loc[_interaction_mask(orders, as_of, start), cols].reset_index(drop=True)


def holdout_items(orders: pd.DataFrame, cutoff, horizon_days: int = 90, customers=None) -> pd.DataFrame:
    """Distinct (customer_id, product_id) bought in ``[cutoff, cutoff + horizon)`` (optionally only ``customers``)."""
    cutoff = as_utc(cutoff)
    lines = interactions(orders, cutoff + pd.Timedelta(days=horizon_days), start=cutoff)
    out = lines[["customer_id", "product_id"]].drop_duplicates()
    if customers is not None:
        out = out[out["customer_id"].isin(pd.Index(customers).astype(str))]
    return out.astype({"customer_id": "string", "product_id": "string"}).reset_index(drop=True)


def unique_ints(a: np.ndarray) -> np.ndarray:
    """Sorted unique values of an integer array (``np.unique`` by a sort: numpy 2.3+'s hash-based
    ``np.unique`` was 10-50x slower on the candidate keys)."""
    a = np.sort(np.asarray(a).ravel())
    if len(a) < 2:
        return a
    return a[np.r_[True, a[1:] != a[:-1]]]


def in_sorted(values: np.ndarray, sorted_unique: np.ndarray) -> np.ndarray:
    """``np.isin(values, sorted_unique)`` for a sorted array of unique values, by binary search: numpy 2.3+'s
    ``np.isin`` hashes both arrays on every call (a 4,096-customer chunk against 3M label keys: 3 s)."""
    values = np.asarray(values)
    if len(sorted_unique) == 0:
        return np.zeros(values.shape, dtype=bool)
    pos = np.searchsorted(sorted_unique, values).clip(max=len(sorted_unique) - 1)
    return sorted_unique[pos] == values


def _codes(ids: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Position of each of ``values`` in the sorted unique ``ids`` (-1 where absent), by hashing: a
    ``searchsorted`` on object strings compares strings and was the slowest step of the encoding."""
    return pd.Index(ids).get_indexer(values)


def _id_codes(values: pd.Series, ids: np.ndarray) -> np.ndarray:
    """:func:`_codes` of a column's values as strings. A categorical column (the compact tables of
    :func:`training.recommend_pipeline.recommender_inputs`) is mapped once per category, not per row."""
    if isinstance(values.dtype, pd.CategoricalDtype):
        pos = np.append(_codes(ids, values.cat.categories.astype(str).to_numpy()), -1)  # code -1 (missing) -> -1
        return pos[values.cat.codes.to_numpy()]
    return _codes(ids, values.astype(str).to_numpy())


def _id_values(values: pd.Series) -> set:
    """The distinct values of an id column, as strings (only the categories that occur, if categorical)."""
    if isinstance(values.dtype, pd.CategoricalDtype):
        codes = unique_ints(values.cat.codes.to_numpy())
        return set(values.cat.categories.astype(str).to_numpy()[codes[codes >= 0]])
    return set(values.astype(str).to_numpy())


def _order_codes(values: pd.Series) -> np.ndarray:
    """Order codes 0..n-1 in order of first appearance (integer or categorical order ids are factorized
    as they are: the same codes as their strings, without building the strings)."""
    if isinstance(values.dtype, pd.CategoricalDtype):
        return pd.factorize(values.cat.codes.to_numpy())[0].astype(np.int64)
    if pd.api.types.is_integer_dtype(values.dtype):
        return pd.factorize(values.to_numpy())[0].astype(np.int64)
    return pd.factorize(values.astype(str))[0].astype(np.int64)


def _ts_us(ts) -> int:
    return int(as_utc(ts).value // 1000)


def _to_us(values: pd.Series) -> np.ndarray:
    return values.dt.tz_convert("UTC").astype("datetime64[us, UTC]").to_numpy(dtype="datetime64[us]").astype(np.int64)


class Encoded:
    """The canonical tables before ``as_of`` as integer arrays (built once per fit).

    Attributes: ``item_ids`` / ``cust_ids`` (sorted id arrays; items are every product with an
    interaction or a row in ``products``), per interaction line ``cust``, ``item``, ``order``, ``t``
    (microseconds), ``qty``, ``price``; ``item_cat`` (category code, -1 unknown), ``cat_names``,
    ``item_name``; session events ``s_cust``, ``s_item``, ``s_t``, ``s_cart`` (add_to_cart vs view)
    of known customers on known products. ``data_start`` is the first interaction time.
    """

    def __init__(self, orders: pd.DataFrame, products: pd.DataFrame | None = None,
                 sessions: pd.DataFrame | None = None, as_of=None) -> None:
        self.as_of = as_utc(as_of)
        # the interaction lines in time order (stable), gathered one column at a time: no copy of the table
        rows = np.flatnonzero(_interaction_mask(orders, self.as_of))
        if len(rows) == 0:
            raise ValueError(f"no sale lines with a customer and a product before {self.as_of}: nothing to recommend from")
        t = _to_us(orders["ordered_at"].iloc[rows])
        in_time = np.argsort(t, kind="stable")
        rows, self.t = rows[in_time], t[in_time]
        del t, in_time
        col = lambda name: orders[name].iloc[rows].reset_index(drop=True)  # noqa: E731
        has_products = products is not None and len(products) > 0
        catalog = products["product_id"].astype(str).to_numpy() if has_products else np.array([], dtype=object)
        values = col("product_id")
        self.item_ids = np.array(sorted(_id_values(values) | set(catalog)), dtype=object)
        self.item_index = {p: i for i, p in enumerate(self.item_ids)}
        self.item = _id_codes(values, self.item_ids).astype(np.int32)
        values = col("customer_id")
        self.cust_ids = np.array(sorted(_id_values(values)), dtype=object)
        self.cust = _id_codes(values, self.cust_ids).astype(np.int32)
        self.order = _order_codes(col("order_id"))
        del values
        self.qty = orders["quantity"].to_numpy(dtype=float)[rows]
        self.price = orders["unit_price"].to_numpy(dtype=float)[rows]
        del rows
        self.data_start = int(self.t.min())
        n = len(self.item_ids)
        self.item_cat = np.full(n, -1, dtype=np.int32)
        self.item_name = np.array(self.item_ids, dtype=object)
        self.cat_names = np.array([], dtype=object)
        self.has_categories = False
        self.catalog_price = np.full(n, np.nan)
        if has_products:
            idx = _codes(self.item_ids, catalog)
            names = products["name"].astype("string") if "name" in products else pd.Series(pd.NA, index=products.index)
            named = names.notna().to_numpy()
            self.item_name[idx[named]] = names[named].astype(str).to_numpy()
            if "unit_price" in products:
                self.catalog_price[idx] = pd.to_numeric(products["unit_price"], errors="coerce").to_numpy(dtype=float)
            if "category" in products and products["category"].notna().any():
                codes, uniques = pd.factorize(products["category"].astype("string"), sort=True)
                self.item_cat[idx] = codes.astype(np.int32)
                self.cat_names = np.array([str(u) for u in uniques], dtype=object)
                self.has_categories = len(self.cat_names) > 0
        self.has_sessions = False
        self.s_cust = self.s_item = self.s_t = np.array([], dtype=np.int64)
        self.s_cart = np.array([], dtype=bool)
        if sessions is not None and len(sessions):
            ev = np.flatnonzero(sessions["event_type"].isin(["view", "add_to_cart"]).to_numpy(dtype=bool)
                                & sessions["customer_id"].notna().to_numpy(dtype=bool)
                                & sessions["product_id"].notna().to_numpy(dtype=bool)
                                & (sessions["occurred_at"] < self.as_of).to_numpy(dtype=bool))
            scol = lambda name: sessions[name].iloc[ev].reset_index(drop=True)  # noqa: E731
            ci, ii = _id_codes(scol("customer_id"), self.cust_ids), _id_codes(scol("product_id"), self.item_ids)
            known = (ci >= 0) & (ii >= 0)
            self.s_cust, self.s_item = ci[known].astype(np.int32), ii[known].astype(np.int32)
            del ci, ii
            self.s_t = _to_us(scol("occurred_at"))[known]
            self.s_cart = (scol("event_type") == "add_to_cart").to_numpy(dtype=bool)[known]
            self.has_sessions = len(self.s_t) > 0

    events_released = False
    _by_key_order: np.ndarray | None = None  # lines_by_key_order over all lines, computed on first use

    def lines_by_key_order(self, k: int) -> np.ndarray:
        """Positions of the first ``k`` lines (those before a cutoff) sorted by customer-item key, then
        order code (lines equal in both in any order). All lines are sorted once, at the first call, and
        each cutoff filters them: a snapshot needs no sort of its own (about 3 s at 32M lines). The sort
        is let go when all lines are asked for (a fit's last snapshot), so it adds nothing to that peak."""
        if self._by_key_order is None:
            srt = _group_sort(self.cust.astype(np.int64) * self.n_items + self.item, self.order)
            self._by_key_order = srt.astype(np.int32) if len(srt) < 2 ** 31 else srt
        srt = self._by_key_order
        if k >= len(srt):
            self._by_key_order = None
            return srt
        return srt[srt < k]

    def release_events(self) -> None:
        """Drop the interaction lines and session events (the ids, names, categories and prices stay):
        what a fit does once its last snapshot is computed, 2 GB at 1M customers. No snapshot can be
        computed afterwards."""
        self.cust = self.item = self.s_cust = self.s_item = np.array([], dtype=np.int32)
        self.order = self.t = self.s_t = np.array([], dtype=np.int64)
        self.qty = self.price = np.array([], dtype=float)
        self.s_cart = np.array([], dtype=bool)
        self._by_key_order = None
        self.events_released = True

    @property
    def n_items(self) -> int:
        return len(self.item_ids)

    @property
    def n_cust(self) -> int:
        return len(self.cust_ids)

    def labels(self, cutoff, horizon_days: int) -> np.ndarray:
        """Sorted unique keys ``cust * n_items + item`` bought in ``[cutoff, cutoff + horizon)``."""
        lo = _ts_us(cutoff)
        hi = lo + int(horizon_days) * DAY_US
        m = (self.t >= lo) & (self.t < hi)
        return unique_ints(self.cust[m].astype(np.int64) * self.n_items + self.item[m])


def _group_median(groups: np.ndarray, values: np.ndarray, n: int) -> np.ndarray:
    """Median of ``values`` per group code in ``range(n)`` (NaN for empty groups)."""
    out = np.full(n, np.nan)
    if len(values):
        s = pd.Series(values).groupby(groups).median()
        out[s.index.to_numpy()] = s.to_numpy()
    return out


def run_starts(*sorted_cols: np.ndarray) -> np.ndarray:
    """Start positions of the runs of equal rows in columns sorted together (one or more arrays)."""
    n = len(sorted_cols[0])
    if n == 0:
        return np.array([], dtype=np.int64)
    change = np.zeros(n, dtype=bool)
    change[0] = True
    for col in sorted_cols:
        change[1:] |= col[1:] != col[:-1]
    return np.flatnonzero(change)


def _group_sort(major: np.ndarray, minor: np.ndarray) -> np.ndarray:
    """Positions that sort rows by (``major``, ``minor``), both non-negative integers; rows equal in both
    come in any order. One quicksort of a combined 64-bit key where it fits (3-4x faster than a lexsort
    at tens of millions of rows)."""
    if len(major) == 0:
        return np.array([], dtype=np.int64)
    span = int(minor.max()) + 1
    if (int(major.max()) + 1) * span < 2 ** 62:
        combined = major.astype(np.int64) * span
        combined += minor
        return np.argsort(combined)
    return np.lexsort((minor, major))


def _order_items(key: np.ndarray, order: np.ndarray, days: np.ndarray, cust: np.ndarray, item: np.ndarray,
                 qty: np.ndarray, srt: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """One row per (customer-item ``key``, order) from sale lines: ``days`` (latest line), ``qty`` (sum),
    ``cust``, ``item``, ``min_days`` (the days of its line nearest the cutoff); ordered by key, then days
    descending, then first appearance in the lines.
    Sorting instead of hashing: pandas' group-by of 32M lines (1M customers) took minutes. ``srt``: the
    lines' positions sorted by (key, order) if known (:meth:`Encoded.lines_by_key_order`)."""
    if srt is None:
        srt = _group_sort(key, order)
    ks = key[srt]
    start = run_starts(ks, order[srt])
    if len(start) == 0:
        return {"key": key[:0], "days": days[:0], "cust": cust[:0], "item": item[:0], "qty": qty[:0],
                "min_days": days[:0]}
    g_key = ks[start]
    del ks  # (temporaries freed as soon as possible: 32M lines take 256 MB per column)
    first = np.minimum.reduceat(srt, start)  # each group's first line
    sorted_days = days[srt]
    g_days = np.maximum.reduceat(sorted_days, start)
    g_min = np.minimum.reduceat(sorted_days, start)
    del sorted_days
    g_qty = np.add.reduceat(qty[srt], start)
    del srt, start
    # usually already in order (an order's lines share a time, order codes follow time): checked, else sorted
    same = g_key[1:] == g_key[:-1]
    later = (g_days[1:] < g_days[:-1]) | ((g_days[1:] == g_days[:-1]) & (first[1:] > first[:-1]))
    if not np.all(~same | later):
        o = np.lexsort((first, -g_days, g_key))
        g_key, g_days, first, g_qty, g_min = g_key[o], g_days[o], first[o], g_qty[o], g_min[o]
    return {"key": g_key, "days": g_days, "cust": cust[first], "item": item[first], "qty": g_qty,
            "min_days": g_min}


def _recent_buyers(ol: dict[str, np.ndarray], n_items: int, windows: tuple[float, ...]) -> list[np.ndarray]:
    """Per item, the customers with a line in the last ``w`` days (``days <= w``) for each window ``w``, from
    :func:`_order_items` rows: a customer-item key is in a window when its line nearest the cutoff is
    (no sort of the lines per window: 2 s of a snapshot at 1M customers)."""
    start = run_starts(ol["key"])
    if len(start) == 0:
        return [np.zeros(n_items) for _ in windows]
    nearest = np.minimum.reduceat(ol["min_days"], start)
    items = ol["item"][start]
    return [np.bincount(items[nearest <= w], minlength=n_items).astype(float) for w in windows]


def _customer_items(ol: dict[str, np.ndarray], season: np.ndarray, recent: np.ndarray) -> pd.DataFrame:
    """Per customer-item key (sorted): cust, item, n_orders, qty, first_days, last_days, n_season,
    n_recent, own_gap (the customer's mean gap between orders of the item; NaN for one order)."""
    start = run_starts(ol["key"])
    n = len(ol["key"])
    n_orders = np.diff(np.r_[start, n]).astype(np.int32)  # counts: int32 (1M customers: 20M rows per column)
    reduce = lambda f, a, **kw: f.reduceat(a, start, **kw) if len(start) else a[:0]  # noqa: E731
    first_days, last_days = reduce(np.maximum, ol["days"]), reduce(np.minimum, ol["days"])
    with np.errstate(invalid="ignore", divide="ignore"):
        own_gap = np.where(n_orders > 1, (first_days - last_days) / np.maximum(n_orders - 1, 1), np.nan)
    ci = pd.DataFrame({
        "key": ol["key"][start], "cust": ol["cust"][start], "item": ol["item"][start], "n_orders": n_orders,
        "qty": reduce(np.add, ol["qty"]), "first_days": first_days, "last_days": last_days,
        # the masks summed as int32 without an int64 copy of them
        "n_season": reduce(np.add, season, dtype=np.int32), "n_recent": reduce(np.add, recent, dtype=np.int32),
        "own_gap": own_gap,
    }, copy=False)  # fresh arrays: no copy into one block
    return ci


def _repurchase_interval(ol: dict[str, np.ndarray], n_items: int) -> tuple[np.ndarray, float]:
    """Per item, the median gap in days between a customer's consecutive distinct purchase days of it
    (NaN without one), and the median over all items, from :func:`_order_items` rows."""
    day = np.floor(ol["days"])
    k_ol = ol["key"]
    new_day = np.r_[True, (k_ol[1:] != k_ol[:-1]) | (day[1:] != day[:-1])]  # first of its (key, day)
    kk, dy, di = k_ol[new_day], day[new_day], ol["item"][new_day]
    same = np.r_[False, kk[1:] == kk[:-1]]
    gaps = (np.r_[np.nan, dy[:-1]] - dy)[same]
    return _group_median(di[same], gaps, n_items), (float(np.nanmedian(gaps)) if len(gaps) else np.nan)


def _first_appearances(order: np.ndarray) -> np.ndarray | None:
    """Position of each order code's first line when the codes number the orders 0, 1, ... in order of
    first appearance (as :class:`Encoded`'s, and any prefix of its lines): where the running maximum
    grows, without a sort. None for codes numbered otherwise."""
    if len(order) == 0:
        return np.array([], dtype=np.int64)
    run_max = np.maximum.accumulate(order)
    first = np.flatnonzero(np.r_[True, run_max[1:] > run_max[:-1]])
    if order[0] != 0 or len(first) != int(run_max[-1]) + 1 or not np.all(np.diff(order[first]) == 1):
        return None
    return first


def _customer_orders(cust: np.ndarray, order: np.ndarray, days: np.ndarray, n_cust: int
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per customer code: number of orders, and the days before the cutoff of the last and the first
    (NaN without orders), each (customer, order) counted at its first line (lines in time order).

    Orders numbered by first appearance whose lines all have one customer (the usual case) are found
    without sorting the lines (5 s of a 24 s snapshot at 1M customers); otherwise (customer, order) pairs
    are sorted."""
    first = _first_appearances(order)
    if first is not None and np.array_equal(cust, cust[first][order]):
        pc, pd_ = cust[first], days[first]
        orders = np.bincount(pc, minlength=n_cust).astype(float)
        last_days = np.full(n_cust, np.inf)
        first_days = np.full(n_cust, -np.inf)
        np.minimum.at(last_days, pc, pd_)
        np.maximum.at(first_days, pc, pd_)
        none = orders == 0
        last_days[none] = first_days[none] = np.nan
        return orders, last_days, first_days
    srt = _group_sort(cust, order)
    start = run_starts(cust[srt], order[srt])
    first_line = np.minimum.reduceat(srt, start) if len(start) else srt
    pc, pd_ = cust[first_line], days[first_line]
    orders = np.bincount(pc, minlength=n_cust).astype(float)
    last_days = np.full(n_cust, np.nan)
    first_days = np.full(n_cust, np.nan)
    cs = run_starts(pc)
    if len(cs):
        last_days[pc[cs]] = np.minimum.reduceat(pd_, cs)
        first_days[pc[cs]] = np.maximum.reduceat(pd_, cs)
    return orders, last_days, first_days


class Snapshot:
    """Statistics as of ``cutoff`` (events strictly before it), from an :class:`Encoded`.

    ``horizon_days`` sets the "same season last year" window ``[cutoff - 365 d, cutoff - 365 d + H)``.
    Days are counted back from the cutoff (``days_since_*``).
    """

    def __init__(self, enc: Encoded, cutoff, horizon_days: int = 90) -> None:
        if enc.events_released:
            raise ValueError("this encoding's events were released by a fit (Encoded.release_events): encode again")
        self.enc = enc
        self._binary: sp.csr_matrix | None = None  # history_matrix("binary"), built on first use
        self._gram: tuple[np.ndarray, np.ndarray] | None = None  # (items, history_gram(items)), the last asked
        self.cutoff = as_utc(cutoff)
        self.horizon_days = int(horizon_days)
        c_us = _ts_us(self.cutoff)
        k = int(np.searchsorted(enc.t, c_us, side="left"))  # Encoded lines are in time order
        cust, item, order = enc.cust[:k], enc.item[:k], enc.order[:k]
        days = (c_us - enc.t[:k]) / DAY_US
        price = enc.price[:k]
        n_items, n_cust = enc.n_items, enc.n_cust
        self.n_items, self.n_cust = n_items, n_cust
        key = cust.astype(np.int64) * n_items + item
        season_lo, season_hi = YEAR_DAYS - horizon_days, YEAR_DAYS  # days before the cutoff
        self.season_known = (c_us - enc.data_start) / DAY_US >= YEAR_DAYS

        # one row per (order, item): times bought counts orders, not lines
        ol = _order_items(key, order, days, cust, item, enc.qty[:k], srt=enc.lines_by_key_order(k))
        # item popularity = distinct buyers in a window
        self.buyers_recent, self.buyers_pop, self.buyers_year = _recent_buyers(
            ol, n_items, (RECENT_DAYS, POPULAR_DAYS, YEAR_DAYS))
        del ol["min_days"]
        # (before the customer-item table exists: the peak memory of a snapshot is the two together)
        self.item_interval, self.global_interval = _repurchase_interval(ol, n_items)
        # trending: purchases (order x item) weighted with a two-week half-life
        self.trend_score = np.bincount(ol["item"], weights=0.5 ** (ol["days"] / 14.0), minlength=n_items)
        ol_season = (ol["days"] > season_lo) & (ol["days"] <= season_hi)
        ol_recent = ol["days"] <= POPULAR_DAYS
        ci = _customer_items(ol, ol_season, ol_recent)
        del ol, ol_season, ol_recent  # (1 GB at 32M lines)
        self.ci = ci
        self.ci_key = ci["key"].to_numpy()

        self.buyers_all = np.bincount(ci["item"].to_numpy(), minlength=n_items).astype(float)
        u = unique_ints(key[(days > season_lo) & (days <= season_hi)])  # the same window a year before
        season = np.bincount((u % n_items).astype(np.int64), minlength=n_items).astype(float)
        del u
        self.buyers_season = season if self.season_known else np.full(n_items, np.nan)
        repeaters = np.bincount(ci["item"].to_numpy(), weights=(ci["n_orders"] > 1).to_numpy(float),
                                minlength=n_items)
        self.repeat_rate = np.where(self.buyers_all > 0, repeaters / np.maximum(self.buyers_all, 1), np.nan)
        self.item_last_days = np.full(n_items, np.inf)
        np.minimum.at(self.item_last_days, item, days)
        self.item_first_days = np.full(n_items, -np.inf)
        np.maximum.at(self.item_first_days, item, days)
        year = days <= YEAR_DAYS
        med = _group_median(item[year], price[year], n_items)
        med_all = _group_median(item, price, n_items)
        self.item_price = np.where(np.isnan(med), med_all, med)
        self.item_price = np.where(np.isnan(self.item_price), enc.catalog_price, self.item_price)
        # smoothed ratio of recent to popularity-window buyers (per 30 days)
        self.trend_ratio = (self.buyers_recent + 1.0) / (self.buyers_pop * RECENT_DAYS / POPULAR_DAYS + 1.0)

        # customers: orders, days since the last and the first (of each order's first line)
        self.cust_orders, self.cust_last_days, self.cust_first_days = _customer_orders(cust, order, days, n_cust)
        self.cust_items = np.bincount(ci["cust"].to_numpy(), minlength=n_cust).astype(float)
        lp = np.log(np.maximum(price, 1e-6))
        cnt = np.bincount(cust, minlength=n_cust)
        self.cust_log_price = np.where(cnt > 0, np.bincount(cust, weights=lp, minlength=n_cust) / np.maximum(cnt, 1), np.nan)
        self.active = np.flatnonzero(self.cust_orders > 0)

        # categories: a customer's share of (order, item) purchases per category; category popularity
        self.has_categories = enc.has_categories
        if self.has_categories:
            n_cat = len(enc.cat_names)
            cat = enc.item_cat[ci["item"].to_numpy()]
            ok = cat >= 0
            # (order, item) purchases = the customer-item rows' order counts
            M = sp.csr_matrix((ci["n_orders"].to_numpy(dtype=float)[ok], (ci["cust"].to_numpy()[ok], cat[ok])),
                              shape=(n_cust, n_cat))
            del cat, ok
            tot = np.asarray(M.sum(axis=1)).ravel()
            self.cust_cat_share = sp.csr_matrix(sp.diags(1.0 / np.maximum(tot, 1)) @ M)
            icat = enc.item_cat
            okc = icat >= 0
            self.cat_pop = np.bincount(icat[okc], weights=self.buyers_pop[okc], minlength=n_cat)
            self.cat_recent = np.bincount(icat[okc], weights=self.buyers_recent[okc], minlength=n_cat)
            self.cat_trend = (self.cat_recent + 1.0) / (self.cat_pop * RECENT_DAYS / POPULAR_DAYS + 1.0)

        # sessions: views and carts of the last 30 days of items not bought since
        self.has_sessions = enc.has_sessions
        if self.has_sessions:
            sm = np.flatnonzero((enc.s_t < c_us) & (enc.s_t >= c_us - RECENT_DAYS * DAY_US))
            sk = enc.s_cust[sm].astype(np.int64) * n_items + enc.s_item[sm]
            by_key = np.argsort(sk, kind="stable")  # sorted lookups (random ones into 17M keys: 9 s at 1M)
            sm, sk = sm[by_key], sk[by_key]
            del by_key
            sd = (c_us - enc.s_t[sm]) / DAY_US
            pos = np.searchsorted(self.ci_key, sk).clip(max=max(len(self.ci_key) - 1, 0))
            bought_after = np.zeros(len(sk), dtype=bool)
            if len(self.ci_key):
                hit = self.ci_key[pos] == sk
                bought_after[hit] = ci["last_days"].to_numpy()[pos[hit]] < sd[hit]
            sk, sd, cart = sk[~bought_after], sd[~bought_after], enc.s_cart[sm][~bought_after]
            start = run_starts(sk)
            reduce = lambda f, a, **kw: f.reduceat(a, start, **kw) if len(start) else a[:0]  # noqa: E731
            carts = reduce(np.add, cart, dtype=np.int64)
            self.sess = pd.DataFrame({"key": sk[start], "views": np.diff(np.r_[start, len(sk)]) - carts,
                                      "carts": carts, "last_days": reduce(np.minimum, sd)})
            self.sess_key = self.sess["key"].to_numpy()

    # -- matrices ------------------------------------------------------------------------------
    def history_matrix(self, weights: str = "binary", half_life_days: float | None = None) -> sp.csr_matrix:
        """Customers x items: 1 where bought (``binary``) or ``0.5 ** (days since last bought / half-life)``.
        The binary matrix is built once per snapshot and shared by its callers (do not modify it)."""
        ci = self.ci
        if weights == "binary":
            if self._binary is None:
                self._binary = sp.csr_matrix((np.ones(len(ci)), (ci["cust"].to_numpy(), ci["item"].to_numpy())),
                                             shape=(self.n_cust, self.n_items))
            return self._binary
        w = 0.5 ** (ci["last_days"].to_numpy() / float(half_life_days))
        return sp.csr_matrix((w, (ci["cust"].to_numpy(), ci["item"].to_numpy())), shape=(self.n_cust, self.n_items))

    def history_gram(self, items: np.ndarray, jobs: int = 1) -> np.ndarray:
        """``X'X`` of the binary history matrix's columns ``items``: how many customers bought both (dense
        float64; :func:`~training.recommend.similarity.gram` on ``jobs`` threads). Kept for the last ``items``
        asked until :meth:`release_history_gram` (EASE's choice of lambda and the cutoff's item-item models
        share it)."""
        items = np.asarray(items, dtype=np.int64)
        if self._gram is None or not np.array_equal(self._gram[0], items):
            self._gram = None
            self._gram = (items.copy(), gram(self.history_matrix("binary")[:, items], jobs))
        return self._gram[1]

    def release_history_gram(self) -> None:
        """Forget the Gram matrix :meth:`history_gram` keeps (200 MB at 5,000 items)."""
        self._gram = None

    def basket_matrix(self) -> sp.csr_matrix:
        """:func:`basket_matrix` at this snapshot's cutoff."""
        return basket_matrix(self.enc, self.cutoff)


def basket_matrix(enc: Encoded, cutoff) -> sp.csr_matrix:
    """Orders x items (binary): which items were bought in the same order, for orders before ``cutoff``."""
    m = enc.t < _ts_us(as_utc(cutoff))
    o, it = enc.order[m], enc.item[m]
    # order codes are 0..n-1 over all orders; rows of orders after the cutoff stay empty (no co-occurrence)
    n_orders = int(enc.order.max()) + 1 if len(enc.order) else 0
    M = sp.csr_matrix((np.ones(len(o)), (o, it)), shape=(n_orders, enc.n_items))
    M.data[:] = 1.0
    M.sum_duplicates()
    M.data[:] = 1.0
    return M
