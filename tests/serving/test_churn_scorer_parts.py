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


def test_the_batch_table_holds_the_same_scores_and_drivers_as_the_dicts(monkeypatch):
    """``score_table`` (what ``ecrm score`` writes) = ``score_array``'s dicts: probability, band, the drivers
    as JSON and their sentences; in parts or whole, with the same progress."""
    import json

    import pandas as pd

    scorer, A = _scorer()
    ids = [f"C{i}" for i in range(len(A))]
    want = scorer.score_array(ids, A, threads=2)
    monkeypatch.setattr(scoring, "SCORE_PART_ROWS", 256)
    said: list[str] = []
    got = scorer.score_table(ids, A, threads=2, progress=said.append)
    assert list(got.columns) == ["customer_id", "status", "churn_probability", "risk_band", "top_drivers",
                                 "top_drivers_text"]
    expected = pd.DataFrame({
        "customer_id": ids, "status": "ok", "churn_probability": [r["churn_probability"] for r in want],
        "risk_band": [r["risk_band"] for r in want], "top_drivers": [json.dumps(r["top_drivers"]) for r in want],
        "top_drivers_text": ["; ".join(d["text"] for d in r["top_drivers"]) for r in want]})
    pd.testing.assert_frame_equal(got, expected, check_exact=True)
    assert sum(len(r["top_drivers"]) == 3 for r in want) > 100
    assert said[-1] == "churn: 600/600 customers scored and explained" and len(said) == 3
    assert scorer.score_table([], A[:0]).empty
