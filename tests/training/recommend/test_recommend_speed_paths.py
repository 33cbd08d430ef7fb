"""The fast paths of the recommender against slow reference implementations, and negative sampling."""

from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.sparse as sp

from training.recommend import Recommender
from training.recommend.similarity import ease_weights, top_k_rows


def _top_k_rows_reference(M, k):
    M = sp.csr_matrix(M)
    M.eliminate_zeros()
    rows = np.repeat(np.arange(M.shape[0]), np.diff(M.indptr))
    cols, vals = M.indices, M.data
    keep = vals > 0
    rows, cols, vals = rows[keep], cols[keep], vals[keep]
    order = np.lexsort((cols, -vals, rows))
    rows, cols, vals = rows[order], cols[order], vals[order]
    start = np.r_[0, np.flatnonzero(np.diff(rows)) + 1]
    rank = np.arange(len(rows)) - np.repeat(start, np.diff(np.r_[start, len(rows)]))
    return rows[rank < k], cols[rank < k], vals[rank < k]


def test_top_k_rows_matches_full_sort_with_ties():
    M = sp.random(300, 200, density=0.3, random_state=3, format="csr")
    M.data = np.round(M.data * 10) / 10 - 0.1  # many ties, some zero and negative entries
    for k in (1, 3, 10, 250):
        got, want = top_k_rows(M, k, chunk=64), _top_k_rows_reference(M, k)
        for a, b in zip(got, want):
            np.testing.assert_array_equal(a, b)


def test_ease_weights_single_precision_close_to_double():
    rng = np.random.default_rng(0)
    X = (rng.random((400, 120)) < 0.1).astype(float)
    G = X.T @ X
    lam = 30.0
    A = G + lam * np.eye(len(G))
    P = np.linalg.inv(A)
    want = -P / np.diag(P)[None, :]
    np.fill_diagonal(want, 0.0)
    got = ease_weights(G, lam)
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, want, atol=1e-4)


def test_negative_sampling_keeps_every_positive_and_caps_negatives():
    rng = np.random.default_rng(1)
    n = 2000
    df = pd.DataFrame({"cutoff": rng.integers(0, 2, n), "cust": rng.integers(0, 20, n),
                       "label": (rng.random(n) < 0.1).astype(np.int8)})
    m = Recommender(max_negatives=5, random_state=0)
    out = m._sample_negatives(df)
    assert out["label"].sum() == df["label"].sum()
    neg = out[out["label"] == 0].groupby(["cutoff", "cust"]).size()
    full = df[df["label"] == 0].groupby(["cutoff", "cust"]).size()
    assert (neg <= 5).all()
    assert (neg == full.clip(upper=5).loc[neg.index]).all()
    pd.testing.assert_frame_equal(out, m._sample_negatives(df))  # seeded
    assert len(Recommender(max_negatives=None)._sample_negatives(df)) == n
    # the discovery ranker has its own cap (default 50; None: every negative)
    d = Recommender(max_negatives=5, discovery_max_negatives=2, random_state=0)._sample_negatives(df, "discovery")
    assert d["label"].sum() == df["label"].sum()
    assert (d[d["label"] == 0].groupby(["cutoff", "cust"]).size() == full.clip(upper=2).loc[
        d[d["label"] == 0].groupby(["cutoff", "cust"]).size().index]).all()
    assert len(Recommender(max_negatives=5, discovery_max_negatives=None)._sample_negatives(df, "discovery")) == n
    default = Recommender()
    assert (default.max_negatives, default.discovery_max_negatives) == (20, 50)


def test_discovery_ranker_has_smaller_better_populated_trees():
    m = Recommender()  # all: 31 leaves, 50 rows per leaf; discovery: 15 leaves, 200 rows per leaf
    assert m._tree_params("all", 1_000_000) == (31, 50)
    assert m._tree_params("discovery", 1_000_000) == (15, 200)
    # capped at rows // (2 * leaves), so a small shop still grows trees
    assert m._tree_params("discovery", 3_000) == (15, 100)
    assert m._tree_params("all", 1_000) == (31, 16)
    assert m._tree_params("discovery", 10) == (15, 1)
    # None: the discovery ranker uses the `all` settings
    same = Recommender(num_leaves=7, min_child_samples=20, discovery_num_leaves=None, discovery_min_child_samples=None)
    assert same._tree_params("discovery", 1_000_000) == same._tree_params("all", 1_000_000) == (7, 20)
    lgbm = m._ranker(10, *m._tree_params("discovery", 1_000_000), "discovery")
    assert (lgbm.get_params()["num_leaves"], lgbm.get_params()["min_child_samples"]) == (15, 200)


