"""A LightGBM booster's predict compiled to machine code (lleaves, on LLVM), for scoring many rows.

The recommender scores about 70 candidates per customer with two rankers when it precomputes the lists:
at a million customers, about half of the list time went to LightGBM's own tree walk. lleaves compiles
the trees into one function per model: on the bench's 100k-customer rankers (198 trees of 31 leaves;
88 of 15), two threads, 1.7 instead of 5.5 us per row, after a 2 s compile (``finline=False``: the
inlined variant took 6-9 s to compile and was no faster). The scores equal LightGBM's up to float
rounding (largest difference 1e-14 there; the trees are summed in blocks). Should lleaves be missing
or fail to compile a model, LightGBM's predict is used, with a warning.
"""

from __future__ import annotations

import os
import tempfile
import warnings
from collections.abc import Callable

import numpy as np
from lightgbm import Booster


def compiled_predict(booster: Booster, threads: int = 1) -> Callable[[np.ndarray], np.ndarray]:
    """``f(X) -> raw scores`` of ``booster`` (the same as ``booster.predict(X)`` up to float rounding),
    compiled by lleaves; ``booster.predict`` with ``threads`` threads when lleaves cannot compile it."""
    threads = max(1, int(threads))
    try:
        import lleaves

        with tempfile.TemporaryDirectory(prefix="ecrm-lleaves-") as tmp:
            path = os.path.join(tmp, "model.txt")
            booster.save_model(path)
            model = lleaves.Model(model_file=path)
            model.compile(finline=False)
    except Exception as exc:  # noqa: BLE001 - any failure to compile: the uncompiled predict still works
        warnings.warn(f"lleaves could not compile the ranker ({type(exc).__name__}: {exc}); "
                      "scoring with LightGBM's predict instead (slower, same scores)", RuntimeWarning, stacklevel=2)
        return lambda X: booster.predict(X, num_threads=threads)

    def predict(X: np.ndarray) -> np.ndarray:
        if len(X) == 0:
            return np.zeros(0)
        return model.predict(np.ascontiguousarray(X, dtype=np.float64), n_jobs=threads)

    return predict
