"""The paired bootstrap: a clear winner gets an interval excluding zero, identical models do not."""

from __future__ import annotations

import numpy as np
import pytest

from evaluation.bootstrap import paired_bootstrap


def mse(y, p):
    return float(np.mean((y - p) ** 2))


def test_clear_winner_and_tie():
    rng = np.random.default_rng(1)
    y = rng.normal(size=400)
    good = y + rng.normal(scale=0.1, size=400)
    bad = y + rng.normal(scale=1.0, size=400)
    res = paired_bootstrap(y, good, bad, mse, n_samples=200)
    assert res["diff"] < 0 and res["ci_high"] < 0 and res["excludes_zero"]
    same = paired_bootstrap(y, good, good, mse, n_samples=50)
    assert same == {"diff": 0.0, "ci_low": 0.0, "ci_high": 0.0, "excludes_zero": False, "n_samples": 50}


def test_deterministic_and_stratified():
    y = np.array([0.0, 1.0, 2.0, 3.0])
    a, b = y + 0.1, y + 0.5
    r1 = paired_bootstrap(y, a, b, mse, n_samples=30, seed=3, strata=np.array([0, 0, 1, 1]))
    r2 = paired_bootstrap(y, a, b, mse, n_samples=30, seed=3, strata=np.array([0, 0, 1, 1]))
    assert r1 == r2 and r1["diff"] == pytest.approx(0.01 - 0.25)


def test_length_mismatch_is_an_error():
    with pytest.raises(ValueError, match="same length"):
        paired_bootstrap(np.zeros(3), np.zeros(2), np.zeros(3), mse)


def test_fast_roc_auc_equals_sklearn_with_ties():
    from sklearn.metrics import roc_auc_score

    from training.metrics import fast_roc_auc

    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, 500)
    s = np.round(rng.normal(size=500) + y, 1)  # rounded: many ties
    assert fast_roc_auc(y, s) == pytest.approx(roc_auc_score(y, s), abs=1e-12)
    assert np.isnan(fast_roc_auc(np.ones(5), np.arange(5)))
