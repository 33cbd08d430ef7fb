"""NextPurchaseModel: scikit-learn conventions, forecasts from the BG/NBD + Gamma-Gamma start, totals."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.exceptions import NotFittedError

from training.customer_base import BGNBD_INPUTS, ORDER_VALUE
from training.metrics import count_metrics
from training.next_purchase_model import NextPurchaseModel

H = 60.0


def _data(n: int = 3000, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Customers from a BG/NBD process with gamma order values: history up to T, targets in (T, T + H]."""
    rng = np.random.default_rng(seed)
    lam = rng.gamma(0.6, 1 / 15.0, n)
    drop = rng.beta(0.6, 3.0, n)
    scale = rng.gamma(4.0, 10.0, n)  # each customer's typical order value
    T = rng.uniform(60, 400, n)
    x, t_x, orders, short, spend, value_sum = (np.zeros(n) for _ in range(6))
    for i in range(n):
        t = 0.0
        while True:
            t += rng.exponential(1 / lam[i])
            if t > T[i] + H:
                break
            v = rng.gamma(3.0, scale[i] / 3.0)
            if t <= T[i]:
                x[i], t_x[i] = x[i] + 1, t
                value_sum[i] += v
            else:
                orders[i] += 1
                spend[i] += v
                short[i] += t <= T[i] + 30
            if rng.random() < drop[i]:
                break
    first_value = rng.gamma(3.0, scale / 3.0)  # the first order (time 0) also has a value
    X = pd.DataFrame({BGNBD_INPUTS[0]: x, BGNBD_INPUTS[1]: t_x, BGNBD_INPUTS[2]: T,
                      ORDER_VALUE: (value_sum + first_value) / (x + 1), "customer_orders__noise": rng.normal(size=n)})
    y = pd.DataFrame({"orders": orders, "spend": spend, "short": short})
    return X, y


def test_fit_predict_and_sklearn_conventions():
    X, y = _data()
    model = NextPurchaseModel(horizon_days=int(H), n_estimators=40)
    with pytest.raises(NotFittedError):
        model.predict(X)
    assert clone(model).get_params() == model.get_params()
    model.fit(X, y["orders"], y["spend"], y["short"])
    f = model.predict_frame(X)
    assert list(f.columns) == ["expected_purchases", "expected_spend", "p_purchase_short", "clv_12m"]
    assert (f["expected_purchases"] >= 0).all() and (f["expected_spend"] >= 0).all()
    assert f["p_purchase_short"].between(0, 1).all()
    assert (f["clv_12m"] >= f["expected_spend"]).all()  # 12 months hold at least the next 60 days
    np.testing.assert_allclose(model.predict(X), f["expected_purchases"])


def test_forecasts_match_totals_and_beat_nothing_worse_than_the_baseline():
    X, y = _data(4000, seed=1)
    Xt, yt = _data(3000, seed=2)
    model = NextPurchaseModel(horizon_days=int(H), n_estimators=60).fit(X, y["orders"], y["spend"], y["short"])
    model.fit_population(Xt)
    f, b = model.predict_frame(Xt), model.baseline_frame(Xt)
    m, mb = count_metrics(yt["orders"], f["expected_purchases"]), count_metrics(yt["orders"], b["expected_purchases"])
    # the data are BG/NBD: the baseline is right by construction, the model must not lose to it
    assert m["poisson_deviance"] < mb["poisson_deviance"] * 1.02
    assert 0.85 < m["total_ratio"] < 1.15
    spend_ratio = f["expected_spend"].sum() / yt["spend"].sum()
    assert 0.8 < spend_ratio < 1.25


def test_missing_inputs_are_clear_errors():
    X, y = _data(300)
    with pytest.raises(ValueError, match="needs feature columns"):
        NextPurchaseModel(n_estimators=5).fit(X.drop(columns=[BGNBD_INPUTS[0]]), y["orders"], y["spend"], y["short"])


def test_customer_base_level_keeps_the_bgnbd_total():
    """level="customer_base": the trees shape, BG/NBD + Gamma-Gamma set the total of the customers scored."""
    X, y = _data()
    model = NextPurchaseModel(horizon_days=int(H), n_estimators=40).fit(X, y["orders"], y["spend"], y["short"])
    model.fit_population(X, X)
    f, b = model.predict_frame(X), model.baseline_frame(X)
    assert f["expected_purchases"].sum() == pytest.approx(b["expected_purchases"].sum(), rel=1e-6)
    assert f["expected_spend"].sum() == pytest.approx(b["expected_spend"].sum(), rel=1e-6)
    assert f["p_purchase_short"].mean() == pytest.approx(b["p_purchase_short"].mean(), rel=1e-6)
    # ... while the individual forecasts differ from the baseline's
    assert not np.allclose(f["expected_purchases"], b["expected_purchases"])


def test_learned_level_and_bad_level():
    X, y = _data(n=1500)
    learned = NextPurchaseModel(horizon_days=int(H), n_estimators=40, level="learned")
    learned.fit(X, y["orders"], y["spend"], y["short"])
    assert learned.level_offsets_ == {"orders": 0.0, "spend": 0.0, "short": 0.0}
    with pytest.raises(ValueError, match="level must be one of"):
        NextPurchaseModel(level="seasonal").fit(X, y["orders"], y["spend"], y["short"])
