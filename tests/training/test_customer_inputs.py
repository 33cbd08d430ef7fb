"""training.customer_inputs: the order rows and score-date features the customer models share are the
ones each would read alone, read once, read again after a snapshot is rewritten, and refused for
another workspace or date."""

from __future__ import annotations

import os

import pandas as pd
import pytest

import training.customer_inputs as shared
from configs.settings import Settings
from features.pipeline import CUSTOMER_VIEWS, customer_views, prepare_features
from features.repo.definitions import snapshot_path
from features.storage import Workspace
from features.store import feature_refs
from features.synthetic_stage import synthesize_into
from training.churn_pipeline import score_date_features
from training.customer_inputs import CustomerInputs, customer_inputs
from training.labels import workspace_order_rows


def test_shared_inputs_equal_separate_reads_and_are_read_once(tmp_path, monkeypatch):
    settings = Settings.model_validate({
        "workspace": str(tmp_path / "ws"),
        "synthetic": {"customers": 200, "products": 30, "seed": 5, "start": "2022-01-01", "end": "2023-03-01"},
    })
    ws = Workspace(settings.workspace)
    synthesize_into(settings, ws)
    inputs = CustomerInputs(ws)
    rows, as_of = workspace_order_rows(ws)
    assert inputs.as_of == as_of
    pd.testing.assert_frame_equal(inputs.order_rows, rows)

    store, views = prepare_features(settings, ws, [as_of], views=CUSTOMER_VIEWS)
    refs = feature_refs(customer_views(views))
    calls: list[int] = []

    def counted(*args, **kwargs):
        calls.append(1)
        return score_date_features(*args, **kwargs)

    monkeypatch.setattr("training.churn_pipeline.score_date_features", counted)
    X, population = inputs.score_date_features(store, refs, 365)
    X_alone, population_alone = score_date_features(store, rows, as_of, refs, 365)
    pd.testing.assert_frame_equal(X, X_alone)
    pd.testing.assert_frame_equal(population, population_alone)
    assert len(X) > 50 and len(population) >= len(X)
    again = inputs.score_date_features(store, refs, 365)
    assert again[0] is X and len(calls) == 1  # read once
    inputs.score_date_features(store, refs, 90)  # another lookback: read again
    assert len(calls) == 2
    path = snapshot_path(ws.features_dir, "customer_orders")
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10 ** 9))  # a rewritten snapshot file
    inputs.score_date_features(store, refs, 90)
    assert len(calls) == 3

    assert customer_inputs(ws, as_of, inputs) is inputs and customer_inputs(ws, None, inputs) is inputs
    with pytest.raises(ValueError, match=r"these customer inputs are as of 2023-03-01T00:00:00\+00:00, not "
                                         r"2023-01-01T00:00:00\+00:00"):
        customer_inputs(ws, "2023-01-01", inputs)
    with pytest.raises(ValueError, match="these customer inputs were read from"):
        customer_inputs(Workspace(tmp_path / "other"), None, inputs)
    assert shared.customer_inputs(ws).as_of == as_of  # read afresh without inputs
