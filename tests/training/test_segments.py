"""Tests for training.segments: RFM scores and named segments, lifecycle stages, value tiers, ABC classes and
behavioural clusters, each on small hand-made frames whose answers are worked out by hand."""

from __future__ import annotations

import pickle

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.exceptions import NotFittedError

from training.segments import (
    OUTPUT_COLUMNS,
    PREFIX,
    SEGMENT_GRID,
    SEGMENT_NAMES,
    VALUE_TIERS,
    SegmentModel,
    lifecycle_stage,
)

P = PREFIX


def frame(n: int, **cols) -> pd.DataFrame:
    """A customer frame of ``n`` rows: the given features (short names) and plain defaults for the others."""
    base = {
        "recency_days": np.full(n, 10.0),
        "tenure_days": np.full(n, 400.0),
        "frequency_365d": np.full(n, 2.0),
        "frequency_lifetime": np.full(n, 3.0),
        "monetary_365d": np.full(n, 100.0),
        "ipi_mean_days": np.full(n, 60.0),
    }
    base.update({k: np.asarray(v, dtype=float) for k, v in cols.items()})
    return pd.DataFrame({P + k: v for k, v in base.items()})


def rfm_frame() -> pd.DataFrame:
    """Ten customers, every RFM feature 1..10 (times 10 for money): quintile edges 2.8, 4.6, 6.4, 8.2 (x10)."""
    x = np.arange(1.0, 11.0)
    return frame(10, recency_days=x, frequency_365d=x, monetary_365d=10 * x)


# ------------------------------------------------------------------------------------------------------
# RFM scores
# ------------------------------------------------------------------------------------------------------


def test_rfm_scores_from_known_quintile_edges():
    X = rfm_frame()
    model = SegmentModel().fit(X)
    np.testing.assert_allclose(model.frequency_edges_, [2.8, 4.6, 6.4, 8.2])
    np.testing.assert_allclose(model.recency_edges_, [2.8, 4.6, 6.4, 8.2])
    np.testing.assert_allclose(model.monetary_edges_, [28.0, 46.0, 64.0, 82.0])
    out = model.transform(X)
    assert out["frequency_score"].tolist() == [1, 1, 2, 2, 3, 3, 4, 4, 5, 5]
    assert out["monetary_score"].tolist() == [1, 1, 2, 2, 3, 3, 4, 4, 5, 5]
    assert out["recency_score"].tolist() == [5, 5, 4, 4, 3, 3, 2, 2, 1, 1]  # low recency is good


def test_rfm_scores_with_heavy_ties():
    # 60% of customers have one order: edges 1, 1, 1.4, 3.2; every tied value gets the same score.
    f = [1, 1, 1, 1, 1, 1, 2, 3, 4, 5]
    X = frame(10, frequency_365d=f, recency_days=[30] * 6 + [1, 2, 3, 4])
    model = SegmentModel().fit(X)
    np.testing.assert_allclose(model.frequency_edges_, [1.0, 1.0, 1.4, 3.2])
    out = model.transform(X)
    assert out["frequency_score"].tolist() == [1, 1, 1, 1, 1, 1, 4, 4, 5, 5]
    # recency edges 2.8, 19.6, 30, 30: the six tied at 30 are above two edges -> R = 5 - 2 = 3
    np.testing.assert_allclose(model.recency_edges_, [2.8, 19.6, 30.0, 30.0])
    assert out["recency_score"].tolist() == [3, 3, 3, 3, 3, 3, 5, 5, 4, 4]


def test_rfm_scores_monotone_and_in_range_on_tied_random_data():
    rng = np.random.default_rng(3)
    n = 300
    f = np.where(rng.random(n) < 0.6, 1, rng.integers(2, 12, n))
    X = frame(n, frequency_365d=f, recency_days=rng.integers(0, 365, n), monetary_365d=rng.gamma(1.0, 80.0, n))
    out = SegmentModel().fit(X).transform(X)
    for col, feat, sign in (("frequency_score", "frequency_365d", 1), ("monetary_score", "monetary_365d", 1),
                            ("recency_score", "recency_days", -1)):
        s, x = out[col].to_numpy(), X[P + feat].to_numpy()
        assert s.min() >= 1 and s.max() <= 5
        order = np.argsort(sign * x, kind="stable")
        assert np.all(np.diff(s[order]) >= 0)
        for v in np.unique(x):
            assert len(np.unique(s[x == v])) == 1


