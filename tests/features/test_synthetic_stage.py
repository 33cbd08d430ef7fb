"""The synthesize stage: idempotent, and never overwrites data a user loaded."""

from __future__ import annotations

import pytest

from configs.settings import load_settings
from features.loaders import load_orders, save_load
from features.storage import Workspace
from features.synthetic_stage import synthesize_into


def test_synthesize_is_idempotent_and_protects_loaded_data(tmp_path):
    settings = load_settings(workspace=tmp_path / "ws")
    ws = Workspace(settings.workspace)
    assert synthesize_into(settings, ws, customers=60, products=20) is True
    mtime = ws.table_path("orders").stat().st_mtime_ns
    assert synthesize_into(settings, ws, customers=60, products=20) is False  # same shop: nothing to do
    assert ws.table_path("orders").stat().st_mtime_ns == mtime

    path = tmp_path / "mine.csv"
    path.write_text("customer_id,order_id,ordered_at,amount\n1,A,2024-01-01,5\n")
    save_load(ws, load_orders(path))
    with pytest.raises(FileExistsError, match="holds data loaded from 'orders:mine.csv'"):
        synthesize_into(settings, ws, customers=60, products=20)
    assert len(ws.read_table("orders")) == 1
    assert synthesize_into(settings, ws, customers=60, products=20, replace=True) is True
    assert len(ws.read_table("orders")) > 1