def test_histogram_bins_per_ranker():
    m = Recommender()  # all: 63 bins; discovery: 255
    assert m._ranker(10, 31, 50).get_params()["max_bin"] == 63
    assert m._ranker(10, 15, 200, "discovery").get_params()["max_bin"] == 255
    same = Recommender(max_bin=127, discovery_max_bin=None)
    assert same._ranker(10, 15, 200, "discovery").get_params()["max_bin"] == 127


def test_unique_ints_matches_numpy_unique():
    from training.recommend.candidates import unique_ints

    rng = np.random.default_rng(2)
    for a in (np.array([], dtype=np.int64), np.array([7]), np.array([3, 3, 3]),
              rng.integers(-50, 50, 1000), rng.integers(0, 2**40, 5000, dtype=np.int64)):
        got = unique_ints(a)
        np.testing.assert_array_equal(got, np.unique(a))
        assert got.dtype == a.dtype
    np.testing.assert_array_equal(unique_ints(np.array([5, 1, 5, 2, 1])), [1, 2, 5])


def _lists_reference(m, df):
    """The stored lists recomputed from the candidates with pandas (of the customers with an order in the
    lookback): scored by the rankers, the top ``list_size`` per customer by score (descending), ties by
    item code."""
    X = df[m.features_]
    out = {}
    s_all = m.ranker_all_.predict(X)
    d = df["bought"].to_numpy() == 0
    s_disc = np.full(len(df), -np.inf)
    s_disc[d] = m.ranker_discovery_.predict(X.loc[d])
    for name, s in (("all", s_all), ("discovery", s_disc)):
        t = pd.DataFrame({"cust": df["cust"].to_numpy(), "item": df["item"].to_numpy(), "s": s})
        t = t[np.isfinite(t["s"])].sort_values(["cust", "s", "item"], ascending=[True, False, True])
        out[name] = t.groupby("cust", sort=False).head(m.list_size)
    return out


