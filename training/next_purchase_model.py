"""Next purchase and customer value: orders, spend and P(order soon), as a scikit-learn estimator.

Like the churn model, each part starts from the probabilistic customer-base model and lets LightGBM
learn what it misses from the behavioural features:

* **orders in H**: LightGBM with a Poisson objective, boosted from log E[orders in H] of BG/NBD;
* **spend in H**: LightGBM with a Tweedie objective (zero-inflated money), boosted from
  log(BG/NBD E[orders in H] x Gamma-Gamma E[order value]);
* **P(order within the short window)** (30 days): binary LightGBM boosted from BG/NBD's logit;
* **12-month value** (``clv_12m``): the spend forecast for H carried to 12 months along the customer's
  own BG/NBD + Gamma-Gamma curve: ``expected_spend x value_bg(365 d) / value_bg(H)`` (undiscounted).

BG/NBD and Gamma-Gamma are fitted per training cutoff on that cutoff's whole customer base, and on
the customer base at the score date by :meth:`NextPurchaseModel.fit_population`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from lightgbm import LGBMClassifier, LGBMRegressor, early_stopping
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.utils.validation import check_is_fitted

from training.bgnbd import BetaGeoModel
from training.customer_base import ORDER_VALUE, bgnbd_inputs
from training.tree_predict import booster_predict
from training.gamma_gamma import GammaGammaModel
from training.levels import LEVELS, group_offsets, log_offset, logit_offset

PREDICTIONS = ("expected_purchases", "expected_spend", "p_purchase_short", "clv_12m")
_FLOOR = 1e-3
_EPS = 1e-3


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, _EPS, 1 - _EPS)
    return np.log(p) - np.log1p(-p)


class CustomerBaseModel:
    """BG/NBD + Gamma-Gamma on one cutoff's customer base: expected orders and value over any window."""

    def __init__(self, population: pd.DataFrame) -> None:
        x, t_x, T = bgnbd_inputs(population)
        self.bgnbd = BetaGeoModel().fit(x, t_x, T)
        value = population[ORDER_VALUE].to_numpy(float) if ORDER_VALUE in population else np.full(len(x), np.nan)
        repeat = (x >= 1) & np.isfinite(value) & (value > 0)
        self.gamma_gamma: GammaGammaModel | None = None
        self.mean_value = float(np.nanmean(value[value > 0])) if np.any(value > 0) else 1.0
        if repeat.sum() >= 20:
            try:
                self.gamma_gamma = GammaGammaModel().fit(x[repeat], value[repeat])
            except ValueError:  # e.g. q <= 1: no finite mean; fall back to the observed mean
                self.gamma_gamma = None

    def order_value(self, X: pd.DataFrame) -> np.ndarray:
        """Expected value of a future order of each customer (Gamma-Gamma, or the base's mean value)."""
        x, _, _ = bgnbd_inputs(X)
        value = X[ORDER_VALUE].to_numpy(float) if ORDER_VALUE in X else np.full(len(X), np.nan)
        known = (x >= 1) & np.isfinite(value) & (value > 0)
        out = np.full(len(X), self.mean_value if self.gamma_gamma is None else self.gamma_gamma.population_mean_)
        if self.gamma_gamma is not None and known.any():
            out[known] = self.gamma_gamma.conditional_expected_average_value(x[known], value[known])
        elif known.any():
            out[known] = value[known]
        return out

    def block(self, X: pd.DataFrame, horizon_days: float, short_days: float) -> pd.DataFrame:
        """BG/NBD and Gamma-Gamma quantities used as features and starting scores."""
        x, t_x, T = bgnbd_inputs(X)
        value = self.order_value(X)
        e_h = self.bgnbd.expected_purchases(float(horizon_days), x, t_x, T)
        e_year = self.bgnbd.expected_purchases(365.0, x, t_x, T)
        return pd.DataFrame({
            "bgnbd_p_alive": self.bgnbd.p_alive(x, t_x, T),
            "bgnbd_expected_purchases": e_h,
            "bgnbd_p_purchase_short": 1.0 - self.bgnbd.p_no_purchase(float(short_days), x, t_x, T),
            "gg_expected_order_value": value,
            "bg_expected_spend": e_h * value,
            "bg_expected_spend_12m": e_year * value,
        }, index=X.index)


