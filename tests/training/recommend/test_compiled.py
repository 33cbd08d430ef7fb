"""The rankers' compiled predict (lleaves) against LightGBM's own, and its fallback."""

from __future__ import annotations

import numpy as np
import pytest
from lightgbm import LGBMRanker

from training.recommend.compiled import compiled_predict


@pytest.fixture(scope="module")
def ranker() -> LGBMRanker:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(3000, 6))
    X[rng.random(X.shape) < 0.2] = np.nan  # missing values take the trees' default directions
    y = (np.nan_to_num(X[:, 0]) + 0.5 * np.nan_to_num(X[:, 1]) + rng.normal(0, 0.5, 3000) > 0.8).astype(int)
    return LGBMRanker(n_estimators=40, num_leaves=15, min_child_samples=5, verbose=-1).fit(
        X, y, group=np.full(100, 30))


def test_compiled_scores_equal_lightgbm(ranker):
    rng = np.random.default_rng(1)
    X = rng.normal(size=(5000, 6)).astype(np.float32)
    X[rng.random(X.shape) < 0.2] = np.nan
    want = ranker.booster_.predict(X)
    for threads in (1, 2):
        got = compiled_predict(ranker.booster_, threads)(X)
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-12)
    assert compiled_predict(ranker.booster_)(X[:0]).shape == (0,)


def test_falls_back_to_lightgbm_with_a_warning(ranker, monkeypatch):
    import lleaves

    def broken(*args, **kwargs):
        raise RuntimeError("no LLVM here")

    monkeypatch.setattr(lleaves, "Model", broken)
    X = np.random.default_rng(2).normal(size=(100, 6))
    with pytest.warns(RuntimeWarning, match="no LLVM here"):
        f = compiled_predict(ranker.booster_, 2)
    np.testing.assert_array_equal(f(X), ranker.booster_.predict(X))
