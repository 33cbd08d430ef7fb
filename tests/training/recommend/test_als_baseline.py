"""The implicit ALS baseline: on the tiny hand-made shop of test_recommender.py (see its docstring) and,
where the tuning needs buyers in the earlier window, on a small synthetic shop."""

from __future__ import annotations

import pickle

import numpy as np
import pandas as pd
import pytest

from training.recommend import ALSRecommender, choose_als_params
from training.recommend.baselines import ALS_GRID, als_grid, baseline_models
from training.recommend.data import Encoded

from tests.training.recommend.test_recommender import ORDER_ROWS, PRODUCTS, T, make_orders

BOUGHT = {("A", "P1"), ("A", "P3"), ("A", "P5"), ("B", "P1"), ("B", "P3"), ("B", "P4"),
          ("C", "P3"), ("C", "P4"), ("D", "P6")}
FIXED = {"factors": 2, "regularization": 0.01, "alpha": 1.0}  # tiny shop: small regularization
GRID = {"factors": (2, 4), "regularization": (0.01, 0.1), "alpha": (1.0,)}
AS_OF = pd.Timestamp("2023-04-01", tz="UTC")


@pytest.fixture(scope="module")
def shop() -> dict[str, pd.DataFrame]:
    from features.synthetic import synthesize_shop

    return synthesize_shop(customers=200, products=40, seed=5, start="2022-01-01", end="2023-06-01")


def test_discovery_never_repeats_a_purchase():
    m = ALSRecommender(min_buyers=1, **FIXED).fit(make_orders(), PRODUCTS, as_of=T)
    assert m.param_scores_ == []  # everything given: no tuning
    assert m.params_ == {"all": FIXED, "discovery": FIXED}
    disc = m.recommend_batch(["A", "B", "C", "D"], k=10, list="discovery")
    assert not BOUGHT & set(zip(disc["customer_id"], disc["product_id"]))
    # padded with what is left: 5 items sold before T (P2 only by a guest) minus the customer's own
    assert disc.groupby("customer_id").size().to_dict() == {"A": 2, "B": 2, "C": 3, "D": 4}
    assert (disc["reason"] == "ALS").all()
    # C bought P3 and P4, like B who also bought P1: P1 is C's first new item
    assert disc.loc[disc["customer_id"] == "C", "product_id"].iloc[0] == "P1"
    every = m.recommend_batch(["A", "C", "nobody"], k=3)
    assert set(every.loc[every["customer_id"] == "A", "product_id"]) == {"P1", "P3", "P5"}  # own items first
    assert every.loc[every["customer_id"] == "nobody", "product_id"].tolist() == ["P3", "P1", "P4"]  # popularity


def test_deterministic(shop):
    kw = dict(grid=GRID, iterations=5)
    a = ALSRecommender(**kw).fit(shop["orders"], shop["products"], as_of=AS_OF)
    b = ALSRecommender(**kw).fit(shop["orders"], shop["products"], as_of=AS_OF)
    assert a.params_ == b.params_ and a.param_scores_ == b.param_scores_
    customers = list(a.enc_.cust_ids[:50]) + ["nobody"]
    for lst in ("all", "discovery"):
        pd.testing.assert_frame_equal(a.recommend_batch(customers, 10, list=lst),
                                      b.recommend_batch(customers, 10, list=lst))
    back = pickle.loads(pickle.dumps(a))
    pd.testing.assert_frame_equal(back.recommend_batch(customers, 10), a.recommend_batch(customers, 10))


