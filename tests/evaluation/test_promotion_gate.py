"""The promotion gate: a worse challenger is refused, a tie is refused, a clear winner is promoted."""

from __future__ import annotations

import numpy as np
import pytest

from evaluation.promotion import promotion_gate


@pytest.fixture
def outcomes():
    rng = np.random.default_rng(7)
    p_true = rng.uniform(0.05, 0.95, 3000)
    y = (rng.uniform(size=3000) < p_true).astype(int)
    noisy = np.clip(p_true + rng.normal(0, 0.25, 3000), 0.01, 0.99)
    return y, p_true, noisy


def test_worse_challenger_is_refused(outcomes):
    y, good, bad = outcomes
    res = promotion_gate(y, champion=good, challenger=bad, metric="brier", n_samples=200)
    assert not res["promote"] and not res["better"] and res["diff"] > 0


def test_identical_challenger_is_refused(outcomes):
    y, good, _ = outcomes
    res = promotion_gate(y, champion=good, challenger=good.copy(), metric="brier", n_samples=100)
    assert not res["promote"] and res["diff"] == 0.0


def test_clear_winner_is_promoted_for_lower_and_higher_is_better_metrics(outcomes):
    y, good, bad = outcomes
    assert promotion_gate(y, champion=bad, challenger=good, metric="brier", n_samples=200)["promote"]
    res = promotion_gate(y, champion=bad, challenger=good, metric="roc_auc", n_samples=200)
    assert res["promote"] and res["diff"] > 0 and res["ci_low"] > 0


def test_unknown_metric_is_an_error(outcomes):
    y, good, bad = outcomes
    with pytest.raises(ValueError, match="unknown promotion metric 'accuracy'"):
        promotion_gate(y, good, bad, metric="accuracy", n_samples=10)
