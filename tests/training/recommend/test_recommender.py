"""The recommender, its candidates and the baselines on a tiny hand-made shop (values worked out by hand).

as_of T = 2024-04-01 00:00 UTC. All orders at 00:00; days before T in brackets.

    A  O1 2024-01-01 (91)  P1, P3        A  O2 2024-02-01 (60)  P1        A  O3 2024-03-01 (31)  P1, P5
    B  O4 2024-03-10 (22)  P1, P3        B  O5 2024-03-20 (12)  P3, P4    B  R1 2024-03-25 return of P4
    C  O6 2024-03-15 (17)  P3, P4        C  O7 2024-03-25 (7)   P4
    D  O8 2023-10-01 (183) P6            guest O9 2024-03-30 P2 (no customer: ignored)
products: P1, P2 tea; P3, P4 coffee; P5, P6 cups

- 90-day buyers: P1 {A, B}, P3 {B, C}, P4 {B, C}, P5 {A}; all-time: P3 {A, B, C}, P1 {A, B}, P4 {B, C}, P5, P6.
  Popularity: P3, P1, P4 (tie with P1 broken by id), P5, P6.
- P1's repurchase interval: A's gaps 31 and 29 days, median 30; A last bought it 31 days before T.
- Baskets with P3: O1, O4, O5, O6; with P4: O5, O6, O7; with P1: O1, O2, O3, O4. Bought together with P3:
  P4 (2 / sqrt(4 * 3) = 0.577), P1 (2 / sqrt(4 * 4) = 0.5).
- Buyers: P3 {A, B, C}, P1 {A, B}, P4 {B, C}: similar to P3 are P1 and P4, both 2 / sqrt(6) = 0.816.
- Trending (purchases with a two-week half-life): P4 1.69, P3 1.33, P1 0.61, P5 0.22, P6 ~0.
"""

from __future__ import annotations

import pickle

import numpy as np
import pandas as pd
import pytest

from training.recommend import (EASERecommender, ItemKNNRecommender, OwnHistoryRecommender, PopularityRecommender,
                                Recommender)
from training.recommend.candidates import CandidateBuilder, CandidateConfig, fit_cutoff_models
from training.recommend.data import Encoded, Snapshot

T = pd.Timestamp("2024-04-01", tz="UTC")

ORDER_ROWS = [
    ("O1", "A", "P1", "2024-01-01"), ("O1", "A", "P3", "2024-01-01"), ("O2", "A", "P1", "2024-02-01"),
    ("O3", "A", "P1", "2024-03-01"), ("O3", "A", "P5", "2024-03-01"),
    ("O4", "B", "P1", "2024-03-10"), ("O4", "B", "P3", "2024-03-10"), ("O5", "B", "P3", "2024-03-20"),
    ("O5", "B", "P4", "2024-03-20"),
    ("O6", "C", "P3", "2024-03-15"), ("O6", "C", "P4", "2024-03-15"), ("O7", "C", "P4", "2024-03-25"),
    ("O8", "D", "P6", "2023-10-01"), ("O9", None, "P2", "2024-03-30"),
]


def make_orders(rows=ORDER_ROWS, returns=(("R1", "B", "P4", "2024-03-25"),)) -> pd.DataFrame:
    recs = [(o, c, p, 1.0, 10.0, d, False) for o, c, p, d in rows] + [(o, c, p, -1.0, 10.0, d, True)
                                                                     for o, c, p, d in returns]
    df = pd.DataFrame(recs, columns=["order_id", "customer_id", "product_id", "quantity", "unit_price",
                                     "ordered_at", "is_return"])
    df["amount"] = df["quantity"] * df["unit_price"]
    for col in ("order_id", "customer_id", "product_id"):
        df[col] = df[col].astype("string")
    df["ordered_at"] = pd.to_datetime(df["ordered_at"], utc=True).astype("datetime64[us, UTC]")
    return df[["order_id", "customer_id", "product_id", "quantity", "unit_price", "amount", "ordered_at",
               "is_return"]]


PRODUCTS = pd.DataFrame({
    "product_id": pd.array(["P1", "P2", "P3", "P4", "P5", "P6"], dtype="string"),
    "name": ["Green tea", "Black tea", "Espresso", "Filter coffee", "Mug", "Saucer"],
    "category": ["tea", "tea", "coffee", "coffee", "cups", "cups"],
    "unit_price": [10.0] * 6,
})