def test_rfm_transform_uses_stored_edges_and_clips_out_of_range_values():
    model = SegmentModel().fit(rfm_frame())
    # Fitted on B alone every customer would get the same score; with A's edges they don't.
    B = frame(4, recency_days=[0, 5, 1000, np.nan], frequency_365d=[0, 5, 100, np.nan],
              monetary_365d=[-50, 50, 1e6, np.nan])
    out = model.transform(B)
    assert out["recency_score"].tolist() == [5, 3, 1, 1]
    assert out["frequency_score"].tolist() == [1, 3, 5, 1]
    assert out["monetary_score"].tolist() == [1, 3, 5, 1]
    same = frame(3, frequency_365d=[9, 9, 9])
    assert model.transform(same)["frequency_score"].tolist() == [5, 5, 5]


# ------------------------------------------------------------------------------------------------------
# Named segments
# ------------------------------------------------------------------------------------------------------


def test_segment_grid_covers_every_combination_with_the_eleven_names():
    assert set(SEGMENT_GRID) == {(r, fm) for r in range(1, 6) for fm in range(1, 6)}
    assert set(SEGMENT_GRID.values()) == set(SEGMENT_NAMES)
    assert len(SEGMENT_NAMES) == 11
    assert SEGMENT_GRID[(5, 5)] == "Champions"
    assert SEGMENT_GRID[(4, 5)] == "Champions"
    assert SEGMENT_GRID[(1, 5)] == "Cannot lose"
    assert SEGMENT_GRID[(1, 1)] == "Lost"
    assert SEGMENT_GRID[(5, 1)] == "New"
    assert SEGMENT_GRID[(4, 1)] == "Promising"
    assert SEGMENT_GRID[(3, 3)] == "Need attention"
    assert SEGMENT_GRID[(2, 2)] == "Hibernating"


def test_segment_uses_round_half_up_mean_of_f_and_m():
    model = SegmentModel().fit(rfm_frame())
    # (R, F, M) = (5, 5, 4) -> FM = round_half_up(4.5) = 5 -> Champions; (5, 1, 2) -> FM 2 -> Potential loyalist;
    # (1, 5, 5) -> Cannot lose; (1, 1, 1) -> Lost; (5, 1, 1) -> New.
    X = frame(5, recency_days=[1, 1, 10, 10, 1], frequency_365d=[10, 1, 10, 1, 1],
              monetary_365d=[70, 30, 100, 10, 10])
    out = model.transform(X)
    assert out[["recency_score", "frequency_score", "monetary_score"]].values.tolist() == [
        [5, 5, 4], [5, 1, 2], [1, 5, 5], [1, 1, 1], [5, 1, 1]]
    assert out["rfm_segment"].tolist() == ["Champions", "Potential loyalist", "Cannot lose", "Lost", "New"]


# ------------------------------------------------------------------------------------------------------
# Lifecycle
# ------------------------------------------------------------------------------------------------------


def test_lifecycle_rules_each_branch_and_boundaries():
    #            recency freq tenure ipi     expected    (rhythm; lapsing bound 1.5x, churned bound 3x)
    cases = [
        (91.0,  3, 300, 30.0,   "churned"),  # rhythm 30: 91 > 90
        (90.0,  3, 300, 30.0,   "lapsing"),  # == 3 x rhythm is not beyond it; 90 > 45
        (46.0,  3, 300, 30.0,   "lapsing"),
        (45.0,  3, 100, 30.0,   "repeat"),   # == 1.5 x rhythm is not beyond it
        (10.0,  1, 10,  np.nan, "new"),
        (10.0,  4, 180, 50.0,   "loyal"),    # both loyal bounds are inclusive
        (10.0,  4, 179, 50.0,   "repeat"),   # tenure short of 180
        (10.0,  3, 900, 50.0,   "repeat"),   # 3 orders < 4
        (40.0,  3, 300, 10.0,   "repeat"),   # ipi 10 floored to 30: 40 <= 45 (unfloored it would be churned)
        (100.0, 5, 900, 50.0,   "lapsing"),  # 100 > 75, <= 150: lapsing beats loyal
        (100.0, 1, 100, np.nan, "lapsing"),  # one order: median rhythm 40 -> 100 > 60, <= 120
        (60.0,  1, 100, np.nan, "new"),      # == 1.5 x 40
        (121.0, 1, 200, np.nan, "churned"),  # > 3 x 40
    ]
    rec, freq, ten, ipi, expected = (list(c) for c in zip(*cases))
    got = lifecycle_stage(rec, freq, ten, ipi, median_rhythm_days=40.0)
    assert got.tolist() == expected