def test_orders_at_or_after_as_of_change_nothing(shop):
    # tiny shop, fixed parameters
    later = ORDER_ROWS + [("O10", "A", "P2", "2024-04-01"), ("O11", "E", "P4", "2024-04-01"),
                          ("O12", "B", "P6", "2024-05-01")]
    a = ALSRecommender(min_buyers=1, **FIXED).fit(make_orders(), PRODUCTS, as_of=T)
    b = ALSRecommender(min_buyers=1, **FIXED).fit(make_orders(later), PRODUCTS, as_of=T)
    for lst in ("all", "discovery"):
        pd.testing.assert_frame_equal(a.recommend_batch(list("ABCDE"), 10, list=lst),
                                      b.recommend_batch(list("ABCDE"), 10, list=lst))
    # synthetic shop, tuned: the orders on or after as_of are dropped (tuning included)
    orders = shop["orders"]
    before = orders[orders["ordered_at"] < AS_OF]
    assert len(before) < len(orders)
    kw = dict(grid=GRID, iterations=5)
    a = ALSRecommender(**kw).fit(orders, shop["products"], as_of=AS_OF)
    b = ALSRecommender(**kw).fit(before, shop["products"], as_of=AS_OF)
    assert a.params_ == b.params_ and a.param_scores_ == b.param_scores_
    customers = list(a.enc_.cust_ids[:50])
    for lst in ("all", "discovery"):
        pd.testing.assert_frame_equal(a.recommend_batch(customers, 10, list=lst),
                                      b.recommend_batch(customers, 10, list=lst))


def test_parameters_are_chosen_on_the_earlier_cutoff(shop):
    H = 90
    m = ALSRecommender(grid=GRID, iterations=5).fit(shop["orders"], shop["products"], as_of=AS_OF, horizon_days=H)
    earlier = AS_OF - pd.Timedelta(days=H)
    # the same choice from the data before as_of, scored at as_of - H
    best, table = choose_als_params(Encoded(shop["orders"], shop["products"], None, AS_OF), earlier, H, GRID,
                                    iterations=5)
    assert m.params_ == best and m.param_scores_ == table
    assert len(table) == 4 and {(r["factors"], r["regularization"]) for r in table} == {(2, 0.01), (2, 0.1),
                                                                                         (4, 0.01), (4, 0.1)}
    for lst in ("all", "discovery"):
        ndcg = [r[lst] for r in table]
        assert all(0.0 <= v <= 1.0 for v in ndcg)
        chosen = next(r for r in table if all(r[p] == best[lst][p] for p in ("factors", "regularization", "alpha")))
        assert chosen[lst] == max(ndcg)
    # the tuning reads nothing after earlier + H = as_of: the orders after as_of change nothing
    cut = shop["orders"][shop["orders"]["ordered_at"] < AS_OF]
    assert choose_als_params(Encoded(cut, shop["products"], None, AS_OF + pd.Timedelta(days=60)), earlier, H, GRID,
                             iterations=5) == (best, table)
    # a given value fixes its axis; the others are still tuned
    m2 = ALSRecommender(factors=4, grid=GRID, iterations=5).fit(shop["orders"], shop["products"], as_of=AS_OF)
    assert {r["factors"] for r in m2.param_scores_} == {4} and len(m2.param_scores_) == 2


def test_grid_and_defaults_without_anything_to_score():
    assert len(als_grid(ALS_GRID)) == 8
    assert als_grid(ALS_GRID, factors=16, regularization=1.0, alpha=2.0) == [
        {"factors": 16, "regularization": 1.0, "alpha": 2.0}]
    # the tiny shop before as_of - 90 d: no item with 2 buyers -> the default parameters, no scores
    m = ALSRecommender().fit(make_orders(), PRODUCTS, as_of=T)
    assert m.param_scores_ == []
    assert m.params_["all"] == m.params_["discovery"] == {"factors": 64, "regularization": 10.0, "alpha": 1.0}


def test_als_is_among_the_evaluated_baselines():
    models = baseline_models(knn=False)
    assert isinstance(models["ALS"], ALSRecommender)
    assert "ALS" not in baseline_models(als=False)
    from evaluation.recommendations import baseline_models as evaluated

    assert list(evaluated()) == list(baseline_models()) == ["popularity", "own history", "EASE", "ALS", "item-kNN"]
