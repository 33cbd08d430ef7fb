"""Gamma-Gamma model of the value of a customer's orders (Fader, Hardie & Lee 2005), scikit-learn style.

A customer's order values are Gamma(p, nu) around the customer's own mean p / nu; across customers
nu ~ Gamma(q, gamma). For a customer with ``x`` orders of mean value ``m``, the likelihood of ``m`` is

    f(m | p, q, gamma; x) = Gamma(p x + q) / (Gamma(p x) Gamma(q)) * gamma^q * m^(p x - 1) * x^(p x)
                            / (gamma + m x)^(p x + q)

and the expected value of the customer's next order is a weighted mean of the population mean
p gamma / (q - 1) and the customer's own mean:

    E[M | m, x] = (q - 1) / (p x + q - 1) * p gamma / (q - 1) + p x / (p x + q - 1) * m.

The population mean exists only for q > 1; :meth:`GammaGammaModel.fit` raises ``ValueError`` otherwise.
The model assumes order value is independent of purchase frequency: check
``np.corrcoef(frequency, monetary_value)`` is small before using it with BG/NBD.

Fitted on the published CDNOW sample (2,357 customers, 946 with repeat purchases) it recovers the
published estimates p = 6.25, q = 3.74, gamma = 15.44 (see ``tests/training/test_gamma_gamma.py``).
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
from scipy import optimize
from scipy.special import digamma, gammaln
from sklearn.base import BaseEstimator
from sklearn.exceptions import ConvergenceWarning

PARAM_NAMES = ("p", "q", "gamma")
_LOG_BOUNDS = (-12.0, 12.0)


def _check_inputs(frequency: Any, monetary_value: Any) -> tuple[np.ndarray, np.ndarray]:
    x = np.asarray(frequency, dtype=float).ravel()
    m = np.asarray(monetary_value, dtype=float).ravel()
    if len(x) != len(m):
        raise ValueError(f"frequency and monetary_value differ in length: {len(x)} vs {len(m)}")
    for name, v in (("frequency", x), ("monetary_value", m)):
        bad = ~np.isfinite(v)
        if bad.any():
            raise ValueError(f"{name}: {int(bad.sum())} values are missing or infinite (first at row {int(np.argmax(bad))})")
    if (x <= 0).any():
        raise ValueError(f"frequency: {int((x <= 0).sum())} values are <= 0; Gamma-Gamma needs customers with orders")
    if (m <= 0).any():
        raise ValueError(f"monetary_value: {int((m <= 0).sum())} values are <= 0; order values must be positive")
    return x, m


def gamma_gamma_log_likelihood(p: float, q: float, gamma: float, frequency: Any, monetary_value: Any) -> np.ndarray:
    """Per-customer log-likelihood of the mean order value ``monetary_value`` over ``frequency`` orders."""
    x, m = _check_inputs(frequency, monetary_value)
    px = p * x
    return (gammaln(px + q) - gammaln(px) - gammaln(q) + q * np.log(gamma)
            + (px - 1.0) * np.log(m) + px * np.log(x) - (px + q) * np.log(gamma + m * x))


class _Objective:
    """Mean negative log-likelihood and its gradient in log-parameters."""

    def __init__(self, x: np.ndarray, m: np.ndarray, w: np.ndarray, penalizer: float) -> None:
        self.x, self.m, self.w, self.penalizer = x, m, w / w.sum(), penalizer
        self.log_m, self.log_x = np.log(m), np.log(x)

    def __call__(self, theta: np.ndarray) -> tuple[float, np.ndarray]:
        p, q, g = np.exp(theta)
        x, m, w = self.x, self.m, self.w
        px = p * x
        log_gmx = np.log(g + m * x)
        ll = (gammaln(px + q) - gammaln(px) - gammaln(q) + q * np.log(g)
              + (px - 1.0) * self.log_m + px * self.log_x - (px + q) * log_gmx)
        d_p = x * (digamma(px + q) - digamma(px) + self.log_m + self.log_x - log_gmx)
        d_q = digamma(px + q) - digamma(q) + np.log(g) - log_gmx
        d_g = q / g - (px + q) / (g + m * x)
        grad_params = -np.array([w @ d_p, w @ d_q, w @ d_g])
        value = -float(w @ ll) + self.penalizer * float(p * p + q * q + g * g)
        grad_params += 2.0 * self.penalizer * np.array([p, q, g])
        return value, grad_params * np.array([p, q, g])  # chain rule for log-parameters


class GammaGammaModel(BaseEstimator):
    """Gamma-Gamma spend model fitted by maximum likelihood.

    Parameters
    ----------
    penalizer : float
        L2 penalty ``penalizer * (p^2 + q^2 + gamma^2)`` on the mean negative log-likelihood.
    max_iter : int
        Maximum L-BFGS-B iterations.

    Attributes
    ----------
    params_ : dict
        ``{"p", "q", "gamma"}``.
    population_mean_ : float
        Expected order value of a customer with no history, ``p gamma / (q - 1)``.
    log_likelihood_ : float
    converged_ : bool
    """

    def __init__(self, penalizer: float = 0.0, max_iter: int = 1000) -> None:
        self.penalizer = penalizer
        self.max_iter = max_iter

    @classmethod
    def from_params(cls, p: float, q: float, gamma: float, **kwargs: Any) -> GammaGammaModel:
        """A ready-to-predict model with given parameters (e.g. the published CDNOW estimates)."""
        model = cls(**kwargs)
        model._set_params(p, q, gamma)
        model.converged_ = True
        return model

    def _set_params(self, p: float, q: float, gamma: float) -> None:
        for name, v in zip(PARAM_NAMES, (p, q, gamma), strict=True):
            if not (np.isfinite(v) and v > 0):
                raise ValueError(f"Gamma-Gamma parameter {name} must be > 0, got {v!r}")
        if q <= 1:
            raise ValueError(f"Gamma-Gamma q = {q:.3g} <= 1: the mean order value is infinite; "
                             "the data are too heavy-tailed for this model")
        self.params_ = {"p": float(p), "q": float(q), "gamma": float(gamma)}
        self.population_mean_ = float(p * gamma / (q - 1.0))

    def fit(self, frequency: Any, monetary_value: Any, sample_weight: Any = None) -> GammaGammaModel:
        """Fit on customers with ``frequency`` >= 1 orders of mean value ``monetary_value`` > 0."""
        if not (np.isfinite(self.penalizer) and self.penalizer >= 0):
            raise ValueError(f"penalizer must be >= 0, got {self.penalizer!r}")
        x, m = _check_inputs(frequency, monetary_value)
        if len(x) < 2:
            raise ValueError(f"Gamma-Gamma needs at least 2 customers with orders, got {len(x)}")
        w = np.ones(len(x)) if sample_weight is None else np.asarray(sample_weight, dtype=float).ravel()
        if len(w) != len(x) or (w < 0).any() or w.sum() <= 0:
            raise ValueError("sample_weight must be non-negative, one per customer, not all zero")
        objective = _Objective(x, m, w, float(self.penalizer))
        # Start from the method of moments of the customers' means: E[m] ~ p gamma / (q - 1).
        mean_m = float(np.average(m, weights=w))
        theta0 = np.log([2.0, 3.0, mean_m])  # p gamma / (q - 1) = mean_m
        res = optimize.minimize(objective, theta0, jac=True, method="L-BFGS-B", bounds=[_LOG_BOUNDS] * 3,
                                options={"maxiter": int(self.max_iter), "ftol": 1e-14, "gtol": 1e-10})
        _, grad = objective(res.x)
        self.converged_ = bool(res.success or np.max(np.abs(grad)) < 1e-5)
        self.n_iter_ = int(res.nit)
        if not self.converged_:
            warnings.warn(f"Gamma-Gamma fit did not converge: {res.message}", ConvergenceWarning, stacklevel=2)
        self._set_params(*np.exp(res.x))
        self.log_likelihood_ = float(w @ self.log_likelihood(x, m))
        return self

    def _check_fitted(self) -> tuple[float, float, float]:
        if not hasattr(self, "params_"):
            from sklearn.exceptions import NotFittedError

            raise NotFittedError("GammaGammaModel is not fitted yet: call fit() or from_params()")
        return self.params_["p"], self.params_["q"], self.params_["gamma"]

    def log_likelihood(self, frequency: Any, monetary_value: Any) -> np.ndarray:
        """Per-customer log-likelihood under the fitted parameters."""
        return gamma_gamma_log_likelihood(*self._check_fitted(), frequency, monetary_value)

    def conditional_expected_average_value(self, frequency: Any, monetary_value: Any) -> np.ndarray:
        """Expected value of each customer's future orders given ``frequency`` orders of mean ``monetary_value``.

        Customers with ``frequency`` 0 get the population mean (their ``monetary_value`` is ignored).
        """
        p, q, g = self._check_fitted()
        x = np.asarray(frequency, dtype=float).ravel()
        m = np.asarray(monetary_value, dtype=float).ravel()
        if len(x) != len(m):
            raise ValueError(f"frequency and monetary_value differ in length: {len(x)} vs {len(m)}")
        if (~np.isfinite(x) | (x < 0)).any():
            raise ValueError("frequency: values must be finite and >= 0")
        has = x > 0
        if (has & (~np.isfinite(m) | (m <= 0))).any():
            raise ValueError("monetary_value: must be finite and > 0 where frequency > 0")
        m = np.where(has, m, 0.0)
        px = p * x
        own = px / (px + q - 1.0)
        return (1.0 - own) * self.population_mean_ + own * m
