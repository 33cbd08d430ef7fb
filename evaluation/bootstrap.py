"""Paired bootstrap intervals: is model A really better than model B on the same customers?"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

Metric = Callable[[np.ndarray, np.ndarray], float]


def paired_bootstrap(y: np.ndarray, pred_a: np.ndarray, pred_b: np.ndarray, metric: Metric, n_samples: int = 500,
                     seed: int = 0, strata: np.ndarray | None = None) -> dict[str, float]:
    """The difference metric(a) - metric(b) on the full sample and its 95% percentile interval.

    Customers are resampled with replacement, the same resample for both models (paired). With
    ``strata`` (e.g. the cutoff of each row) resampling happens within each stratum.
    """
    y, a, b = (np.asarray(v) for v in (y, pred_a, pred_b))
    if not (len(y) == len(a) == len(b)):
        raise ValueError(f"y, pred_a and pred_b must have the same length, got {len(y)}, {len(a)}, {len(b)}")
    rng = np.random.default_rng(seed)
    groups = [np.arange(len(y))] if strata is None else [np.flatnonzero(strata == s) for s in np.unique(strata)]
    diffs = np.empty(n_samples)
    for i in range(n_samples):
        idx = np.concatenate([g[rng.integers(0, len(g), len(g))] for g in groups])
        diffs[i] = metric(y[idx], a[idx]) - metric(y[idx], b[idx])
    lo, hi = np.nanpercentile(diffs, [2.5, 97.5])
    return {"diff": float(metric(y, a) - metric(y, b)), "ci_low": float(lo), "ci_high": float(hi),
            "excludes_zero": bool(lo > 0 or hi < 0), "n_samples": n_samples}