def test_lifecycle_median_rhythm_floor_and_custom_factors():
    # a median below min_rhythm_days is floored: rhythm 30, so 46 is lapsing and 45 is new
    assert lifecycle_stage([46, 45, 91], [1, 1, 1], [5, 5, 5], [np.nan] * 3, median_rhythm_days=10.0).tolist() == [
        "lapsing", "new", "churned"]
    got = lifecycle_stage([21, 20], [2, 2], [500, 500], [10, 10], median_rhythm_days=40.0, lapsing_factor=1.0,
                          churned_factor=2.0, min_rhythm_days=10.0, loyal_min_orders=2, loyal_min_tenure_days=365)
    assert got.tolist() == ["churned", "lapsing"]


def test_model_learns_median_rhythm_of_repeat_customers():
    X = frame(5, frequency_lifetime=[2, 3, 5, 1, 1], ipi_mean_days=[20, 40, 90, np.nan, np.nan],
              recency_days=[10, 10, 10, 60, 61], tenure_days=[100, 100, 100, 60, 61])
    model = SegmentModel().fit(X)
    assert model.median_rhythm_days_ == 40.0  # median of 20, 40, 90 (one-order customers have no interval)
    assert model.transform(X)["lifecycle_stage"].tolist() == ["repeat", "repeat", "repeat", "new", "lapsing"]
    low = frame(3, frequency_lifetime=[2, 2, 1], ipi_mean_days=[5, 15, np.nan])
    assert SegmentModel().fit(low).median_rhythm_days_ == 30.0  # median 10 floored at min_rhythm_days


# ------------------------------------------------------------------------------------------------------
# Value tier and ABC
# ------------------------------------------------------------------------------------------------------


def test_value_tiers_on_100_distinct_values():
    rng = np.random.default_rng(0)
    value = rng.permutation(np.arange(1.0, 101.0))
    X = frame(100)
    out = SegmentModel().fit(X, value).transform(X, value)
    counts = out["value_tier"].value_counts().to_dict()
    assert counts == {"top": 1, "big": 4, "medium": 15, "small": 80}
    assert out.loc[value == 100, "value_tier"].item() == "top"
    assert set(out.loc[(value >= 96) & (value <= 99), "value_tier"]) == {"big"}
    assert set(out.loc[(value >= 81) & (value <= 95), "value_tier"]) == {"medium"}
    assert list(VALUE_TIERS) == ["top", "big", "medium", "small"]


def test_value_tier_and_abc_of_new_customers_by_stored_thresholds():
    value = np.arange(1.0, 101.0)
    model = SegmentModel().fit(frame(100), value)
    assert model.value_tier_thresholds_ == {"top": 100.0, "big": 96.0, "medium": 81.0}
    out = model.transform(frame(4), np.array([1000.0, 96.0, 80.5, -5.0]))
    assert out["value_tier"].tolist() == ["top", "big", "small", "small"]
    assert out["abc_class"].tolist()[0] == "A" and out["abc_class"].tolist()[-1] == "C"


