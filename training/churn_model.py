"""The churn model: LightGBM boosted from the BG/NBD churn logit, as a scikit-learn estimator.

BG/NBD (fitted per cutoff population, unsupervised) gives each customer P(no purchase in H) from
their repeat purchases, purchase span and age; that logit is LightGBM's starting score, and its outputs
are features too. LightGBM (binary log-loss, so probabilities are calibrated on the stacked cutoffs)
then corrects it with the behavioural features. Per-customer contributions explain each score.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from lightgbm import LGBMClassifier, early_stopping
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils.validation import check_is_fitted

from training.bgnbd import BetaGeoModel
from training.customer_base import BGNBD_INPUTS, bgnbd_input_arrays, bgnbd_inputs, fit_bgnbd_per_group
from training.levels import LEVELS, logit_offset
from training.tree_predict import booster_predict
from training.tree_shap import tree_shap_tables

BGNBD_FEATURES = ("bgnbd_p_alive", "bgnbd_expected_purchases", "bgnbd_p_no_purchase")
_EPS = 1e-3  # BG/NBD is overconfident at its extremes; beyond ±6.9 logits the trees could not correct it


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, _EPS, 1 - _EPS)
    return np.log(p) - np.log1p(-p)


class ChurnModel(ClassifierMixin, BaseEstimator):
    """P(no order in the next ``horizon_days``) for eligible customers.

    ``X`` holds Feast features (``view__feature`` columns) including :data:`BGNBD_INPUTS`.
    ``fit(X, y, groups=cutoff_per_row)`` fits one BG/NBD per cutoff; predictions use the BG/NBD fitted
    by :meth:`fit_population` (by default the last training cutoff's population).
    """

    def __init__(
        self,
        horizon_days: int = 90,
        init_from_bgnbd: bool = True,
        n_estimators: int = 400,
        learning_rate: float = 0.03,
        num_leaves: int = 15,
        min_child_samples: int = 50,
        subsample: float = 0.8,
        subsample_freq: int = 1,
        colsample_bytree: float = 0.8,
        reg_lambda: float = 5.0,
        early_stopping_rounds: int = 50,
        level: str = "customer_base",
        random_state: int = 0,
        n_jobs: int = 2,
    ) -> None:
        self.horizon_days = horizon_days
        self.init_from_bgnbd = init_from_bgnbd
        self.n_estimators = n_estimators
        self.learning_rate = learning_rate
        self.num_leaves = num_leaves
        self.min_child_samples = min_child_samples
        self.subsample = subsample
        self.subsample_freq = subsample_freq
        self.colsample_bytree = colsample_bytree
        self.reg_lambda = reg_lambda
        self.early_stopping_rounds = early_stopping_rounds
        self.level = level
        self.random_state = random_state
        self.n_jobs = n_jobs

    # -- BG/NBD part -------------------------------------------------------------------------------
    @staticmethod
    def _rft(X: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return bgnbd_inputs(X)

    def _fit_bgnbd(self, X: pd.DataFrame) -> BetaGeoModel:
        return BetaGeoModel().fit(*self._rft(X))

    def _bgnbd_block(self, X: pd.DataFrame, bg: BetaGeoModel) -> pd.DataFrame:
        x, t_x, T = self._rft(X)
        outputs = bg.horizon_outputs(float(self.horizon_days), x, t_x, T)
        return pd.DataFrame(dict(zip(BGNBD_FEATURES, outputs)), index=X.index)

    def _design(self, X: pd.DataFrame, groups: np.ndarray | None, bg) -> pd.DataFrame:
        """Features plus BG/NBD outputs; ``bg`` is one BG/NBD or a dict cutoff -> BG/NBD for ``groups``."""
        if groups is None:  # one block of floats: cheap for the one-customer requests of the service
            block = self._bgnbd_block(X, bg if bg is not None else self.bgnbd_)
            cols = list(self.feature_names_in_) if hasattr(self, "feature_names_in_") else list(X.columns)
            return pd.DataFrame(np.hstack([X[cols].to_numpy(dtype="float64"), block.to_numpy(dtype="float64")]),
                                columns=[*cols, *block.columns], index=X.index)
        else:
            parts = []
            for g in pd.unique(groups):
                mask = groups == g
                parts.append(self._bgnbd_block(X.loc[mask], bg[g]))
            block = pd.concat(parts).loc[X.index]
        cols = list(self.feature_names_in_) if hasattr(self, "feature_names_in_") else list(X.columns)
        return pd.concat([X[cols].astype("float64"), block], axis=1)

    def _fit_bgnbd_groups(self, X, groups, population, population_groups) -> dict:
        """One BG/NBD per cutoff, fitted on that cutoff's whole customer base (``population``) or on X."""
        if population is None:
            population, population_groups = X, groups
        return fit_bgnbd_per_group(groups, population, population_groups)

    # -- estimator API -----------------------------------------------------------------------------
    def fit(
        self,
        X: pd.DataFrame,
        y: np.ndarray,
        groups: np.ndarray | None = None,
        eval_set: tuple[pd.DataFrame, np.ndarray] | None = None,
        population: pd.DataFrame | None = None,
        population_groups: np.ndarray | None = None,
        eval_population: pd.DataFrame | None = None,
    ) -> "ChurnModel":
        """Fit on stacked cutoffs.

        ``groups`` is the cutoff of each row. BG/NBD is fitted per cutoff on ``population`` (every
        customer with history at that cutoff, grouped by ``population_groups``), or on ``X`` when not
        given. ``eval_set`` (with ``eval_population``) enables early stopping.
        """
        if self.level not in LEVELS:
            raise ValueError(f"level must be one of {LEVELS}, got {self.level!r}")
        self._shap_tables = None  # built again for the new trees when first needed
        X = X.reset_index(drop=True)
        y = np.asarray(y, dtype=int)
        self.feature_names_in_ = np.asarray(list(X.columns), dtype=object)
        self.classes_ = np.array([0, 1])
        groups = np.asarray(groups) if groups is not None else np.zeros(len(X))
        if population is not None:
            population = population.reset_index(drop=True)
        fitted = self._fit_bgnbd_groups(X, groups, population, population_groups)
        D = self._design(X, groups, fitted)
        init = _logit(D["bgnbd_p_no_purchase"].to_numpy()) if self.init_from_bgnbd else None
        # The trees train on the raw BG/NBD starting logits (on the Online Retail backtests this ranked better
        # than per-cutoff offsets, which help the purchase counts); the level is re-anchored after training.
        fit_kw: dict = {"init_score": init}
        callbacks = []
        if eval_set is not None:
            Xv = eval_set[0].reset_index(drop=True)
            bgv = self._fit_bgnbd(eval_population if eval_population is not None else Xv)
            Dv = self._design(Xv, None, bgv)
            fit_kw["eval_X"] = (Dv,)
            fit_kw["eval_y"] = (np.asarray(eval_set[1], dtype=int),)
            if self.init_from_bgnbd:
                fit_kw["eval_init_score"] = [_logit(Dv["bgnbd_p_no_purchase"].to_numpy())]
            callbacks.append(early_stopping(self.early_stopping_rounds, verbose=False))
        self.lgbm_ = LGBMClassifier(
            objective="binary",
            n_estimators=self.n_estimators,
            learning_rate=self.learning_rate,
            num_leaves=self.num_leaves,
            min_child_samples=self.min_child_samples,
            subsample=self.subsample,
            subsample_freq=self.subsample_freq,
            colsample_bytree=self.colsample_bytree,
            reg_lambda=self.reg_lambda,
            random_state=self.random_state,
            n_jobs=self.n_jobs,
            # the same data and seed give the same model: LightGBM otherwise picks its histogram layout
            # (row- or column-wise) by timing both on the machine at fit time
            force_col_wise=True,
            deterministic=True,
            verbose=-1,
        )
        self.lgbm_.fit(D, y, callbacks=callbacks, **fit_kw)
        self.best_iteration_ = int(self.lgbm_.best_iteration_ or self.n_estimators)
        self.design_columns_ = list(D.columns)
        last = pd.unique(groups)[-1]
        self.bgnbd_ = fitted[last]
        self.init_logit_mean_ = float(init[groups == last].mean()) if init is not None else 0.0
        self.level_offset_ = 0.0
        self._set_level(D.loc[groups == last])
        return self

    def _set_level(self, D: pd.DataFrame) -> None:
        """With ``level="customer_base"``: the offset making the mean churn probability over the customers
        of ``D`` equal BG/NBD's mean P(no purchase in H); the trees rank, BG/NBD sets the level (see
        :mod:`training.levels`)."""
        if not (self.init_from_bgnbd and self.level == "customer_base") or len(D) == 0:
            return
        init = _logit(D["bgnbd_p_no_purchase"].to_numpy())
        tree = booster_predict(self.lgbm_.booster_, D.to_numpy(), self.best_iteration_, raw_score=True)
        self.level_offset_ = logit_offset(1.0 / (1.0 + np.exp(-init)), init + tree)

    def fit_population(self, population: pd.DataFrame, X: pd.DataFrame | None = None) -> "ChurnModel":
        """Refit the BG/NBD part on the customer base as of the score date (``population``: every customer
        with history then); given the features ``X`` of the customers scored then, re-anchor the level."""
        check_is_fitted(self, "lgbm_")
        self.bgnbd_ = self._fit_bgnbd(population)
        # the population's mean starting logit: contributions of the BG/NBD baseline are relative to it
        self.init_logit_mean_ = float(_logit(self._bgnbd_block(population, self.bgnbd_)["bgnbd_p_no_purchase"].to_numpy()).mean())
        if X is not None:
            self._set_level(self._design(X.reset_index(drop=True), None, None))
        return self

    def design_matrix(self, X: pd.DataFrame | np.ndarray) -> np.ndarray:
        """The model's input matrix: features (``feature_names_in_`` order) then the BG/NBD outputs.

        ``X`` is a frame with those columns, or an array already in that column order (the service's
        hot path: no pandas for a one-customer request)."""
        if not hasattr(self, "lgbm_"):  # check_is_fitted's answer, without its cost on the hot path
            check_is_fitted(self, "lgbm_")
        if isinstance(X, pd.DataFrame):
            A = X[list(self.feature_names_in_)].to_numpy(dtype="float64")
        else:
            A = np.asarray(X, dtype="float64").reshape(-1, len(self.feature_names_in_))
        names = list(self.feature_names_in_)
        x, t_x, T = bgnbd_input_arrays(*(A[:, names.index(c)] for c in BGNBD_INPUTS))
        return np.column_stack([A, *self.bgnbd_.horizon_outputs(float(self.horizon_days), x, t_x, T, checked=True)])

    def _raw_from(self, D: np.ndarray, tree: np.ndarray) -> np.ndarray:
        """Churn logit from the trees' raw score: plus the BG/NBD starting logit and the level offset."""
        if not self.init_from_bgnbd:
            return tree
        return tree + _logit(D[:, self._p_no_purchase_col]) + getattr(self, "level_offset_", 0.0)

    @property
    def _p_no_purchase_col(self) -> int:
        return len(self.feature_names_in_) + BGNBD_FEATURES.index("bgnbd_p_no_purchase")

    def decision_function(self, X: pd.DataFrame | np.ndarray) -> np.ndarray:
        """Churn logit."""
        D = self.design_matrix(X)
        return self._raw_from(D, booster_predict(self.lgbm_.booster_, D, self.best_iteration_, raw_score=True))

    def predict_proba(self, X: pd.DataFrame | np.ndarray) -> np.ndarray:
        """Columns: P(active), P(churn)."""
        p = 1.0 / (1.0 + np.exp(-self.decision_function(X)))
        return np.column_stack([1 - p, p])

    def predict(self, X: pd.DataFrame | np.ndarray) -> np.ndarray:
        return (self.predict_proba(X)[:, 1] >= 0.5).astype(int)

    def explain(self, X: pd.DataFrame | np.ndarray, threads: int = 1
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[str]]:
        """Churn probability, per-feature logit contributions, feature values and their names.

        Contributions are LightGBM's (SHAP) contributions; with BG/NBD as the starting score its
        logit is attributed to ``bgnbd_p_no_purchase`` (the purchase-pattern baseline). One tree pass:
        the contributions plus the expected value sum to the trees' raw score. ``threads``: for large
        batches (``ecrm score``); the numbers do not depend on it.
        """
        D = self.design_matrix(X)
        contrib = self._contributions(D, threads)
        raw = self._raw_from(D, contrib.sum(axis=1))
        contrib = contrib[:, :-1]  # drop the expected-value column
        names = [*self.feature_names_in_, *BGNBD_FEATURES]
        if self.init_from_bgnbd:
            j = self._p_no_purchase_col
            contrib[:, j] += _logit(D[:, j]) - self.init_logit_mean_
        p = 1.0 / (1.0 + np.exp(-raw))
        return p, contrib, D, names

    def _contributions(self, D: np.ndarray, threads: int = 1) -> np.ndarray:
        """LightGBM's SHAP contributions of the design rows ``D``, from per-leaf tables built on first use
        (:mod:`training.tree_shap`, same numbers, several times faster) or from LightGBM itself when the
        trees have splits the tables do not support."""
        tables = getattr(self, "_shap_tables", None)
        if tables is None:
            try:
                tables = tree_shap_tables(self.lgbm_.booster_, self.best_iteration_)
            except NotImplementedError:
                tables = False
            self._shap_tables = tables
        if tables is False:
            return booster_predict(self.lgbm_.booster_, D, self.best_iteration_, pred_contrib=True)
        return tables.contributions(D, threads)

    def __getstate__(self) -> dict:
        """Pickled without the SHAP tables: they are rebuilt from the trees when first needed."""
        state = super().__getstate__()
        state.pop("_shap_tables", None)
        return state

    def feature_importance(self) -> pd.Series:
        """Total gain per design column, largest first."""
        check_is_fitted(self, "lgbm_")
        gain = self.lgbm_.booster_.feature_importance(importance_type="gain", iteration=self.best_iteration_)
        return pd.Series(gain, index=self.design_columns_).sort_values(ascending=False)