class NextPurchaseModel(RegressorMixin, BaseEstimator):
    """Orders and spend in the next ``horizon_days``, P(order in ``short_days``), and 12-month value.

    ``X`` holds Feast customer features (``view__feature`` columns) including the BG/NBD inputs.
    ``predict`` returns expected orders; :meth:`predict_frame` returns every forecast.
    """

    def __init__(
        self,
        horizon_days: int = 90,
        short_days: int = 30,
        n_estimators: int | dict[str, int] = 600,
        learning_rate: float = 0.03,
        num_leaves: int = 15,
        min_child_samples: int = 50,
        subsample: float = 0.8,
        subsample_freq: int = 1,
        colsample_bytree: float = 0.8,
        reg_lambda: float = 5.0,
        tweedie_variance_power: float = 1.5,
        early_stopping_rounds: int = 50,
        level: str = "customer_base",
        random_state: int = 0,
        n_jobs: int = 2,
    ) -> None:
        self.horizon_days = horizon_days
        self.short_days = short_days
        self.n_estimators = n_estimators
        self.learning_rate = learning_rate
        self.num_leaves = num_leaves
        self.min_child_samples = min_child_samples
        self.subsample = subsample
        self.subsample_freq = subsample_freq
        self.colsample_bytree = colsample_bytree
        self.reg_lambda = reg_lambda
        self.tweedie_variance_power = tweedie_variance_power
        self.early_stopping_rounds = early_stopping_rounds
        self.level = level
        self.random_state = random_state
        self.n_jobs = n_jobs

    # -- design ------------------------------------------------------------------------------------
    def _trees(self, part: str) -> int:
        """Trees of one part: ``n_estimators`` is one number for all parts or a dict part -> trees."""
        n = self.n_estimators
        return int(n[part]) if isinstance(n, dict) else int(n)

    def _lgbm_params(self, part: str) -> dict:
        return dict(n_estimators=self._trees(part), learning_rate=self.learning_rate, num_leaves=self.num_leaves,
                    min_child_samples=self.min_child_samples, subsample=self.subsample,
                    subsample_freq=self.subsample_freq, colsample_bytree=self.colsample_bytree,
                    reg_lambda=self.reg_lambda, random_state=self.random_state, n_jobs=self.n_jobs,
                    force_col_wise=True, deterministic=True, verbose=-1)  # reproducible (see ChurnModel.fit)

    def _design(self, X: pd.DataFrame, groups: np.ndarray | None, bases) -> pd.DataFrame:
        if groups is None:
            block = bases.block(X, self.horizon_days, self.short_days)
        else:
            parts = [bases[g].block(X.loc[groups == g], self.horizon_days, self.short_days) for g in pd.unique(groups)]
            block = pd.concat(parts).loc[X.index]
        cols = list(self.feature_names_in_)
        return pd.concat([X[cols].astype("float64"), block], axis=1)

    _LINKS = {"orders": "log", "spend": "log", "short": "logit"}
    _BASELINE = {"orders": "bgnbd_expected_purchases", "spend": "bg_expected_spend", "short": "bgnbd_p_purchase_short"}

    def _leveled(self, inits: dict[str, np.ndarray], targets: dict[str, np.ndarray], groups: np.ndarray
                 ) -> dict[str, np.ndarray]:
        """Starting scores shifted per cutoff to that cutoff's actual level (see training.levels)."""
        if self.level == "learned":
            return inits
        return {k: v + group_offsets(groups, targets[k], v, self._LINKS[k]) for k, v in inits.items()}

    @staticmethod
    def _inits(D: pd.DataFrame) -> dict[str, np.ndarray]:
        return {
            "orders": np.log(np.maximum(D["bgnbd_expected_purchases"].to_numpy(), _FLOOR)),
            "spend": np.log(np.maximum(D["bg_expected_spend"].to_numpy(), _FLOOR)),
            "short": _logit(D["bgnbd_p_purchase_short"].to_numpy()),
        }

    # -- estimator API -----------------------------------------------------------------------------
    def fit(self, X: pd.DataFrame, y_orders, y_spend, y_short, groups=None, population: pd.DataFrame | None = None,
            population_groups=None, eval_set: tuple | None = None, eval_population: pd.DataFrame | None = None
            ) -> "NextPurchaseModel":
        """Fit the three parts on stacked cutoffs.

        ``y_orders``: orders in H; ``y_spend``: spend in H; ``y_short``: 1 if an order in ``short_days``.
        ``groups`` is each row's cutoff; the customer-base models are fitted per cutoff on ``population``
        (grouped by ``population_groups``), or on ``X``. ``eval_set = (Xv, yv_orders, yv_spend, yv_short)``
        with ``eval_population`` enables early stopping for each part.
        """
        if self.level not in LEVELS:
            raise ValueError(f"level must be one of {LEVELS}, got {self.level!r}")
        X = X.reset_index(drop=True)
        self.feature_names_in_ = np.asarray(list(X.columns), dtype=object)
        groups = np.asarray(groups) if groups is not None else np.zeros(len(X))
        if population is None:
            population, population_groups = X, groups
        population = population.reset_index(drop=True)
        pg = np.asarray(population_groups)
        bases = {g: CustomerBaseModel(population.loc[pg == g]) for g in pd.unique(groups)}
        D = self._design(X, groups, bases)
        inits = self._inits(D)
        targets = {"orders": np.asarray(y_orders, float), "spend": np.clip(np.asarray(y_spend, float), 0, None),
                   "short": (np.asarray(y_short) > 0).astype(int)}
        inits = self._leveled(inits, targets, groups)
        evals: dict[str, dict] = {k: {} for k in targets}
        callbacks = []
        if eval_set is not None:
            Xv = eval_set[0].reset_index(drop=True)
            base_v = CustomerBaseModel(eval_population if eval_population is not None else Xv)
            Dv = self._design(Xv, None, base_v)
            iv = self._inits(Dv)
            yv = {"orders": np.asarray(eval_set[1], float), "spend": np.clip(np.asarray(eval_set[2], float), 0, None),
                  "short": (np.asarray(eval_set[3]) > 0).astype(int)}
            iv = self._leveled(iv, yv, np.zeros(len(Xv)))
            for k in targets:
                evals[k] = {"eval_X": (Dv,), "eval_y": (yv[k],), "eval_init_score": [iv[k]]}
            callbacks = [early_stopping(self.early_stopping_rounds, verbose=False)]
        self.orders_ = LGBMRegressor(objective="poisson", **self._lgbm_params("orders"))
        self.spend_ = LGBMRegressor(objective="tweedie", tweedie_variance_power=self.tweedie_variance_power,
                                    **self._lgbm_params("spend"))
        self.short_ = LGBMClassifier(objective="binary", **self._lgbm_params("short"))
        self.best_iterations_ = {}
        for name, est in (("orders", self.orders_), ("spend", self.spend_), ("short", self.short_)):
            est.fit(D, targets[name], init_score=inits[name], callbacks=list(callbacks), **evals[name])
            self.best_iterations_[name] = int(est.best_iteration_ or self._trees(name))
        self.design_columns_ = list(D.columns)
        last = pd.unique(groups)[-1]
        self.base_ = bases[last]
        self.level_offsets_ = {k: 0.0 for k in self._LINKS}
        self._set_level(D.loc[groups == last])
        return self

    def _set_level(self, D: pd.DataFrame) -> None:
        """With ``level="customer_base"``: offsets that give the trees' forecasts, summed over the customers
        of ``D``, the customer-base model's totals (orders, spend, mean P(order soon)); the trees only shape."""
        if self.level == "learned" or len(D) == 0:
            return
        inits = self._inits(D)
        for name, est in (("orders", self.orders_), ("spend", self.spend_), ("short", self.short_)):
            shaped = inits[name] + self._raw(est, name, D, 0.0)
            baseline = D[self._BASELINE[name]].to_numpy()
            fn = log_offset if self._LINKS[name] == "log" else logit_offset
            self.level_offsets_[name] = fn(baseline, shaped)

    def fit_population(self, population: pd.DataFrame, X: pd.DataFrame | None = None) -> "NextPurchaseModel":
        """Refit BG/NBD and Gamma-Gamma on the customer base as of the score date (``population``: every
        customer with history then), and, given the features ``X`` of the customers to be scored then,
        re-anchor the forecasts' level on them (``level="customer_base"``)."""
        check_is_fitted(self, "orders_")
        self.base_ = CustomerBaseModel(population.reset_index(drop=True))
        if X is not None:
            self._set_level(self._design(X.reset_index(drop=True), None, self.base_))
        return self

    def _raw(self, est, name: str, D: pd.DataFrame, init) -> np.ndarray:
        return booster_predict(est.booster_, D.to_numpy(), self.best_iterations_[name], raw_score=True) + init

    def predict_frame(self, X: pd.DataFrame) -> pd.DataFrame:
        """Every forecast per row: expected_purchases, expected_spend, p_purchase_short, clv_12m."""
        check_is_fitted(self, "orders_")
        D = self._design(X.reset_index(drop=True), None, self.base_)
        inits = self._inits(D)
        off = getattr(self, "level_offsets_", {})
        orders = np.exp(self._raw(self.orders_, "orders", D, inits["orders"] + off.get("orders", 0.0)))
        spend = np.exp(self._raw(self.spend_, "spend", D, inits["spend"] + off.get("spend", 0.0)))
        short = 1.0 / (1.0 + np.exp(-self._raw(self.short_, "short", D, inits["short"] + off.get("short", 0.0))))
        # 12 months hold the horizon: scale the spend forecast by BG/NBD's 12-month / H-month ratio
        # (>= 1; ~1 for customers BG/NBD thinks are gone, where both are ~0).
        year_factor = np.maximum((D["bg_expected_spend_12m"].to_numpy() + 1e-9)
                                 / (D["bg_expected_spend"].to_numpy() + 1e-9), 1.0)
        return pd.DataFrame({"expected_purchases": orders, "expected_spend": spend, "p_purchase_short": short,
                             "clv_12m": spend * year_factor})

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        """Expected number of orders in the next ``horizon_days``."""
        return self.predict_frame(X)["expected_purchases"].to_numpy()

    def baseline_frame(self, X: pd.DataFrame) -> pd.DataFrame:
        """The BG/NBD + Gamma-Gamma forecasts alone (the probabilistic baseline), same columns as predict_frame."""
        check_is_fitted(self, "orders_")
        b = self.base_.block(X.reset_index(drop=True), self.horizon_days, self.short_days)
        return pd.DataFrame({"expected_purchases": b["bgnbd_expected_purchases"].to_numpy(),
                             "expected_spend": b["bg_expected_spend"].to_numpy(),
                             "p_purchase_short": b["bgnbd_p_purchase_short"].to_numpy(),
                             "clv_12m": b["bg_expected_spend_12m"].to_numpy()})

    def feature_importance(self, part: str = "orders") -> pd.Series:
        """Total gain per design column for one part (orders, spend or short), largest first."""
        check_is_fitted(self, "orders_")
        est = {"orders": self.orders_, "spend": self.spend_, "short": self.short_}[part]
        gain = est.booster_.feature_importance(importance_type="gain", iteration=self.best_iterations_[part])
        return pd.Series(gain, index=self.design_columns_).sort_values(ascending=False)


def median_days_to_next_order(p_short: np.ndarray, p_horizon: np.ndarray, short_days: float, horizon_days: float,
                              max_days: float = 365.0) -> np.ndarray:
    """Days until the probability of having ordered reaches 50%, or NaN if not within ``max_days``.

    The chance of a first order is modelled with a constant hazard on [0, short) matching ``p_short``
    and another on [short, H) matching ``p_horizon``; the second continues beyond H. This is the
    median of the time to the next order under that piecewise-exponential curve.
    """
    p_short = np.clip(np.asarray(p_short, float), 0.0, 1 - 1e-9)
    p_horizon = np.clip(np.maximum(np.asarray(p_horizon, float), p_short), 0.0, 1 - 1e-9)
    h1 = -np.log1p(-p_short) / short_days
    h2 = (np.log1p(-p_short) - np.log1p(-p_horizon)) / (horizon_days - short_days)
    target = np.log(2.0)  # cumulative hazard at the median
    first = target / np.maximum(h1, 1e-12)
    second = short_days + (target - h1 * short_days) / np.maximum(h2, 1e-12)
    days = np.where(h1 * short_days >= target, first, second)
    return np.where(days <= max_days, days, np.nan)