@pytest.fixture(scope="module")
def model() -> Recommender:
    return Recommender(use_ranker=False).fit(make_orders(), PRODUCTS, as_of=T)


def ids(recs) -> list[str]:
    return [r[0] for r in recs]


# -- baselines ---------------------------------------------------------------------------------
def test_popularity_baseline_order():
    m = PopularityRecommender().fit(make_orders(), PRODUCTS, as_of=T)
    df = m.recommend_batch(["A", "nobody"], k=10)
    for c in ("A", "nobody"):
        assert df.loc[df["customer_id"] == c, "product_id"].tolist() == ["P3", "P1", "P4", "P5", "P6"]
    assert df.loc[df["customer_id"] == "A", "rank"].tolist() == [1, 2, 3, 4, 5]


def test_own_history_baseline_order_and_padding():
    m = OwnHistoryRecommender().fit(make_orders(), PRODUCTS, as_of=T)
    # most orders first (P1: 3), ties by recency (P5 31 days before P3 91 days), then popularity
    assert ids(m.recommend("A", k=5)) == ["P1", "P5", "P3", "P4", "P6"]
    assert ids(m.recommend("A", k=5, list="discovery")) == ["P4", "P6"]
    assert ids(m.recommend("C", k=3)) == ["P4", "P3", "P1"]


def test_knn_and_ease_baselines_never_repeat_in_discovery():
    orders = make_orders()
    for m in (ItemKNNRecommender(), EASERecommender(lam=10.0)):
        m.fit(orders, PRODUCTS, as_of=T)
        df = m.recommend_batch(["A", "B", "C", "D"], k=10, list="discovery")
        bought = {("A", "P1"), ("A", "P3"), ("A", "P5"), ("B", "P1"), ("B", "P3"), ("B", "P4"),
                  ("C", "P3"), ("C", "P4"), ("D", "P6")}
        assert not bought & set(zip(df["customer_id"], df["product_id"]))
        assert (df.groupby("customer_id").size() > 0).all()
    # item-kNN for C (bought P3, P4): P1 shares buyers with P3 -> first
    assert ids(ItemKNNRecommender().fit(orders, PRODUCTS, as_of=T).recommend("C", 1, list="discovery")) == ["P1"]


# -- candidate features ------------------------------------------------------------------------
def test_own_history_features_against_repurchase_interval():
    enc = Encoded(make_orders(), PRODUCTS, None, T)
    snap = Snapshot(enc, T, 90)
    p1 = enc.item_index["P1"]
    assert snap.item_interval[p1] == pytest.approx(30.0)
    cfg = CandidateConfig()
    df = CandidateBuilder(snap, fit_cutoff_models(snap, 10.0, cfg), cfg).build([int(np.flatnonzero(enc.cust_ids == "A")[0])])
    row = df.loc[df["item"] == p1].iloc[0]
    assert row["bought"] == 1 and row["n_orders"] == 3
    assert row["order_share"] == pytest.approx(1.0)
    assert row["days_since_last"] == pytest.approx(31.0)
    assert row["days_since_first"] == pytest.approx(91.0)
    assert row["own_gap"] == pytest.approx(30.0)
    assert row["since_last_vs_interval"] == pytest.approx(31 / 30, rel=1e-6)
    assert row["n_recent"] == 2  # orders within 90 days: 60 and 31 days before
    # an item A never bought is a candidate without own-history values
    p4 = df.loc[df["item"] == enc.item_index["P4"]].iloc[0]
    assert p4["bought"] == 0 and np.isnan(p4["days_since_last"])
    assert p4["s_together"] > 0  # bought together with P3, which A bought


def test_snapshot_ignores_returns_and_guests():
    enc = Encoded(make_orders(), PRODUCTS, None, T)
    snap = Snapshot(enc, T, 90)
    assert "guest" not in set(enc.cust_ids) and len(enc.cust_ids) == 4
    assert snap.buyers_all[enc.item_index["P2"]] == 0  # only a guest bought it
    assert snap.buyers_pop[enc.item_index["P4"]] == 2


# -- the recommender ---------------------------------------------------------------------------
def test_all_list_starts_with_own_history_with_reasons(model):
    res = model.recommend("A", k=3)
    assert res.customer_known and res.source == "personal"
    assert ids(res) == ["P1", "P5", "P3"]
    assert [r.reason for r in res] == ["bought before (3 times)", "bought before (once)", "bought before (once)"]
    scores = [r.score for r in res]
    assert scores == sorted(scores, reverse=True)


