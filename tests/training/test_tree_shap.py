"""Table-based TreeSHAP: exactly LightGBM's ``pred_contrib`` numbers, missing values included."""

from __future__ import annotations

import lightgbm as lgb
import numpy as np
import pytest

from training.tree_shap import tree_shap_tables


def _data(seed: int = 0, n: int = 2000, f: int = 6) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, f))
    X[:, 3] = rng.integers(0, 4, n)  # few distinct values: rows land exactly on thresholds
    X[rng.random(X.shape) < 0.15] = np.nan
    X[rng.random(X.shape) < 0.10] = 0.0
    y = np.nan_to_num(X[:, 0]) + np.nan_to_num(X[:, 1]) * (np.nan_to_num(X[:, 2]) > 0) + 0.5 * np.nan_to_num(X[:, 3])
    return X, y + rng.normal(scale=0.3, size=n)


def _train(X, y, **params) -> lgb.Booster:
    base = {"objective": "regression", "num_leaves": 15, "min_data_in_leaf": 20, "learning_rate": 0.1,
            "verbose": -1, "deterministic": True, "num_threads": 1}
    return lgb.train({**base, **params}, lgb.Dataset(X, y), num_boost_round=40)


@pytest.mark.parametrize("params", [{}, {"zero_as_missing": True}, {"use_missing": False},
                                    {"objective": "binary", "max_depth": 3}])
def test_contributions_equal_lightgbm(params):
    X, y = _data()
    if params.get("objective") == "binary":
        y = (y > np.median(y)).astype(int)
    booster = _train(X, y, **params)
    rows = np.vstack([X[:300], np.full((1, X.shape[1]), np.nan), np.zeros((1, X.shape[1]))])
    expected = booster.predict(rows, pred_contrib=True)
    got = tree_shap_tables(booster).contributions(rows)
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-10)
    # the contributions and the expected value add up to the raw score
    np.testing.assert_allclose(got.sum(axis=1), booster.predict(rows, raw_score=True), atol=1e-10)


def test_first_iterations_only_and_any_batch_size():
    X, y = _data(seed=1, n=3000)
    booster = _train(X, y)
    tables = tree_shap_tables(booster, num_iteration=7)
    expected = booster.predict(X, num_iteration=7, pred_contrib=True)
    np.testing.assert_allclose(tables.contributions(X), expected, atol=1e-10)  # more rows than one pass holds
    np.testing.assert_allclose(tables.contributions(X[:1]), expected[:1], atol=1e-10)
    assert tables.contributions(X[:0]).shape == (0, X.shape[1] + 1)
    # chunks in threads (ecrm score): the same numbers, bit for bit, whatever the thread count
    one = tables.contributions(X)
    for threads in (2, 3):
        assert np.array_equal(tables.contributions(X, threads=threads), one)
    assert np.array_equal(tables.contributions(X[:1], threads=2), one[:1])


def test_trees_of_one_leaf_only_give_the_expected_value():
    X, y = _data(n=30)
    booster = _train(X, y, min_data_in_leaf=100)  # no split is possible
    got = tree_shap_tables(booster).contributions(X[:5])
    np.testing.assert_allclose(got, booster.predict(X[:5], pred_contrib=True), atol=1e-12)
    assert np.all(got[:, :-1] == 0)


def test_wrong_width_and_categorical_splits_are_refused():
    X, y = _data()
    tables = tree_shap_tables(_train(X, y))
    with pytest.raises(ValueError, match="rows of 6 features"):
        tables.contributions(X[:, :5])
    Xc = X.copy()
    Xc[:, 3] = np.nan_to_num(Xc[:, 3])
    cat = lgb.train({"objective": "regression", "verbose": -1, "min_data_per_group": 5, "cat_smooth": 1},
                    lgb.Dataset(Xc, y, categorical_feature=[3]), num_boost_round=5)
    with pytest.raises(NotImplementedError, match="categorical"):
        tree_shap_tables(cat)
