"""ChurnModel: scikit-learn conventions, BG/NBD starting score, explanations."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.exceptions import NotFittedError

from training.churn_model import BGNBD_INPUTS, ChurnModel


def _data(n: int = 3000, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    """Customers simulated from a BG/NBD process over their history and the next 60 days.

    Label = no purchase in the 60 days after the observation time T; one extra pure-noise feature.
    """
    rng = np.random.default_rng(seed)
    lam = rng.gamma(0.5, 1 / 20.0, n)
    drop = rng.beta(0.6, 3.0, n)
    T = rng.uniform(60, 400, n)
    x, t_x, y = np.zeros(n), np.zeros(n), np.ones(n, dtype=int)
    for i in range(n):
        t = 0.0
        while True:
            t += rng.exponential(1 / lam[i])
            if t > T[i] + 60:
                break
            if t <= T[i]:
                x[i], t_x[i] = x[i] + 1, t
            else:
                y[i] = 0
                break
            if rng.random() < drop[i]:
                break
    X = pd.DataFrame({BGNBD_INPUTS[0]: x, BGNBD_INPUTS[1]: t_x, BGNBD_INPUTS[2]: T,
                      "customer_orders__noise": rng.normal(size=n)})
    return X, y


def test_fit_predict_and_sklearn_conventions():
    X, y = _data()
    model = ChurnModel(horizon_days=60, n_estimators=30)
    with pytest.raises(NotFittedError):
        model.predict_proba(X)
    assert clone(model).get_params() == model.get_params()
    model.fit(X, y)
    p = model.predict_proba(X)
    assert p.shape == (len(X), 2)
    np.testing.assert_allclose(p.sum(axis=1), 1.0)
    assert set(model.predict(X)) <= {0, 1}
    assert list(model.classes_) == [0, 1]
    # the data are BG/NBD with a pure-noise extra feature: the model must keep BG/NBD's ranking
    from sklearn.metrics import roc_auc_score

    bgnbd = model.bgnbd_.p_no_purchase(60.0, *ChurnModel._rft(X))
    assert roc_auc_score(y, bgnbd) > 0.65
    assert roc_auc_score(y, p[:, 1]) > roc_auc_score(y, bgnbd) - 0.01


def test_explain_contributions_add_up_to_the_logit():
    X, y = _data()
    model = ChurnModel(horizon_days=60, n_estimators=30).fit(X, y)
    p, contrib, values, names = model.explain(X.head(50))
    np.testing.assert_allclose(p, model.predict_proba(X.head(50))[:, 1])
    assert contrib.shape == values.shape == (50, len(names))
    assert "bgnbd_p_no_purchase" in names
    # contributions (with the BG/NBD baseline relative to the population mean) + constant = logit
    logit = np.log(p) - np.log1p(-p)
    residual = logit - contrib.sum(axis=1)
    np.testing.assert_allclose(residual, residual[0], atol=1e-6)


def test_explain_uses_lightgbm_contributions_and_pickles_without_its_tables():
    import pickle

    X, y = _data(1500)
    model = ChurnModel(horizon_days=60, n_estimators=30).fit(X, y)
    _, contrib, values, _ = model.explain(X.head(40))
    assert model._shap_tables  # built on first use
    D = model.design_matrix(X.head(40))
    lightgbm = model.lgbm_.booster_.predict(D, num_iteration=model.best_iteration_, pred_contrib=True)[:, :-1]
    j = model._p_no_purchase_col  # the BG/NBD column also carries the starting score
    keep = [i for i in range(D.shape[1]) if i != j]
    np.testing.assert_allclose(contrib[:, keep], lightgbm[:, keep], atol=1e-10)
    copy = pickle.loads(pickle.dumps(model))
    assert getattr(copy, "_shap_tables", None) is None
    np.testing.assert_allclose(copy.explain(X.head(40))[1], contrib, atol=1e-12)


def test_missing_bgnbd_inputs_is_a_clear_error():
    X, y = _data(200)
    with pytest.raises(ValueError, match="needs feature columns"):
        ChurnModel(n_estimators=5).fit(X.drop(columns=[BGNBD_INPUTS[0]]), y)


def test_population_groups_must_cover_every_cutoff():
    X, y = _data(400)
    groups = np.repeat([1, 2], 200)
    with pytest.raises(ValueError, match="no population rows for cutoff"):
        ChurnModel(n_estimators=5).fit(X, y, groups=groups, population=X.head(10), population_groups=np.ones(10))