def test_discovery_list_never_contains_bought_items(model):
    bought = {"A": {"P1", "P3", "P5"}, "B": {"P1", "P3", "P4"}, "C": {"P3", "P4"}, "D": {"P6"}}
    for c, items in bought.items():
        res = model.recommend(c, k=10, list="discovery")
        assert not items & set(ids(res)), c
        assert not items & set(ids(model.recommend(c, k=10, exclude_purchased=True))), c
    df = model.recommend_batch(list(bought), k=10, list="discovery")
    assert not {(c, p) for c, s in bought.items() for p in s} & set(zip(df["customer_id"], df["product_id"]))
    first = model.recommend("A", k=1, list="discovery")[0]
    assert first.product_id == "P4" and first.reason == "often bought with Espresso"


def test_filters(model):
    assert "P1" not in ids(model.recommend("A", k=10, exclude_product_ids=["P1"]))
    coffee = model.recommend("A", k=10, categories=["coffee"])
    assert set(ids(coffee)) == {"P3", "P4"}
    assert ids(coffee)[0] == "P3"  # bought before ranks first
    recent = ids(model.recommend("D", k=10, sold_within_days=90))
    assert "P6" not in recent and recent  # P6 last sold 183 days before T
    assert "P6" in ids(model.recommend("D", k=10))
    assert ids(model.recommend("A", k=10, exclude_purchased=True))[0] == "P4"
    with pytest.raises(ValueError, match="PX.*PY|PY.*PX"):
        model.recommend("A", exclude_product_ids=["P1", "PX", "PY"])
    with pytest.raises(ValueError, match="PZ"):
        model.recommend("nobody", context_product_ids=["PZ"])
    with pytest.raises(ValueError, match="shoes"):
        model.recommend("A", categories=["shoes"])
    with pytest.raises(ValueError, match="list"):
        model.recommend("A", list="everything")


def test_cold_start(model):
    res = model.recommend("nobody", k=3)
    assert not res.customer_known and res.source == "trending"
    assert ids(res) == ["P4", "P3", "P1"]
    assert {r.reason for r in res} == {"trending"}
    ctx = model.recommend("nobody", k=3, context_product_ids=["P3"])
    assert ctx.source == "bought_together" and not ctx.customer_known
    assert ids(ctx)[:2] == ["P4", "P1"]  # basket cosine 0.577 and 0.5
    assert [r.reason for r in ctx][:2] == ["often bought with Espresso"] * 2
    assert "P3" not in ids(ctx) and len(ctx) == 3 and ctx.padded == 1
    cat = model.recommend(None, k=2, categories=["cups"])
    assert ids(cat) == ["P5", "P6"] and cat[0].reason == "popular in category cups"


def test_similar_items_and_bought_together(model):
    sim = model.similar_items("P3", k=5)
    assert [p for p, _ in sim] == ["P1", "P4"]
    assert [s for _, s in sim] == pytest.approx([2 / np.sqrt(6)] * 2, rel=1e-5)
    bt = model.bought_together(["P3"], k=5)
    assert [p for p, _, _ in bt] == ["P4", "P1"]
    assert [s for _, s, _ in bt] == pytest.approx([2 / np.sqrt(12), 0.5], rel=1e-5)
    assert bt[0][2] == "often bought with Espresso"
    with pytest.raises(ValueError, match="NOPE"):
        model.similar_items("NOPE")
    with pytest.raises(ValueError, match="NOPE"):
        model.bought_together(["P3", "NOPE"])


def test_recommend_batch_frame(model):
    df = model.recommend_batch(["A", "nobody"], k=3)
    assert list(df.columns) == ["customer_id", "rank", "product_id", "score", "reason"]
    assert df["rank"].tolist() == [1, 2, 3, 1, 2, 3]
    assert df.loc[df["customer_id"] == "A", "product_id"].tolist() == ["P1", "P5", "P3"]


def test_orders_at_or_after_as_of_change_nothing(model):
    later = ORDER_ROWS + [("O10", "A", "P2", "2024-04-01"), ("O11", "E", "P4", "2024-04-01"),
                          ("O12", "B", "P6", "2024-05-01")]
    m2 = Recommender(use_ranker=False).fit(make_orders(later), PRODUCTS, as_of=T)
    for lst in ("all", "discovery"):
        a = model.recommend_batch(["A", "B", "C", "D", "E"], k=10, list=lst)
        b = m2.recommend_batch(["A", "B", "C", "D", "E"], k=10, list=lst)
        pd.testing.assert_frame_equal(a, b)
    assert not m2.recommend("E").customer_known
    for m in (PopularityRecommender(), OwnHistoryRecommender()):
        a = m.fit(make_orders(), PRODUCTS, as_of=T).recommend_batch(["A", "B"], 10)
        b = m.fit(make_orders(later), PRODUCTS, as_of=T).recommend_batch(["A", "B"], 10)
        pd.testing.assert_frame_equal(a, b)


