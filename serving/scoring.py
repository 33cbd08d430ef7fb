"""Scoring logic shared by the HTTP service and the batch ``ecrm score``: features in, results out."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from training.churn_model import ChurnModel
from training.explain import risk_band, top_drivers


class ChurnScorer:
    """Turns feature rows into churn probability, risk band and top drivers with one model."""

    def __init__(self, model: ChurnModel, feature_refs: Sequence[str], bands: Mapping[str, float], k: int = 3) -> None:
        self.model = model
        self.refs = list(feature_refs)
        self.columns = [r.replace(":", "__") for r in self.refs]
        self.bands = dict(bands)
        self.k = k

    def score_frame(self, ids: Sequence[str], features: pd.DataFrame, known: np.ndarray | None = None) -> list[dict]:
        """Score rows of ``features`` (``view__feature`` columns) for ``ids``; ``known`` False = unknown id."""
        known = np.ones(len(ids), dtype=bool) if known is None else np.asarray(known, dtype=bool)
        results: list[dict] = [{"customer_id": str(c), "status": "unknown_customer", "churn_probability": None,
                                "risk_band": None, "top_drivers": []} for c in ids]
        idx = np.flatnonzero(known)
        if len(idx):
            X = features.iloc[idx][self.columns].reset_index(drop=True).astype("float64")
            p, contrib, values, names = self.model.explain(X)
            drivers = top_drivers(contrib, values, names, self.k)
            for row, i in enumerate(idx):
                prob = float(p[row])
                results[i].update(status="ok", churn_probability=round(prob, 6),
                                  risk_band=risk_band(prob, self.bands), top_drivers=drivers[row])
        return results

    def score_online(self, online: Mapping[str, list], ids: Sequence[str]) -> list[dict]:
        """Score from a Feast online response (dict of ``view__feature`` lists aligned with ``ids``)."""
        frame = pd.DataFrame({c: pd.array(online.get(c, [None] * len(ids)), dtype="Float64") for c in self.columns})
        frame = frame.astype("float64")
        # a customer is known when any feature came back (unknown entities come back all None)
        known = frame.notna().any(axis=1).to_numpy()
        return self.score_frame(ids, frame, known)
