"""What keeps the recommender's memory bounded on large shops changes nothing it should not:

- candidates built in customer chunks (training cutoffs and the final lists) equal one chunk;
- negatives sampled chunk by chunk with one generator equal sampling the concatenated frame;
- the cap on training customers per cutoff: nothing changes below it, a seeded sample above it;
- threads (rankers' fit, lists' scores) change nothing;
- the compact inputs (categorical ids, integer order codes, only the sessions the fit reads) give the
  same encoding and the same model as the conformed tables.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from configs.settings import RecommenderSettings
from features.storage import Workspace, write_parquet_atomic
from features.synthetic import synthesize_shop
from training.recommend import Recommender
from training.recommend.candidates import CandidateConfig
from training.recommend.data import Encoded
from training.recommend_pipeline import build_recommender, recommender_inputs

AS_OF = pd.Timestamp("2023-04-01", tz="UTC")
CFG = CandidateConfig(n_own=30, n_together=15, n_similar=15, n_ease=15, n_popular=10)
LIST_ATTRS = [f"{lst}_{a}_" for lst in ("all", "discovery") for a in ("ptr", "items", "scores", "code", "arg")]


@pytest.fixture(scope="module")
def shop() -> dict[str, pd.DataFrame]:
    return synthesize_shop(customers=300, products=60, seed=3, start="2022-01-01", end="2023-04-01")


def _fit(shop, orders=None, sessions=None, **kw) -> Recommender:
    m = Recommender(candidates=CFG, n_estimators=20, min_child_samples=10, ease_lambdas=(30.0, 300.0), **kw)
    return m.fit(shop["orders"] if orders is None else orders, shop["products"],
                 shop["sessions"] if sessions is None else sessions, as_of=AS_OF, training_cutoffs=2)


def _info(m: Recommender) -> dict:
    """fit_info_ without the timings."""
    out = {k: v for k, v in m.fit_info_.items() if k != "fit_seconds"}
    for name in ("all", "discovery"):
        if name in out:
            out[name] = {k: v for k, v in out[name].items() if not k.endswith("seconds")}
    return out


def _assert_same_model(a: Recommender, b: Recommender) -> None:
    assert _info(a) == _info(b)
    for attr in LIST_ATTRS:
        x, y = getattr(a, attr), getattr(b, attr)
        assert x.dtype == y.dtype, attr
        np.testing.assert_array_equal(x, y, err_msg=attr)


@pytest.fixture(scope="module")
def base(shop) -> Recommender:
    return _fit(shop)


def test_candidates_built_in_small_chunks_give_the_same_model(shop, base):
    m = _fit(shop, build_chunk=7)  # 7 customers per chunk: many chunks at every cutoff and for the lists
    _assert_same_model(base, m)
    _assert_same_model(base, _fit(shop, build_chunk=7, predict_jobs=2))  # and scored in two threads
    assert base.fit_info_["ranker"] == "lambdarank" and "discovery" in base.fit_info_
    # stored list dtypes
    assert base.all_items_.dtype == np.int32 and base.all_scores_.dtype == np.float32
    assert base.all_code_.dtype == np.int8 and base.all_arg_.dtype == np.int32 and base.all_ptr_.dtype == np.int64
    assert base.all_ptr_[-1] == len(base.all_items_) and len(base.all_ptr_) == len(base.cust_ids_) + 1


def test_threads_change_nothing(shop, base):
    """Two threads for the rankers' fit and the lists' scores: the same trees, EASE weights and lists
    (``ecrm train`` uses ``compute.threads``, the demo's second process one); only the reported
    validation NDCG may differ in its last bits."""
    m = _fit(shop, n_jobs=2, predict_jobs=2)
    for name in ("all", "discovery"):  # LightGBM sums the validation metric over threads: last bits differ
        assert m.fit_info_[name].pop("valid_ndcg@10") == pytest.approx(base.fit_info_[name]["valid_ndcg@10"], rel=1e-12)
        m.fit_info_[name]["valid_ndcg@10"] = base.fit_info_[name]["valid_ndcg@10"]
    _assert_same_model(base, m)


def test_a_cap_at_or_above_the_buyers_changes_nothing(shop, base):
    n = max(base.fit_info_["training_customers"])
    assert "training_customers_before_sampling" not in base.fit_info_
    _assert_same_model(base, _fit(shop, max_training_customers=n))
    _assert_same_model(base, _fit(shop, max_training_customers=10 ** 6))


def test_a_cap_below_the_buyers_samples_customers_per_cutoff_seeded(shop, base):
    before = base.fit_info_["training_customers"]
    cap = min(before) // 2
    m = _fit(shop, max_training_customers=cap)
    info = m.fit_info_
    assert info["training_customers"] == [cap] * len(before)
    assert info["training_customers_before_sampling"] == before
    assert info["validation_customers"] == cap
    assert info["validation_customers_before_sampling"] > cap
    assert info["all"]["train_groups"] <= cap * len(before)
    assert info["all"]["valid_groups"] <= cap
    _assert_same_model(m, _fit(shop, max_training_customers=cap))  # same seed, same model
    other = _fit(shop, max_training_customers=cap, random_state=1)
    assert other.fit_info_["all"]["train_rows_before_sampling"] != info["all"]["train_rows_before_sampling"]


def test_training_customers_sample_exactly():
    rows = np.arange(0, 3000, 3)
    m = Recommender(max_training_customers=50, random_state=7)
    cutoff = pd.Timestamp("2023-01-01", tz="UTC")  # day 19358 since 1970-01-01
    got = m._training_customers(rows, cutoff)
    want = np.sort(np.random.default_rng([7, 19358]).choice(rows, size=50, replace=False))
    np.testing.assert_array_equal(got, want)
    assert len(np.unique(got)) == 50 and np.isin(got, rows).all() and (np.diff(got) > 0).all()
    np.testing.assert_array_equal(m._training_customers(rows, cutoff), got)  # seeded
    assert not np.array_equal(m._training_customers(rows, cutoff + pd.Timedelta(days=30)), got)  # per cutoff
    assert not np.array_equal(Recommender(max_training_customers=50, random_state=8)._training_customers(rows, cutoff),
                              got)
    assert Recommender(max_training_customers=1000)._training_customers(rows, cutoff) is rows  # at the cap
    assert Recommender(max_training_customers=None)._training_customers(rows, cutoff) is rows


def test_negative_sampling_in_parts_equals_sampling_the_whole_frame():
    rng = np.random.default_rng(5)
    n = 3000
    df = pd.DataFrame({"cutoff": rng.integers(0, 3, n), "cust": rng.integers(0, 40, n),
                       "label": (rng.random(n) < 0.1).astype(np.int8), "x": rng.random(n)})
    df = df.sort_values(["cutoff", "cust"], kind="stable").reset_index(drop=True)
    m = Recommender(max_negatives=4, discovery_max_negatives=2, random_state=3)
    q = df.groupby(["cutoff", "cust"], sort=False).ngroup().to_numpy()
    cuts = [0, int(np.searchsorted(q, 17)), int(np.searchsorted(q, 18)), int(np.searchsorted(q, 60)), n]
    for name in ("all", "discovery"):
        whole = m._sample_negatives(df, name)
        gen = np.random.default_rng(3)
        parts = pd.concat([m._sample_negatives(df.iloc[a:b], name, gen) for a, b in zip(cuts, cuts[1:])])
        pd.testing.assert_frame_equal(parts, whole)
        assert len(whole) < n


def _compact(orders: pd.DataFrame, sessions: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The shop as recommender_inputs(compact=True) reads it: categorical ids (with an unused category),
    integer order codes."""
    o = orders.copy()
    o["order_id"] = pd.factorize(o["order_id"], sort=True)[0].astype(np.int64)  # codes in id order, not appearance
    for col in ("customer_id", "product_id"):
        cats = sorted(set(o[col].dropna().astype(str))) + ["ZZ-unused"]
        o[col] = pd.Categorical(o[col].astype(object), categories=cats[::-1])
    s = sessions.copy()
    for col in ("customer_id", "product_id", "event_type"):
        s[col] = s[col].astype(object).astype("category")
    return o, s.drop(columns=["session_id"])


def test_encoding_compact_columns_equals_encoding_strings(shop):
    o, s = _compact(shop["orders"], shop["sessions"])
    a = Encoded(shop["orders"], shop["products"], shop["sessions"], AS_OF)
    b = Encoded(o, shop["products"], s, AS_OF)
    for attr in ("item_ids", "cust_ids", "item", "cust", "order", "t", "qty", "price", "item_cat", "s_cust",
                 "s_item", "s_t", "s_cart"):
        x, y = getattr(a, attr), getattr(b, attr)
        assert x.dtype == y.dtype, attr
        np.testing.assert_array_equal(x, y, err_msg=attr)
    assert len(a.s_t) > 0 and a.has_sessions == b.has_sessions


def test_ease_lambda_choice_scored_in_chunks_is_the_same(shop):
    from training.recommend.baselines import choose_ease_lambda

    enc = Encoded(shop["orders"], shop["products"], shop["sessions"], AS_OF)
    cutoff = AS_OF - pd.Timedelta(days=90)
    whole = choose_ease_lambda(enc, cutoff, 90, (3.0, 30.0, 300.0), chunk=10 ** 6)
    assert len(whole[1]) == 3 and len(set(whole[1].values())) > 1  # the lambdas score differently
    assert choose_ease_lambda(enc, cutoff, 90, (3.0, 30.0, 300.0), chunk=7) == whole
    assert choose_ease_lambda(enc, cutoff, 90, (3.0, 30.0, 300.0), chunk=7, jobs=2) == whole  # lambdas in threads
    # the NDCG of each lambda equals the evaluation's per-customer metrics over the never-bought items
    from training.recommend.baselines import ease_universe
    from training.recommend.data import Snapshot, holdout_items, interactions
    from training.recommend.metrics import per_customer_metrics
    from training.recommend.similarity import ease_weights, gram

    snap = Snapshot(enc, cutoff, 90)
    uni = ease_universe(snap, 2, 5000)
    before = interactions(shop["orders"], cutoff)[["customer_id", "product_id"]].drop_duplicates()
    truth = holdout_items(shop["orders"], cutoff, 90).merge(before, how="left", indicator=True)
    truth = truth[truth["_merge"] == "left_only"].drop(columns="_merge")
    truth = truth[truth["customer_id"].map(dict(zip(enc.cust_ids, snap.cust_last_days))) <= 365]
    rows = np.array([enc.cust_ids.tolist().index(c) for c in sorted(set(truth["customer_id"]))])
    X = snap.history_matrix("binary")[rows][:, uni].toarray()
    m = len(rows) // 3
    capped = choose_ease_lambda(enc, cutoff, 90, (3.0, 30.0, 300.0), chunk=7, max_customers=m)
    for lam, got in whole[1].items():
        S = X @ ease_weights(gram(snap.history_matrix("binary")[:, uni]), lam)
        S[X > 0] = -np.inf
        top = np.argsort(-S, axis=1, kind="stable")[:, :10]
        recs = pd.DataFrame({"customer_id": np.repeat(enc.cust_ids[rows], 10), "rank": np.tile(np.arange(1, 11), len(rows)),
                             "product_id": enc.item_ids[uni[top.ravel()]]})
        per = per_customer_metrics(recs, truth, 10).set_index("customer_id")["ndcg"]
        assert got == pytest.approx(per.mean(), rel=1e-9), lam
        # above max_customers: the mean over a seeded sample of the customers
        sample = enc.cust_ids[rows[np.sort(np.random.default_rng(0).choice(len(rows), size=m, replace=False))]]
        assert capped[1][lam] == pytest.approx(per.loc[sample].mean(), rel=1e-9), lam
    assert capped[1] != whole[1]
    assert choose_ease_lambda(enc, cutoff, 90, (3.0, 30.0, 300.0), max_customers=len(rows)) == whole


def test_fit_on_an_encoding_equals_fit_on_the_tables(shop, base):
    """``fit(Encoded)`` (what train_recommender does, so that the tables can be dropped) is ``fit(tables)``;
    tables beside an encoding, another as-of date or an encoding a fit has used are refused."""
    enc = Encoded(shop["orders"], shop["products"], shop["sessions"], AS_OF)
    m = Recommender(candidates=CFG, n_estimators=20, min_child_samples=10, ease_lambdas=(30.0, 300.0))
    _assert_same_model(base, m.fit(enc, training_cutoffs=2))
    assert m.as_of_ == AS_OF
    with pytest.raises(ValueError, match="products and sessions are in the encoding"):
        m.fit(enc, shop["products"], training_cutoffs=2)
    with pytest.raises(ValueError, match="differs from the encoding"):
        m.fit(enc, as_of=AS_OF - pd.Timedelta(days=1), training_cutoffs=2)
    # the fit released the encoding's events before the lists (2 GB at 1M customers): one fit per encoding
    assert enc.events_released and len(enc.t) == 0 and len(enc.s_t) == 0 and len(enc.cust_ids) == len(m.cust_ids_)
    with pytest.raises(ValueError, match="events were released by a fit"):
        m.fit(enc, training_cutoffs=2)


def test_compact_workspace_inputs_give_the_same_model(shop, base, tmp_path):
    ws = Workspace(tmp_path / "ws")
    for name in ("orders", "products", "sessions"):
        write_parquet_atomic(shop[name], ws.table_path(name))
    since = Recommender(cutoff_step_days=30).sessions_since(AS_OF, 90, 2)
    assert since == AS_OF - pd.Timedelta(days=90 + 2 * 30 + 30)
    orders, products, sessions = recommender_inputs(ws, compact=True, sessions_since=since)
    assert list(orders.columns) == ["order_id", "customer_id", "product_id", "quantity", "unit_price",
                                    "ordered_at", "is_return"]
    assert orders["order_id"].dtype == np.int64 and isinstance(orders["customer_id"].dtype, pd.CategoricalDtype)
    full = shop["sessions"]
    want = full[full["event_type"].isin(["view", "add_to_cart"]) & (full["occurred_at"] >= since)]
    assert len(sessions) == len(want) < len(full)
    assert set(sessions["event_type"].astype(str)) == {"view", "add_to_cart"}
    _assert_same_model(base, _fit(shop, orders=orders, sessions=sessions))
    # the plain call still returns the conformed tables
    o, _, s = recommender_inputs(ws)
    assert o["customer_id"].dtype == "string" and len(s) == len(full)


def test_compact_order_codes_follow_first_appearance_across_row_groups(shop, tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    ws = Workspace(tmp_path / "ws")
    path = ws.table_path("orders")
    path.parent.mkdir(parents=True, exist_ok=True)
    orders = shop["orders"]
    pq.write_table(pa.Table.from_pandas(orders, preserve_index=False), path, row_group_size=97)
    assert pq.ParquetFile(path).num_row_groups > 3  # order ids span row groups with their own dictionaries
    got = recommender_inputs(ws, compact=True)[0]["order_id"].to_numpy()
    want, _ = pd.factorize(orders["order_id"].astype(str))
    assert got.dtype == np.int64
    np.testing.assert_array_equal(got, want)


def test_cap_setting_reaches_the_model_and_the_demo_default_is_not_reached():
    cfg = RecommenderSettings()
    assert cfg.max_training_customers == 10_000  # the 20k-customer demo shop has 3.8k-4.5k buyers per cutoff
    assert build_recommender(cfg).max_training_customers == 10_000
    assert build_recommender(RecommenderSettings(max_training_customers=None)).max_training_customers is None
    with pytest.raises(ValueError):
        RecommenderSettings(max_training_customers=0)