def test_abc_classes_on_hand_made_values():
    # total 100: ranked 50, 30 (hold 80% -> A), 10, 6 (before them 80%, 90% -> B), last 4 (96% before it -> C)
    value = np.array([4.0, 50.0, 10.0, 6.0, 30.0])
    X = frame(5)
    model = SegmentModel().fit(X, value)
    assert model.abc_thresholds_ == {"A": 30.0, "B": 6.0}
    assert model.transform(X, value)["abc_class"].tolist() == ["C", "A", "B", "B", "A"]
    # The customer crossing 80% is A; negatives count as 0 and are C. With 4 customers each pyramid tier above
    # small holds ceil(share * 4) = 1 customer cumulatively, so only the best one is not small.
    value = np.array([90.0, 10.0, -20.0, 0.0])
    out = SegmentModel().fit(frame(4), value).transform(frame(4), value)
    assert out["abc_class"].tolist() == ["A", "B", "C", "C"]
    assert out["value_tier"].tolist() == ["top", "small", "small", "small"]


def test_all_zero_value_is_small_and_c():
    X = frame(6, monetary_365d=np.zeros(6))
    out = SegmentModel().fit(X).transform(X)
    assert set(out["value_tier"]) == {"small"}
    assert set(out["abc_class"]) == {"C"}


def test_value_none_falls_back_to_monetary_365d():
    rng = np.random.default_rng(1)
    money = rng.permutation(np.arange(1.0, 101.0))
    X = frame(100, monetary_365d=money)
    proxy = SegmentModel().fit(X).transform(X)
    explicit = SegmentModel().fit(X, money).transform(X, money)
    pd.testing.assert_frame_equal(proxy, explicit)
    assert proxy.loc[money == 100, "value_tier"].item() == "top"
    other = SegmentModel().fit(X, -money + 101).transform(X, -money + 101)
    assert other.loc[money == 1, "value_tier"].item() == "top"


# ------------------------------------------------------------------------------------------------------
# Clusters
# ------------------------------------------------------------------------------------------------------


def three_groups() -> tuple[pd.DataFrame, np.ndarray]:
    """50 lapsed, 40 mid and 30 frequent customers, far apart on most features; only the 30 spend more than 300."""
    rng = np.random.default_rng(7)
    sizes = (50, 40, 30)
    centres = [  # recency, frequency, monetary, aov, tenure, distinct, return, price, discount
        (300, 1, 300, 20, 400, 1, 0.0, 0.8, 0.6),
        (60, 4, 300, 75, 700, 5, 0.1, 1.0, 0.3),
        (5, 20, 5000, 250, 1500, 30, 0.3, 1.3, 0.05),
    ]
    names = ["recency_days", "frequency_365d", "monetary_365d", "avg_order_value_365d", "tenure_days",
             "distinct_products_365d", "return_rate_365d", "price_index_365d", "discount_share_365d"]
    rows = []
    for size, c in zip(sizes, centres):
        noise = 1 + 0.03 * rng.standard_normal((size, len(c)))
        rows.append(np.asarray(c) * noise + 0.005 * rng.standard_normal((size, len(c))))
    data = np.vstack(rows)
    X = frame(len(data), frequency_lifetime=np.full(len(data), 3.0), **{n: data[:, i] for i, n in enumerate(names)})
    X[P + "customer_sessions_placeholder"] = np.nan  # extra columns are ignored
    return X, np.repeat([0, 1, 2], sizes)


def test_clusters_find_three_separated_groups_and_relabel_by_size():
    X, group = three_groups()
    model = SegmentModel().fit(X)
    assert model.k_ == 3
    assert set(model.silhouette_by_k_) == set(range(2, 9))
    assert max(model.silhouette_by_k_, key=model.silhouette_by_k_.get) == 3
    out = model.transform(X)
    for g in range(3):
        assert out.loc[group == g, "cluster"].nunique() == 1
    # relabelled by descending size: the 50 are cluster 0, the 40 cluster 1, the 30 cluster 2
    assert [out.loc[group == g, "cluster"].iloc[0] for g in range(3)] == [0, 1, 2]

    desc = model.describe_clusters()
    assert desc["cluster"].tolist() == [0, 1, 2]
    assert desc["customers"].tolist() == [50, 40, 30]
    assert desc["share"].sum() == pytest.approx(1.0)
    assert desc.loc[2, "monetary_365d"] == pytest.approx(5000, rel=0.05)  # raw mean, not scaled
    # the 30's monetary z-score is the largest possible for a quarter of the customers, sqrt(3) ~ 1.7
    assert desc.loc[2, "distinguishing"].startswith("high monetary_365d (+1.7 sd), ")
    assert desc.loc[2, "distinguishing"].count(" sd)") == 3


