"""Ranking metrics and the paired bootstrap on hand-made lists, with values worked out by hand."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from training.recommend.metrics import (catalog_coverage, paired_bootstrap_diff, per_customer_metrics,
                                        ranking_metrics)


def _recs(lists: dict[str, list[str]]) -> pd.DataFrame:
    rows = [(c, r, p) for c, items in lists.items() for r, p in enumerate(items, 1)]
    return pd.DataFrame(rows, columns=["customer_id", "rank", "product_id"])


def _truth(pairs: dict[str, list[str]]) -> pd.DataFrame:
    return pd.DataFrame([(c, p) for c, items in pairs.items() for p in items], columns=["customer_id", "product_id"])


RECS = _recs({"A": ["p1", "p2", "p3"], "B": ["p4", "p5"], "C": ["p1"], "D": ["p9", "p1", "p2"]})
# A: one of two relevant at rank 2; B: relevant at ranks 1 and 2 (and one more not listed);
# E: relevant but no list; C: a list but nothing relevant (not counted); D: hit at rank 3 only.
TRUTH = _truth({"A": ["p2", "p4"], "B": ["p4", "p5", "p6"], "D": ["p2"], "E": ["p1"]})


def test_per_customer_values_by_hand():
    per = per_customer_metrics(RECS, TRUTH, k=10).set_index("customer_id")
    assert sorted(per.index) == ["A", "B", "D", "E"]
    g = lambda r: 1 / math.log2(r + 1)  # noqa: E731
    # A: hit at rank 2, ideal has 2 relevant at ranks 1, 2
    assert per.loc["A", "ndcg"] == pytest.approx(g(2) / (g(1) + g(2)))
    assert per.loc["A", "recall"] == pytest.approx(0.5)
    assert per.loc["A", "hit_rate"] == 1.0
    assert per.loc["A", "map"] == pytest.approx((1 / 2) / 2)
    # B: hits at ranks 1 and 2 of 3 relevant
    assert per.loc["B", "ndcg"] == pytest.approx((g(1) + g(2)) / (g(1) + g(2) + g(3)))
    assert per.loc["B", "recall"] == pytest.approx(2 / 3)
    assert per.loc["B", "map"] == pytest.approx((1 + 1) / 3)
    # D: one relevant found at rank 3
    assert per.loc["D", "ndcg"] == pytest.approx(g(3))
    assert per.loc["D", "map"] == pytest.approx(1 / 3)
    # E: nothing recommended
    assert per.loc["E", ["ndcg", "recall", "hit_rate", "map"]].tolist() == [0.0, 0.0, 0.0, 0.0]


def test_cutoff_k_and_means():
    per = per_customer_metrics(RECS, TRUTH, k=2).set_index("customer_id")
    assert per.loc["D", "hits"] == 0  # rank 3 is beyond k = 2
    # B at k = 2: ideal DCG has min(k, 3) = 2 relevant ranks; MAP divides by 2
    assert per.loc["B", "ndcg"] == pytest.approx(1.0)
    assert per.loc["B", "map"] == pytest.approx(1.0)
    m = ranking_metrics(RECS, TRUTH, k=2, catalog_size=10)
    assert m["n_customers"] == 4
    assert m["hit_rate@2"] == pytest.approx(2 / 4)
    assert m["recall@2"] == pytest.approx((0.5 + 2 / 3) / 4)
    assert m["coverage@2"] == pytest.approx(len({"p1", "p2", "p4", "p5", "p9"}) / 10)


def test_duplicates_are_counted_once():
    recs = _recs({"A": ["p2", "p2", "p4"]})
    per = per_customer_metrics(recs, _truth({"A": ["p2", "p2"]}), k=10).set_index("customer_id")
    assert per.loc["A", "n_relevant"] == 1
    assert per.loc["A", "ndcg"] == pytest.approx(1.0)


def test_catalog_coverage():
    assert catalog_coverage(RECS, 20, k=1) == pytest.approx(len({"p1", "p4", "p9"}) / 20)
    assert math.isnan(catalog_coverage(RECS, 0))


def test_paired_bootstrap():
    idx = pd.Index([f"c{i}" for i in range(200)])
    rng = np.random.default_rng(1)
    b = pd.Series(rng.random(200), index=idx)
    same = paired_bootstrap_diff(b, b, n_boot=200)
    assert same["diff"] == 0.0 and same["ci_low"] == 0.0 and same["ci_high"] == 0.0 and not same["excludes_zero"]
    better = paired_bootstrap_diff(b + 0.1 + 0.01 * rng.standard_normal(200), b, n_boot=200)
    assert better["excludes_zero"] and better["ci_low"] > 0.05
    # only customers in both series are paired
    part = paired_bootstrap_diff(b.iloc[:50] + 1.0, b, n_boot=50)
    assert part["n"] == 50 and part["diff"] == pytest.approx(1.0)