def test_stored_lists_match_a_pandas_reference():
    import warnings

    from features.synthetic import synthesize_shop
    from training.recommend.candidates import CandidateBuilder, CandidateConfig, fit_cutoff_models
    from training.recommend.data import Encoded, Snapshot
    from training.recommend.similarity import thread_limit

    shop = synthesize_shop(customers=300, products=60, seed=4, start="2022-01-01", end="2023-04-01")
    as_of = pd.Timestamp("2023-04-01", tz="UTC")
    cfg = CandidateConfig(n_own=30, n_together=15, n_similar=15, n_ease=15, n_popular=10)
    m = Recommender(candidates=cfg, list_size=7, n_estimators=20, min_child_samples=10, ease_lambdas=(100.0,))
    m.fit(shop["orders"], shop["products"], shop["sessions"], as_of=as_of, training_cutoffs=2)
    assert m.ranker_all_ is not None and m.ranker_discovery_ is not None
    with thread_limit(1):
        enc = Encoded(shop["orders"], shop["products"], shop["sessions"], as_of)
        snap = Snapshot(enc, as_of, m.horizon_days_)
        listed = np.flatnonzero(snap.cust_last_days <= m.lookback_days)  # the lapsed get no list
        assert 0 < len(listed) < enc.n_cust
        df = CandidateBuilder(snap, fit_cutoff_models(snap, m.ease_lambda_, cfg), cfg).build(listed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = _lists_reference(m, df)
    for name in ("all", "discovery"):
        want = ref[name]
        ptr = getattr(m, f"{name}_ptr_")
        np.testing.assert_array_equal(np.diff(ptr), np.bincount(want["cust"], minlength=enc.n_cust))
        np.testing.assert_array_equal(getattr(m, f"{name}_items_"), want["item"].to_numpy())
        np.testing.assert_allclose(getattr(m, f"{name}_scores_"), want["s"].to_numpy(), rtol=1e-6)
        assert np.diff(ptr).max() == 7
        code = getattr(m, f"{name}_code_")
        bought = df.set_index(["cust", "item"])["bought"].loc[list(zip(want["cust"], want["item"]))].to_numpy() > 0
        np.testing.assert_array_equal(code == 0, bought)  # R_BOUGHT exactly for the customer's own items


def _messy_encoded(seed: int = 0):
    """An Encoded shop whose orders repeat items on several lines and spread their lines over time."""
    from training.recommend.data import Encoded

    rng = np.random.default_rng(seed)
    n_lines = 3000
    order = rng.integers(0, 400, n_lines)
    start = pd.Timestamp("2023-01-01", tz="UTC")
    base = start + pd.to_timedelta(rng.integers(0, 500, 400), unit="D")  # a time per order
    jitter = pd.to_timedelta(np.where(rng.random(n_lines) < 0.1, rng.integers(1, 60 * 86400, n_lines), 0), unit="s")
    orders = pd.DataFrame({
        "order_id": [f"O{o}" for o in order], "customer_id": [f"C{o % 37}" for o in order],
        "product_id": [f"P{p}" for p in rng.integers(0, 25, n_lines)],
        "quantity": rng.integers(1, 6, n_lines).astype(float), "unit_price": rng.random(n_lines) * 10 + 1,
        "ordered_at": base[order] + jitter, "is_return": rng.random(n_lines) < 0.03})
    return Encoded(orders.sample(frac=1.0, random_state=seed), None, None, start + pd.Timedelta(days=520))


def test_snapshot_customer_items_match_pandas_group_by():
    """The sort-based per-(customer, item) table and customer counts equal a pandas group-by of the lines
    (lines of one order at different times, the same item on several lines of an order)."""
    from training.recommend.data import DAY_US, Snapshot, _ts_us

    enc = _messy_encoded()
    cutoff = pd.Timestamp("2024-01-10", tz="UTC")
    snap = Snapshot(enc, cutoff, 90)
    m = enc.t < _ts_us(cutoff)
    days = (_ts_us(cutoff) - enc.t[m]) / DAY_US
    lines = pd.DataFrame({"key": enc.cust[m].astype(np.int64) * enc.n_items + enc.item[m], "order": enc.order[m],
                          "days": days, "cust": enc.cust[m], "item": enc.item[m], "qty": enc.qty[m]})
    ol = lines.groupby(["key", "order"], as_index=False).agg(days=("days", "max"), qty=("qty", "sum"),
                                                             cust=("cust", "first"), item=("item", "first"))
    ol["recent"] = ol["days"] <= 90
    want = ol.groupby("key").agg(cust=("cust", "first"), item=("item", "first"), n_orders=("order", "size"),
                                 qty=("qty", "sum"), first_days=("days", "max"), last_days=("days", "min"),
                                 n_recent=("recent", "sum")).reset_index()
    got = snap.ci[want.columns]
    pd.testing.assert_frame_equal(got.reset_index(drop=True), want, check_dtype=False)
    # repurchase interval: gaps between a customer's distinct purchase days of the item, median per item
    dd = ol.assign(day=np.floor(ol["days"])).drop_duplicates(["key", "day"]).sort_values(["key", "day"])
    dd["gap"] = dd.groupby("key")["day"].diff()
    interval = dd.dropna(subset=["gap"]).groupby("item")["gap"].median()
    assert len(interval) > 5
    np.testing.assert_array_equal(snap.item_interval[interval.index], interval.to_numpy())
    assert np.isnan(np.delete(snap.item_interval, interval.index)).all()
    # popularity: distinct customers with a line in the last 30 / 90 / 365 days and in last year's season
    for got_buyers, in_window in ((snap.buyers_recent, lines["days"] <= 30), (snap.buyers_pop, lines["days"] <= 90),
                                  (snap.buyers_year, lines["days"] <= 365),
                                  (snap.buyers_season, (lines["days"] > 275) & (lines["days"] <= 365))):
        per_item = lines[in_window].drop_duplicates("key").groupby("item").size()
        want_buyers = np.zeros(enc.n_items)
        want_buyers[per_item.index] = per_item.to_numpy()
        np.testing.assert_array_equal(got_buyers, want_buyers)
    assert 0 < snap.buyers_recent.sum() < snap.buyers_pop.sum() < snap.buyers_year.sum()
    co = lines.drop_duplicates(["cust", "order"]).groupby("cust")["days"]  # an order at its first line
    np.testing.assert_array_equal(snap.cust_orders[co.size().index], co.size().to_numpy())
    np.testing.assert_array_equal(snap.cust_last_days[co.min().index], co.min().to_numpy())
    np.testing.assert_array_equal(snap.cust_first_days[co.max().index], co.max().to_numpy())


def test_customer_orders_without_a_sort_equal_the_sorted_pairs():
    """Per customer: orders, days since the last and the first, each (customer, order) at its first line.
    Found without a sort for order codes numbered by first appearance with one customer per order; by
    sorting otherwise (codes numbered otherwise, an order with lines of two customers): the same numbers
    as a pandas drop-duplicates of the lines."""
    from training.recommend.data import _customer_orders, _first_appearances

    enc = _messy_encoded(3)
    days = (enc.t.max() + 1 - enc.t) / 86_400e6
    cust = enc.cust.copy()
    cust[np.flatnonzero(enc.order == 5)[-1]] = (cust[enc.order == 5][0] + 1) % enc.n_cust  # order 5: two customers
    assert _first_appearances(enc.order) is not None and _first_appearances(enc.order.max() - enc.order) is None
    for c, o in ((enc.cust, enc.order), (enc.cust, enc.order.max() - enc.order), (cust, enc.order)):
        got = _customer_orders(c, o, days, enc.n_cust + 2)
        co = pd.DataFrame({"cust": c, "order": o, "days": days}).drop_duplicates(["cust", "order"]).groupby("cust")
        n = np.zeros(enc.n_cust + 2)
        n[co.size().index] = co.size().to_numpy()
        np.testing.assert_array_equal(got[0], n)
        np.testing.assert_array_equal(got[1][co.size().index], co["days"].min().to_numpy())
        np.testing.assert_array_equal(got[2][co.size().index], co["days"].max().to_numpy())
        assert np.isnan(got[1][-2:]).all() and np.isnan(got[2][-2:]).all()


def test_snapshots_filter_the_encodings_one_sort_of_the_lines():
    """Each cutoff's lines sorted by (customer-item key, order) are the encoding's one sort of all lines,
    filtered to the cutoff's: the same (key, order) sequence as sorting them anew; released with the events."""
    from training.recommend.data import _group_sort

    enc = _messy_encoded(4)
    key = enc.cust.astype(np.int64) * enc.n_items + enc.item
    for k in (0, 1, 700, len(key) - 1, len(key), 5):  # (all lines: the sort is let go, then sorted again)
        got, want = enc.lines_by_key_order(k), _group_sort(key[:k], enc.order[:k])
        assert sorted(got.tolist()) == list(range(k))
        np.testing.assert_array_equal(key[got], key[want])
        np.testing.assert_array_equal(enc.order[got], enc.order[want])
    assert enc._by_key_order is not None
    enc.release_events()
    assert enc._by_key_order is None


def test_candidates_of_some_customers_equal_their_rows_among_all():
    """A chunk of customers (not contiguous, as the rankers' training samples) gets exactly the rows it
    gets when every customer's candidates are built at once."""
    from training.recommend.candidates import CandidateBuilder, CandidateConfig, fit_cutoff_models
    from training.recommend.data import Snapshot

    enc = _messy_encoded(1)
    snap = Snapshot(enc, pd.Timestamp("2024-03-01", tz="UTC"), 90)
    cfg = CandidateConfig()
    builder = CandidateBuilder(snap, fit_cutoff_models(snap, 20.0, cfg), cfg)
    everyone = builder.build(np.arange(enc.n_cust))
    some = np.array([1, 4, 5, 11, 30])
    got = builder.build(some)
    want = everyone[everyone["cust"].isin(some)]
    assert len(got) > 0 and set(got["cust"]) == set(some)
    pd.testing.assert_frame_equal(got.reset_index(drop=True), want.reset_index(drop=True))


def test_cosine_neighbours_from_gram_equal_those_from_the_columns():
    """The customer cosine from EASE's Gram matrix of the items bought by at least ``min_count`` rows (and
    a few more) is the cosine of the whole matrix, ties included (binary data: many), chunk by chunk."""
    from training.recommend.similarity import cosine_neighbours, cosine_neighbours_from_gram, gram

    rng = np.random.default_rng(5)
    X = sp.csr_matrix((rng.random((400, 60)) < rng.random(60) * 0.08).astype(float))
    buyers = np.asarray(X.sum(axis=0)).ravel()
    assert (buyers == 1).any() and (buyers == 0).any()
    for min_count in (2, 3):
        items = np.union1d(np.flatnonzero(buyers >= min_count), [np.flatnonzero(buyers == 1)[0]])
        want = cosine_neighbours(X, 5, min_count, chunk=7)
        got = cosine_neighbours_from_gram(gram(X[:, items]), items, 60, 5, min_count, chunk=7)
        assert want.nnz > 100
        for attr in ("indptr", "indices", "data"):
            np.testing.assert_array_equal(getattr(got, attr), getattr(want, attr))


def test_gram_in_row_blocks_and_threads_equals_one_product(monkeypatch):
    """The co-occurrence counts summed over blocks of rows, on one or three threads, for all columns or a
    chunk of them, equal one sparse product; so do the cosine neighbours built from them. Empty rows at
    either end, a row longer than a block and an all-empty matrix included."""
    from training.recommend import similarity
    from training.recommend.similarity import cosine_neighbours, gram

    rng = np.random.default_rng(11)
    dense = (rng.random((300, 40)) < rng.random(40) * 0.2).astype(float)
    dense[:5] = 0.0
    dense[-7:] = 0.0
    dense[100] = 1.0  # 40 nonzeros: longer than a block
    X = sp.csr_matrix(dense)
    want = (X.T @ X).toarray()
    want_nb = cosine_neighbours(X, 5, 2)
    monkeypatch.setattr(similarity, "GRAM_BLOCK_NNZ", 16)
    assert len(similarity._row_blocks(X.indptr, 16)) > 20
    for jobs in (1, 3):
        np.testing.assert_array_equal(gram(X, jobs), want)
        np.testing.assert_array_equal(gram(X, jobs, cols=(7, 19)), want[7:19])
        got = cosine_neighbours(X, 5, 2, chunk=9, jobs=jobs)
        for attr in ("indptr", "indices", "data"):
            np.testing.assert_array_equal(getattr(got, attr), getattr(want_nb, attr))
    np.testing.assert_array_equal(gram(sp.csr_matrix((4, 3)), 2), np.zeros((3, 3)))
    W = X * 2.5  # weights: counted as ones, and left as they are
    np.testing.assert_array_equal(cosine_neighbours(W, 5, 2).toarray(), want_nb.toarray())
    assert (W.data == 2.5).all()
    blocks = similarity._row_blocks(X.indptr, 16)
    assert blocks[0][0] == 0 and blocks[-1][1] == 300
    assert all(a[1] == b[0] for a, b in zip(blocks[:-1], blocks[1:]))


def test_cutoff_models_share_the_gram_matrix_and_give_the_same_neighbours():
    from training.recommend.candidates import CandidateConfig, fit_cutoff_models
    from training.recommend.data import Snapshot
    from training.recommend.similarity import cosine_neighbours, ease_weights, gram

    snap = Snapshot(_messy_encoded(2), pd.Timestamp("2024-03-01", tz="UTC"), 90)
    X = snap.history_matrix("binary")
    # EASE covers every item bought twice (the gram path), or only the 10 most bought (the columns' path)
    for cfg in (CandidateConfig(neighbours=4), CandidateConfig(neighbours=4, ease_max_items=10)):
        m = fit_cutoff_models(snap, 20.0, cfg)
        want = cosine_neighbours(X, 4, cfg.min_cooccurrence)
        assert (m.similar != want).nnz == 0 and m.similar.nnz > 20
        np.testing.assert_array_equal(m.ease_B, ease_weights(gram(X[:, m.ease_items]), 20.0))
        assert snap._gram is None  # released: the snapshot outlives its models
    items = np.flatnonzero(snap.buyers_all >= 2)
    G = snap.history_gram(items)
    assert snap.history_gram(items.copy()) is G and snap.history_gram(items[1:]) is not G


def test_snapshot_session_signals_match_pandas_group_by():
    """Views, carts and the last session day per customer-item over the 30 days before the cutoff, without
    the events followed by a purchase of the item."""
    from features.synthetic import synthesize_shop
    from training.recommend.data import DAY_US, RECENT_DAYS, Encoded, Snapshot, _ts_us

    shop = synthesize_shop(customers=200, products=40, seed=6, start="2022-01-01", end="2023-01-01")
    enc = Encoded(shop["orders"], shop["products"], shop["sessions"], pd.Timestamp("2023-01-01", tz="UTC"))
    cutoff = pd.Timestamp("2022-10-15", tz="UTC")
    snap = Snapshot(enc, cutoff, 90)
    c = _ts_us(cutoff)
    m = (enc.s_t < c) & (enc.s_t >= c - RECENT_DAYS * DAY_US)
    ev = pd.DataFrame({"key": enc.s_cust[m].astype(np.int64) * enc.n_items + enc.s_item[m],
                       "days": (c - enc.s_t[m]) / DAY_US, "cart": enc.s_cart[m]})
    last_bought = snap.ci.set_index("key")["last_days"]
    ev = ev[~(ev["key"].map(last_bought) < ev["days"])]  # bought since the event
    want = ev.assign(view=~ev["cart"]).groupby("key").agg(
        views=("view", "sum"), carts=("cart", "sum"), last_days=("days", "min")).reset_index()
    assert len(want) > 50 and want["carts"].sum() > 0 and len(ev) < m.sum()
    pd.testing.assert_frame_equal(snap.sess, want)


def test_dense_and_sparse_neighbour_scores_give_the_same_candidates(monkeypatch):
    """Small catalogs score the item-item models with dense arrays, large ones with sparse products: the
    same candidates, features and "often bought with" contributors, chunk by chunk."""
    import training.recommend.candidates as candidates
    from training.recommend.data import Snapshot

    enc = _messy_encoded(3)
    snap = Snapshot(enc, pd.Timestamp("2024-03-01", tz="UTC"), 90)
    cfg = candidates.CandidateConfig(n_together=4, n_similar=4, n_ease=4, n_own=5)
    models = candidates.fit_cutoff_models(snap, 20.0, cfg)
    dense = candidates.CandidateBuilder(snap, models, cfg)
    monkeypatch.setattr(candidates, "DENSE_ITEMS", 0)
    sparse = candidates.CandidateBuilder(snap, models, cfg)
    assert set(dense._dense) == {"together", "similar"} and not sparse._dense
    rows = np.arange(enc.n_cust)
    got, want = dense.build(rows, chunk=5), sparse.build(rows, chunk=5)
    pd.testing.assert_frame_equal(got, want)
    assert got["rank_together"].max() == 4 and got["rank_similar"].notna().sum() > 50
    assert (got["s_together"] > 0).sum() > got["rank_together"].notna().sum()  # scores beyond the top items
    pairs = got[got["s_together"] > 0]
    who = dense.together_contributor(pairs["cust"].to_numpy(), pairs["item"].to_numpy())
    assert (who >= 0).all()
    np.testing.assert_array_equal(who, sparse.together_contributor(pairs["cust"].to_numpy(),
                                                                   pairs["item"].to_numpy()))
    np.testing.assert_array_equal(got, dense.build(rows, chunk=1024))


def test_snapshot_and_together_in_a_background_thread_equal_them_in_turn():
    from training.recommend.candidates import CandidateConfig, snapshot_and_together
    from training.recommend.data import Snapshot
    from training.recommend.similarity import cosine_neighbours

    enc = _messy_encoded(4)
    cutoff, cfg = pd.Timestamp("2024-02-01", tz="UTC"), CandidateConfig(neighbours=5)
    snap, together = snapshot_and_together(enc, cutoff, 90, cfg)
    want = Snapshot(enc, cutoff, 90)
    pd.testing.assert_frame_equal(snap.ci, want.ci)
    np.testing.assert_array_equal(snap.buyers_all, want.buyers_all)
    expected = cosine_neighbours(want.basket_matrix(), 5, cfg.min_cooccurrence)
    assert together.nnz > 20 and (together != expected).nnz == 0


def test_in_sorted_equals_isin():
    from training.recommend.data import in_sorted

    rng = np.random.default_rng(2)
    keys = np.unique(rng.integers(0, 1000, 300))
    values = rng.integers(-5, 1010, 2000)
    np.testing.assert_array_equal(in_sorted(values, keys), np.isin(values, keys))
    assert in_sorted(values, keys[:0]).shape == (2000,) and not in_sorted(values, keys[:0]).any()
    assert in_sorted(values[:0], keys).shape == (0,)
