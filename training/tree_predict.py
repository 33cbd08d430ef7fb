"""LightGBM predictions with a thread count that suits the batch size.

A handful of rows (one HTTP request) is scored fastest on one thread: with LightGBM's default (every
core) each call waits for OpenMP workers, which on a busy 2-core machine cost 10-16 ms per call
instead of 0.1 ms. Large batches keep every core.
"""

from __future__ import annotations

import numpy as np

SMALL_BATCH_ROWS = 512


def booster_predict(booster, A: np.ndarray, num_iteration: int | None = None, **kwargs) -> np.ndarray:
    """``booster.predict(A, ...)`` on one thread for small batches, on all cores for large ones."""
    threads = 1 if len(A) < SMALL_BATCH_ROWS else 0
    return booster.predict(A, num_iteration=num_iteration, num_threads=threads, **kwargs)
