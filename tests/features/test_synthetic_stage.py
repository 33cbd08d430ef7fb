"""The synthesize stage: idempotent, never overwrites data a user loaded, streams exactly the synthetic
shop into the workspace's parquet tables, and leaves the previous tables in place when it fails."""

from __future__ import annotations

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import features.synthetic.tables as synthetic_tables
from configs.settings import load_settings
from features.loaders import load_orders, save_load
from features.storage import Workspace
from features.synthetic import synthesize_shop
from features.synthetic_stage import synthesize_into

PARAMS = {"customers": 60, "products": 20, "seed": 42, "start": "2022-01-01", "end": "2024-01-01"}


def _workspace(tmp_path) -> tuple:
    settings = load_settings(workspace=tmp_path / "ws")
    return settings, Workspace(settings.workspace)


def test_synthesize_is_idempotent_and_protects_loaded_data(tmp_path):
    settings, ws = _workspace(tmp_path)
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


def test_the_workspace_tables_are_the_synthetic_shop_in_the_contract_schema(tmp_path, monkeypatch):
    """Streamed in several row groups, the tables read back exactly as the in-memory shop, with the schema
    pandas writes for conformed frames (strings, UTC microsecond timestamps, pandas metadata)."""
    monkeypatch.setattr(synthetic_tables, "_ROW_GROUP_ROWS", 2_000)
    settings, ws = _workspace(tmp_path)
    synthesize_into(settings, ws, customers=60, products=20)
    shop = synthesize_shop(**PARAMS)
    for name, expected in shop.items():
        path = ws.table_path(name)
        got = ws.read_table(name)
        pd.testing.assert_frame_equal(got, expected)
        assert pq.read_schema(path).equals(pa.Schema.from_pandas(got, preserve_index=False), check_metadata=True)
        pd.testing.assert_frame_equal(pd.read_parquet(path), got)  # no conversion needed on reading
    assert pq.ParquetFile(ws.table_path("sessions")).metadata.num_row_groups > 2
    assert sorted(p.name for p in ws.data_dir.iterdir()) == [
        "customers.parquet", "manifest.json", "orders.parquet", "products.parquet", "sessions.parquet"]


def test_a_failure_leaves_the_previous_tables_and_no_temporary_files(tmp_path, monkeypatch):
    settings, ws = _workspace(tmp_path)
    synthesize_into(settings, ws, customers=60, products=20)
    before = {name: ws.table_path(name).read_bytes() for name in ("orders", "customers", "products", "sessions")}
    manifest = (ws.data_dir / "manifest.json").read_text()

    def broken(*_args, **_kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(synthetic_tables, "_sessions_table", broken)  # after products and orders were written
    with pytest.raises(RuntimeError, match="disk full"):
        synthesize_into(settings, ws, customers=80, products=20)
    assert {name: ws.table_path(name).read_bytes() for name in before} == before
    assert (ws.data_dir / "manifest.json").read_text() == manifest
    assert sorted(p.name for p in ws.data_dir.iterdir()) == [
        "customers.parquet", "manifest.json", "orders.parquet", "products.parquet", "sessions.parquet"]
