"""Gamma-Gamma and BG/NBD against the published CDNOW-sample estimates, plus the model's contract."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.exceptions import NotFittedError

from training.bgnbd import BetaGeoModel
from training.gamma_gamma import GammaGammaModel, gamma_gamma_log_likelihood

FIXTURE = Path(__file__).parents[1] / "fixtures" / "cdnow_summary.csv.gz"


@pytest.fixture(scope="module")
def cdnow() -> pd.DataFrame:
    return pd.read_csv(FIXTURE)


def test_bgnbd_recovers_published_cdnow_estimates(cdnow):
    # Fader, Hardie & Lee (2005): r = 0.243, alpha = 4.414 (weeks), a = 0.793, b = 2.426, LL = -9582.4
    m = BetaGeoModel(time_scale_days=7.0).fit(cdnow["x"] * 1.0, cdnow["t_x"] * 7.0, cdnow["T"] * 7.0)
    got = m.params_
    assert got["r"] == pytest.approx(0.243, abs=0.001)
    assert got["alpha"] == pytest.approx(4.414, abs=0.01)
    assert got["a"] == pytest.approx(0.793, abs=0.002)
    assert got["b"] == pytest.approx(2.426, abs=0.01)
    # likelihood in days differs from the weeks one by -ln(7) per purchase density term
    in_weeks = m.log_likelihood_ + float(cdnow["x"].sum()) * np.log(7.0)
    assert in_weeks == pytest.approx(-9582.4, abs=0.5)


def test_gamma_gamma_recovers_published_cdnow_estimates(cdnow):
    # Fader, Hardie & Lee (2005) "RFM and CLV": p = 6.25, q = 3.74, gamma = 15.44 on the 946 repeat buyers
    repeat = cdnow[cdnow["x"] > 0]
    assert len(repeat) == 946
    m = GammaGammaModel().fit(repeat["x"], repeat["zbar"])
    assert m.params_["p"] == pytest.approx(6.25, abs=0.01)
    assert m.params_["q"] == pytest.approx(3.74, abs=0.01)
    assert m.params_["gamma"] == pytest.approx(15.44, abs=0.02)
    assert m.converged_
    # population mean p gamma / (q - 1) and the paper's weighted-mean form of E[M | m, x]
    p, q, g = (m.params_[k] for k in ("p", "q", "gamma"))
    assert m.population_mean_ == pytest.approx(p * g / (q - 1))
    x, zbar = repeat["x"].to_numpy(float), repeat["zbar"].to_numpy(float)
    expected = (g + zbar * x) * p / (p * x + q - 1)
    np.testing.assert_allclose(m.conditional_expected_average_value(x, zbar), expected, rtol=1e-12)


def test_gradient_matches_finite_differences(cdnow):
    from training.gamma_gamma import _Objective

    repeat = cdnow[cdnow["x"] > 0]
    obj = _Objective(repeat["x"].to_numpy(float), repeat["zbar"].to_numpy(float), np.ones(len(repeat)), 0.01)
    theta = np.log([3.0, 2.5, 10.0])
    _, grad = obj(theta)
    eps = 1e-6
    num = [(obj(theta + eps * e)[0] - obj(theta - eps * e)[0]) / (2 * eps) for e in np.eye(3)]
    np.testing.assert_allclose(grad, num, rtol=1e-5, atol=1e-8)


def test_recovers_simulated_parameters():
    rng = np.random.default_rng(7)
    p, q, g = 4.0, 5.0, 30.0
    n = 20_000
    nu = rng.gamma(q, 1.0 / g, size=n)
    x = rng.integers(1, 8, size=n)
    mean_value = np.array([rng.gamma(p, 1.0 / v, size=k).mean() for v, k in zip(nu, x, strict=True)])
    m = GammaGammaModel().fit(x, mean_value)
    assert m.params_["p"] == pytest.approx(p, rel=0.05)
    assert m.params_["q"] == pytest.approx(q, rel=0.08)
    assert m.params_["gamma"] == pytest.approx(g, rel=0.1)


def test_shrinkage_towards_population_mean():
    m = GammaGammaModel.from_params(6.25, 3.74, 15.44)
    one, many = m.conditional_expected_average_value([1, 50], [100.0, 100.0])
    assert m.population_mean_ < one < many < 100.0  # more orders = more trust in the customer's own mean
    # no history: the population mean, whatever monetary value is passed
    assert m.conditional_expected_average_value([0], [np.nan])[0] == pytest.approx(m.population_mean_)


def test_log_likelihood_function_matches_method(cdnow):
    repeat = cdnow[cdnow["x"] > 0]
    m = GammaGammaModel.from_params(6.25, 3.74, 15.44)
    np.testing.assert_allclose(m.log_likelihood(repeat["x"], repeat["zbar"]),
                               gamma_gamma_log_likelihood(6.25, 3.74, 15.44, repeat["x"], repeat["zbar"]))


@pytest.mark.parametrize(
    ("frequency", "value", "message"),
    [
        ([1, 2], [10.0], "differ in length"),
        ([0, 2], [10.0, 5.0], "frequency: 1 values are <= 0"),
        ([1, 2], [10.0, -5.0], "monetary_value: 1 values are <= 0"),
        ([1, 2], [10.0, np.nan], "monetary_value: 1 values are missing"),
    ],
)
def test_bad_inputs_are_named(frequency, value, message):
    with pytest.raises(ValueError, match=message):
        GammaGammaModel().fit(frequency, value)


def test_q_at_most_one_is_refused():
    with pytest.raises(ValueError, match="q = 0.9 <= 1"):
        GammaGammaModel.from_params(2.0, 0.9, 10.0)


def test_not_fitted_and_pickle(cdnow):
    with pytest.raises(NotFittedError):
        GammaGammaModel().conditional_expected_average_value([1], [10.0])
    repeat = cdnow[cdnow["x"] > 0]
    m = GammaGammaModel().fit(repeat["x"], repeat["zbar"])
    again = pickle.loads(pickle.dumps(m))
    np.testing.assert_array_equal(again.conditional_expected_average_value([3], [20.0]),
                                  m.conditional_expected_average_value([3], [20.0]))
