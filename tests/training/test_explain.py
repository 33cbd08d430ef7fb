"""Risk bands and reason texts (training/explain.py)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from training.explain import RHYTHM, driver_text, risk_band, top_drivers

BANDS = {"high": 0.7, "medium": 0.4, "low": 0.0}


@pytest.mark.parametrize(
    ("p", "band"),
    [(0.0, "low"), (0.3999, "low"), (0.4, "medium"), (0.6999, "medium"), (0.7, "high"), (1.0, "high")],
)
def test_risk_band_bounds_are_inclusive_lower_bounds(p, band):
    assert risk_band(p, BANDS) == band
    assert risk_band(p, {"low": 0.0, "high": 0.7, "medium": 0.4}) == band  # dict order does not matter


def test_risk_band_without_a_covering_band_is_an_error():
    with pytest.raises(ValueError, match="no risk band covers probability 0.2"):
        risk_band(0.2, {"high": 0.5, "medium": 0.3})
    with pytest.raises(ValueError, match="no risk band"):
        risk_band(-0.01, BANDS)
    with pytest.raises(ValueError, match="no risk band"):
        risk_band(math.nan, BANDS)


@pytest.mark.parametrize(
    ("feature", "value", "text"),
    [
        ("customer_orders__recency_days", 40.0, "last order 40 days ago"),
        ("recency_days", 12.4, "last order 12 days ago"),  # with or without the view prefix
        ("customer_orders__recency_ipi_ratio", 2.34, "2.3x longer since the last order than their usual gap"),
        ("customer_orders__return_rate_365d", 0.25, "returned 25% of their spend this year"),
        ("customer_sessions__cart_abandonment_90d", 0.5, "abandoned 50% of carts in the last 90 days"),
        ("customer_sessions__view_to_purchase_90d", 0.125, "converts 12.5% of product views"),
        ("customer_orders__frequency_trend_90d", 0.5, "order rate trend 0.50 (recent vs previous quarter)"),
        ("customer_orders__some_new_feature", 0.123456, "some new feature = 0.123"),
        ("customer_orders__recency_days", None, "no data on recency days"),
        ("customer_orders__ipi_mean_days", math.nan, "only one order so far: no buying rhythm yet"),
        ("customer_orders__ipi_mean_days", np.float64("nan"), "only one order so far: no buying rhythm yet"),
    ],
)
def test_driver_text(feature, value, text):
    assert driver_text(feature, value) == text


NAMES = [
    "customer_orders__recency_days",
    "customer_orders__frequency_lifetime",
    "bgnbd_p_alive",
    "bgnbd_p_no_purchase",
    "customer_sessions__views_90d",
]


def test_top_drivers_picks_the_largest_positive_contributions_and_groups_bgnbd():
    contributions = np.array([
        [0.5, -0.2, 0.1, 0.3, 0.2],  # rhythm = 0.4: recency 0.5 > rhythm 0.4 > views 0.2
        [0.0, -0.1, -0.3, 0.1, 0.05],  # rhythm = -0.2; recency 0.0 is not a risk driver
        [-0.1, -0.2, -0.3, 0.0, -0.05],  # nothing pushes the score up
    ])
    values = np.array([
        [40.0, 3.0, 0.25, 0.8, 2.0],
        [np.nan, np.nan, 1.0, 0.1, 7.0],
        [1.0, 1.0, 1.0, 0.1, 0.0],
    ])
    out = top_drivers(contributions, values, NAMES, k=3)
    assert out[0] == [
        {"feature": "recency_days", "value": 40.0, "impact": 0.5, "text": "last order 40 days ago"},
        {"feature": RHYTHM, "value": 0.8, "impact": 0.4,
         "text": "no order for 40 days after 3 orders: 25% chance they are still an active buyer"},
        {"feature": "views_90d", "value": 2.0, "impact": 0.2, "text": "2 product views in the last 90 days"},
    ]
    assert out[1] == [
        {"feature": "views_90d", "value": 7.0, "impact": 0.05, "text": "7 product views in the last 90 days"}
    ]
    assert out[2] == []
    # k limits the number of drivers
    assert [d["feature"] for d in top_drivers(contributions, values, NAMES, k=2)[0]] == ["recency_days", RHYTHM]


def test_top_drivers_rhythm_wins_on_its_sum_and_texts():
    # no single bgnbd column beats recency (0.3), but their sum (0.35) does
    contributions = np.array([[0.3, 0.0, 0.2, 0.15, 0.0], [0.3, 0.0, 0.2, 0.15, 0.0]])
    values = np.array([[12.0, 1.0, 1.0, 0.9, 0.0], [np.nan, np.nan, np.nan, np.nan, 0.0]])
    out = top_drivers(contributions, values, NAMES, k=1)
    assert out[0] == [{"feature": RHYTHM, "value": 0.9, "impact": 0.35,
                       "text": "no order for 12 days after 1 order"}]  # P(alive) = 1: no chance clause
    assert out[1] == [{"feature": RHYTHM, "value": None, "impact": 0.35,
                       "text": "purchase rhythm suggests they have lapsed"}]


def test_top_drivers_nan_value_of_a_plain_feature():
    names = ["customer_orders__ipi_mean_days", "customer_orders__recency_days"]
    out = top_drivers(np.array([[0.2, 0.1]]), np.array([[np.nan, 5.0]]), names, k=3)
    assert out == [[
        {"feature": "ipi_mean_days", "value": None, "impact": 0.2, "text": "only one order so far: no buying rhythm yet"},
        {"feature": "recency_days", "value": 5.0, "impact": 0.1, "text": "last order 5 days ago"},
    ]]


def test_driver_columns_are_the_json_and_sentences_of_top_drivers():
    """The batch's columnar drivers equal ``json.dumps`` of :func:`top_drivers` and its "; "-joined
    sentences, row by row: ties, missing values, text quotes, an unknown feature, no driver at all."""
    import json

    from training.explain import driver_columns

    names = [*NAMES, "customer_orders__ipi_mean_days", "odd_view__my_score", "customer_orders__tenure_days"]
    rng = np.random.default_rng(7)
    n = 400
    contributions = np.round(rng.normal(0.0, 0.3, (n, len(names))), 1)  # rounded: ties
    contributions[:20] = -0.5  # nothing pushes these up
    values = rng.random((n, len(names))) * 50
    values[rng.random((n, len(names))) < 0.15] = np.nan
    values[:, -1] = np.where(rng.random(n) < 0.1, np.inf, values[:, -1])
    for k in (0, 1, 3, 5):
        as_json, as_text = driver_columns(contributions, values, names, k)
        want = top_drivers(contributions, values, names, k)
        assert as_json == [json.dumps(d) for d in want]
        assert as_text == ["; ".join(x["text"] for x in d) for d in want]
    assert as_json[0] == "[]" and as_text[0] == ""
    assert sum(len(d) == 5 for d in want) > 10 and any('"value": Infinity' in s for s in as_json)


def test_risk_bands_of_an_array_equal_risk_band():
    from training.explain import risk_bands

    p = np.array([0.0, 0.3999, 0.4, 0.6999, 0.7, 1.0])
    assert risk_bands(p, BANDS).tolist() == [risk_band(x, BANDS) for x in p]
    assert risk_bands(np.zeros(0), BANDS).tolist() == []
    with pytest.raises(ValueError, match="no risk band covers probability 0.2"):
        risk_bands(np.array([0.6, 0.2]), {"high": 0.5, "medium": 0.3})
    with pytest.raises(ValueError, match="no risk band"):
        risk_bands(np.array([math.nan]), BANDS)
