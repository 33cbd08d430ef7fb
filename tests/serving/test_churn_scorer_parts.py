"""The batch churn scorer: a large batch is scored in parts with progress, and the parts change nothing."""

from __future__ import annotations

import numpy as np

import serving.scoring as scoring
from serving.scoring import ChurnScorer
from tests.training.test_churn_model import _data
from training.churn_model import ChurnModel

BANDS = {"low": 0.0, "medium": 0.4, "high": 0.7}


def _scorer() -> tuple[ChurnScorer, np.ndarray]:
    X, y = _data(600)
    model = ChurnModel(horizon_days=60, n_estimators=20).fit(X, y)
    scorer = ChurnScorer(model, [c.replace("__", ":") for c in X.columns], BANDS)
    return scorer, X[scorer.columns].to_numpy(dtype="float64")


def test_parts_give_the_same_results_and_report_progress(monkeypatch):
    scorer, A = _scorer()
    ids = [f"C{i}" for i in range(len(A))]
    known = np.ones(len(A), dtype=bool)
    known[[3, 250]] = False  # unknown ids stay unknown, whichever part they fall in
    whole = scorer.score_array(ids, A, known, threads=2)

    monkeypatch.setattr(scoring, "SCORE_PART_ROWS", 256)
    said: list[str] = []
    parts = scorer.score_array(ids, A, known, threads=2, progress=said.append)
    assert parts == whole
    assert said == ["churn: 256/598 customers scored and explained",
                    "churn: 512/598 customers scored and explained",
                    "churn: 598/598 customers scored and explained"]
    assert [r["status"] for r in parts[2:5]] == ["ok", "unknown_customer", "ok"]

    quiet: list[str] = []  # one part: nothing to report
    scorer.score_array(ids[:200], A[:200], threads=2, progress=quiet.append)
    assert quiet == []
