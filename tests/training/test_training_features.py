"""training.churn_pipeline.training_features: on a shop above churn.max_training_customers, the snapshots
at the training cutoffs are computed only for the sampled customers (the same rows as for everyone), and
as of the score date for every customer."""

from __future__ import annotations

import pandas as pd

from configs.settings import Settings
from features.repo.definitions import snapshot_path
from features.snapshots import compute_view
from features.storage import Workspace
from features.synthetic_stage import synthesize_into
from training.churn_pipeline import stacked_cutoffs, training_features
from training.labels import workspace_order_rows


def _settings(tmp_path, cap: int | None) -> Settings:
    return Settings.model_validate({
        "workspace": str(tmp_path / "ws"),
        "synthetic": {"customers": 300, "products": 40, "seed": 3, "start": "2022-01-01", "end": "2023-06-01"},
        "churn": {"training_cutoffs": 3, "horizon_days": 60, "max_training_customers": cap},
    })


def test_training_cutoffs_hold_only_the_sample_and_the_score_date_everyone(tmp_path):
    settings = _settings(tmp_path, 40)
    ws = Workspace(settings.workspace)
    synthesize_into(settings, ws)
    rows, as_of = workspace_order_rows(ws)
    cutoffs = stacked_cutoffs(settings, rows, as_of, 60)
    said: list[str] = []
    _store, views, training_rows = training_features(settings, ws, rows, cutoffs, as_of, said.append)
    sample = set(training_rows["customer_id"].astype(str))
    assert len(sample) == 40 and set(views) == {"customer_orders", "customer_sessions"}
    assert any("of 40 sampled customers" in m for m in said)
    tables = {n: ws.table_path(n) for n in ("orders", "products", "sessions")}
    for view in views:
        snaps = pd.read_parquet(snapshot_path(ws.features_dir, view))
        past = snaps[snaps["event_timestamp"] < as_of].reset_index(drop=True)
        assert set(past["event_timestamp"]) == set(cutoffs)
        assert set(past["customer_id"]) <= sample
        everyone = compute_view(view, tables, cutoffs)
        pd.testing.assert_frame_equal(past, everyone[everyone["customer_id"].isin(sample)].reset_index(drop=True))
        now = snaps[snaps["event_timestamp"] == as_of].reset_index(drop=True)
        pd.testing.assert_frame_equal(now, compute_view(view, tables, [as_of]))
        assert len(set(now["customer_id"]) - sample) > 100  # everyone as of the score date


def test_an_unsampled_shop_computes_every_customer_at_every_cutoff(tmp_path):
    settings = _settings(tmp_path, None)
    ws = Workspace(settings.workspace)
    synthesize_into(settings, ws)
    rows, as_of = workspace_order_rows(ws)
    cutoffs = stacked_cutoffs(settings, rows, as_of, 60)
    _store, views, training_rows = training_features(settings, ws, rows, cutoffs, as_of, lambda _m: None)
    assert training_rows is rows
    tables = {n: ws.table_path(n) for n in ("orders", "products", "sessions")}
    for view in views:
        snaps = pd.read_parquet(snapshot_path(ws.features_dir, view))
        pd.testing.assert_frame_equal(snaps, compute_view(view, tables, [*cutoffs, as_of]))