def test_clusters_are_deterministic_across_fits():
    X, _ = three_groups()
    a, b = SegmentModel().fit(X), SegmentModel().fit(X)
    pd.testing.assert_frame_equal(a.transform(X), b.transform(X))
    np.testing.assert_array_equal(a.cluster_centers_, b.cluster_centers_)
    pd.testing.assert_frame_equal(a.describe_clusters(), b.describe_clusters())


def test_clusters_median_impute_and_missing_optional_features():
    X, group = three_groups()
    X = X.drop(columns=[P + "discount_share_365d", P + "price_index_365d"])
    X.loc[[0, 60], P + "return_rate_365d"] = np.nan
    model = SegmentModel().fit(X)
    assert "discount_share_365d" not in model.cluster_features_
    assert model.cluster_medians_["return_rate_365d"] == pytest.approx(np.nanmedian(X[P + "return_rate_365d"]))
    out = model.transform(X)
    assert out.loc[group == 2, "cluster"].nunique() == 1


def test_tiny_populations_fall_back_to_one_cluster():
    X = frame(2, monetary_365d=[10, 20])
    model = SegmentModel().fit(X)
    assert model.k_ == 1
    assert model.transform(X)["cluster"].tolist() == [0, 0]
    assert model.describe_clusters()["customers"].tolist() == [2]
    # identical customers: no second cluster is possible either
    same = frame(10)
    assert SegmentModel().fit(same).k_ == 1


# ------------------------------------------------------------------------------------------------------
# Output, errors, persistence
# ------------------------------------------------------------------------------------------------------


def test_output_columns_types_and_index_reset():
    X = rfm_frame()
    X.index = np.arange(100, 110)
    out = SegmentModel().fit(X).transform(X)
    assert list(out.columns) == list(OUTPUT_COLUMNS) == [
        "recency_score", "frequency_score", "monetary_score", "rfm_segment", "lifecycle_stage", "value_tier",
        "abc_class", "cluster"]
    assert list(out.index) == list(range(10))
    for col in ("recency_score", "frequency_score", "monetary_score", "cluster"):
        assert pd.api.types.is_integer_dtype(out[col])
    assert all(isinstance(s, str) for s in out["rfm_segment"])


def test_missing_column_is_named():
    X = rfm_frame().drop(columns=[P + "ipi_mean_days", P + "tenure_days"])
    with pytest.raises(ValueError, match="customer_orders__tenure_days") as err:
        SegmentModel().fit(X)
    assert "customer_orders__ipi_mean_days" in str(err.value)
    model = SegmentModel().fit(rfm_frame())
    with pytest.raises(ValueError, match="customer_orders__recency_days"):
        model.transform(rfm_frame().drop(columns=[P + "recency_days"]))


def test_not_fitted_and_value_length_mismatch():
    with pytest.raises(NotFittedError):
        SegmentModel().transform(rfm_frame())
    with pytest.raises(NotFittedError):
        SegmentModel().describe_clusters()
    with pytest.raises(ValueError, match="value"):
        SegmentModel().fit(rfm_frame(), np.ones(9))
    model = SegmentModel().fit(rfm_frame())
    with pytest.raises(ValueError, match="value"):
        model.transform(rfm_frame(), np.ones(11))


def test_sklearn_params_and_pickle_round_trip():
    model = SegmentModel(n_rfm_bins=5, k_range=(2, 4), random_state=3)
    assert clone(model).get_params() == model.get_params()
    X, _ = three_groups()
    value = np.linspace(0, 500, len(X))
    model.fit(X, value)
    again = pickle.loads(pickle.dumps(model))
    pd.testing.assert_frame_equal(model.transform(X, value), again.transform(X, value))
    pd.testing.assert_frame_equal(model.describe_clusters(), again.describe_clusters())