def test_pickle_round_trip(model):
    back = pickle.loads(pickle.dumps(model))
    for c in ("A", "B", "nobody"):
        assert list(back.recommend(c, k=5)) == list(model.recommend(c, k=5))
    assert back.similar_items("P3") == model.similar_items("P3")


def test_progress_and_not_fitted():
    msgs: list[str] = []
    Recommender(use_ranker=False).fit(make_orders(), PRODUCTS, as_of=T, progress=msgs.append)
    assert msgs and any("lists" in m for m in msgs)
    with pytest.raises(RuntimeError, match="fit"):
        Recommender().recommend("A")


def test_lambdarank_on_a_small_synthetic_shop():
    from features.synthetic import synthesize_shop

    shop = synthesize_shop(customers=300, products=60, seed=3, start="2022-01-01", end="2023-04-01")
    as_of = pd.Timestamp("2023-04-01", tz="UTC")
    cfg = CandidateConfig(n_own=30, n_together=15, n_similar=15, n_ease=15, n_popular=10)
    m = Recommender(candidates=cfg, n_estimators=30, min_child_samples=10, n_jobs=1, ease_lambdas=(30.0, 300.0))
    m.fit(shop["orders"], shop["products"], shop["sessions"], as_of=as_of, training_cutoffs=2)
    assert m.fit_info_["ranker"] == "lambdarank"
    assert m.fit_info_["has_sessions"] and m.fit_info_["has_categories"]
    d = m.fit_info_["discovery"]  # discovery trees: 15 leaves, min_child_samples capped by the rows
    assert d["num_leaves"] == 15 and d["min_child_samples"] == min(200, d["train_rows"] // 30)
    assert m.ranker_discovery_.get_params()["min_child_samples"] == d["min_child_samples"]
    assert m.fit_info_["all"]["num_leaves"] == 31 and m.fit_info_["all"]["min_child_samples"] == 10
    known = [c for c in m.cust_ids_[:20]]
    df = m.recommend_batch(known, k=10, list="discovery")
    seen = shop["orders"].loc[(shop["orders"]["ordered_at"] < as_of) & ~shop["orders"]["is_return"],
                              ["customer_id", "product_id"]].astype(str)
    assert not set(zip(df["customer_id"], df["product_id"])) & set(zip(seen["customer_id"], seen["product_id"]))
    n_seen = seen.groupby("customer_id")["product_id"].nunique()
    n_sold = seen["product_id"].nunique()
    sizes = df.groupby("customer_id").size()
    assert (sizes == np.minimum(10, n_sold - n_seen.reindex(sizes.index))).all()  # padded up to what is left
    assert df["reason"].str.len().gt(0).all()
    back = pickle.loads(pickle.dumps(m))
    assert list(back.recommend(known[0])) == list(m.recommend(known[0]))
    # the lists scored with two threads are the same lists, scores included
    two = pickle.loads(pickle.dumps(m))
    two.predict_jobs = 2
    two.refresh(shop["orders"], shop["products"], shop["sessions"], as_of=as_of)
    for name in ("all", "discovery"):
        for attr in ("ptr", "items", "scores", "code", "arg"):
            assert np.array_equal(getattr(two, f"{name}_{attr}_"), getattr(m, f"{name}_{attr}_")), (name, attr)


def test_refresh_recomputes_lists_as_of_a_new_date_without_learning():
    earlier = pd.Timestamp("2024-03-16", tz="UTC")
    refreshed = Recommender(use_ranker=False, ease_lambdas=(50.0,)).fit(make_orders(), PRODUCTS, as_of=T)
    refreshed.refresh(make_orders(), PRODUCTS, as_of=earlier)
    fresh = Recommender(use_ranker=False, ease_lambdas=(50.0,)).fit(make_orders(), PRODUCTS, as_of=earlier)
    assert refreshed.as_of_ == earlier
    for cust in ("A", "B", "C", "D", "nobody"):
        for lst in ("all", "discovery"):
            assert list(refreshed.recommend(cust, 4, list=lst)) == list(fresh.recommend(cust, 4, list=lst)), (cust, lst)
    # at the earlier date C has only O6 (P3, P4 on 2024-03-15); O7 (P4 again, 2024-03-25) is not seen
    top = refreshed.recommend("C", 2)
    assert top.customer_known and {r.product_id for r in top} == {"P3", "P4"}
    assert [r.reason for r in top] == ["bought before (once)"] * 2
    with pytest.raises(RuntimeError, match="not fitted"):
        Recommender().refresh(make_orders(), PRODUCTS, as_of=T)


# -- lapsed customers and batches ---------------------------------------------------------------
@pytest.fixture(scope="module")
def lapsed_model() -> Recommender:
    """lookback_days=30: A (last order 31 days before T) and D (183 days) are lapsed, B (12) and C (7) not."""
    return Recommender(use_ranker=False, lookback_days=30).fit(make_orders(), PRODUCTS, as_of=T)


def test_lapsed_customers_get_no_list_but_items_bought_with_their_history(lapsed_model, model):
    m = lapsed_model
    for c in ("A", "D"):
        row = m.cust_index_[c]
        assert m.all_ptr_[row] == m.all_ptr_[row + 1] and m.discovery_ptr_[row] == m.discovery_ptr_[row + 1], c
    # A bought P1, P3, P5: of their "bought together" neighbours only P4 (with P3, 0.577) is new to A;
    # then trending (P4, P3, P1, P5, P6), bought items left out of the discovery list
    res = m.recommend("A", k=3)
    assert res.customer_known and res.source == "history" and res.padded == 2
    assert ids(res) == ["P4", "P3", "P1"]
    assert [r.reason for r in res] == ["often bought with Espresso", "trending", "trending"]
    assert res[0].score == pytest.approx(2 / np.sqrt(12), rel=1e-5)
    assert ids(m.recommend("A", k=3, list="discovery")) == ["P4", "P6"]
    # D bought only P6, which no order shares: trending
    d = m.recommend("D", k=2)
    assert d.source == "history" and ids(d) == ["P4", "P3"] and d.padded == 2
    # customers within the lookback keep the lists of the model that lists everyone
    for c in ("B", "C"):
        for lst in ("all", "discovery"):
            mine, full = m.recommend(c, k=10, list=lst), model.recommend(c, k=10, list=lst)
            assert mine.source == "personal" and list(mine) == list(full), (c, lst)


@pytest.mark.parametrize("k", [0, 1, 3, 10])
@pytest.mark.parametrize("lst", ["all", "discovery"])
def test_recommend_batch_is_recommend_for_each_customer(lapsed_model, model, k, lst):
    customers = ["C", "A", "nobody", "B", "D", "C"]  # personal, lapsed, unknown, a repeat
    for m in (lapsed_model, model):
        got = m.recommend_batch(customers, k, list=lst)
        want = pd.DataFrame([(c, r, *rec) for c in customers for r, rec in enumerate(m.recommend(c, k, list=lst), 1)],
                            columns=["customer_id", "rank", "product_id", "score", "reason"])
        want = want.astype({"customer_id": "string", "rank": "int64", "product_id": "string", "score": "float64",
                            "reason": "string"})
        pd.testing.assert_frame_equal(got, want)
    with pytest.raises(ValueError, match="k must be"):
        model.recommend_batch(["A"], -1)


def test_fit_reports_the_lists_progress():
    said: list[str] = []
    m = Recommender(use_ranker=False, lookback_days=30, build_chunk=1)
    m.fit(make_orders(), PRODUCTS, as_of=T, progress=said.append)
    assert said[-2:] == ["lists: snapshot and item-item models as of 2024-04-01 ready",
                         "lists: 2/2 customers with an order in the last 30 days"]


def test_recommendation_tables_in_chunks_equal_one_batch(lapsed_model):
    from training.recommend_pipeline import recommendation_tables

    customers = ["A", "B", "nobody", "C", "D"]
    for name, lst in (("recommendations", "all"), ("recommendations_discovery", "discovery")):
        parts = list(recommendation_tables(lapsed_model, customers, 3, chunk=2)[name])
        assert len(parts) == 3
        pd.testing.assert_frame_equal(pd.concat(parts, ignore_index=True),
                                      lapsed_model.recommend_batch(customers, 3, list=lst))
    (empty,) = recommendation_tables(lapsed_model, [], 3)["recommendations"]
    assert empty.empty and list(empty.columns) == ["customer_id", "rank", "product_id", "score", "reason"]
