"""Retention: `ecrm data purge-expired` removes raw events older than privacy.retention_days."""

from __future__ import annotations

import pandas as pd
from typer.testing import CliRunner

from cli.main import app
from features.privacy.retention import purge_expired
from features.schema import CUSTOMERS, conform
from features.storage import Workspace, write_tables


def _store(ws: Workspace, shop: dict[str, pd.DataFrame]) -> None:
    customers = pd.DataFrame({"customer_id": ["C1", "C2", "C3", "C4"],
                              "first_seen": ["2023-02-01", "2023-11-01", "2024-01-05", "2023-06-01"],
                              "country": ["DE", "FR", "DE", None]})
    write_tables(ws, {**shop, "customers": conform(customers, CUSTOMERS)}, source="test")


def test_purge_removes_events_before_the_retention_window(tmp_path, tiny_shop):
    ws = Workspace(tmp_path / "ws")
    _store(ws, tiny_shop)
    res = purge_expired(ws, 200, as_of="2024-04-01")
    assert res.cutoff == pd.Timestamp("2023-09-14", tz="UTC")
    # orders: O1 (2 lines, 2023-02-01) and R2 (2023-06-01); sessions: S3 (2 events, 2023-09-01);
    # C4 had only R2, so no customer row is left for them
    assert res.removed == {"orders": 3, "sessions": 2, "customers": 1}
    assert res.kept == {"orders": 10, "customers": 3, "products": 5, "sessions": 11}
    assert ws.read_table("orders")["ordered_at"].min() == pd.Timestamp("2023-11-01", tz="UTC")
    assert ws.read_table("customers")["customer_id"].tolist() == ["C1", "C2", "C3"]
    assert "S3" not in set(ws.read_table("sessions")["session_id"])
    assert len(ws.read_table("products")) == 5
    again = purge_expired(ws, 200, as_of="2024-04-01")
    assert again.removed == {"orders": 0, "sessions": 0, "customers": 0}


def test_no_retention_keeps_everything(tmp_path, tiny_shop):
    ws = Workspace(tmp_path / "ws")
    _store(ws, tiny_shop)
    before = (ws.table_path("orders").stat().st_mtime_ns, len(ws.read_table("orders")))
    res = purge_expired(ws, None, as_of="2030-01-01")
    assert res.cutoff is None and res.removed == {}
    assert (ws.table_path("orders").stat().st_mtime_ns, len(ws.read_table("orders"))) == before


def test_cli_prints_what_was_removed(tmp_path, tiny_shop):
    ws = Workspace(tmp_path / "ws")
    _store(ws, tiny_shop)
    cfg = tmp_path / "ecrm.yaml"
    cfg.write_text(f"workspace: {ws.root}\nprivacy: {{retention_days: 200}}\n")
    res = CliRunner().invoke(app, ["--config", str(cfg), "data", "purge-expired", "--as-of", "2024-04-01"],
                             catch_exceptions=False)
    assert res.exit_code == 0, res.output
    assert res.output.splitlines() == [
        "retention 200 days: removing events before 2023-09-14T00:00:00+00:00",
        "orders              3 removed          10 kept",
        "sessions            2 removed          11 kept",
        "customers           1 removed           3 kept",
    ]
    cfg.write_text(f"workspace: {ws.root}\n")
    res = CliRunner().invoke(app, ["--config", str(cfg), "data", "purge-expired"], catch_exceptions=False)
    assert res.output == "privacy.retention_days is not set: raw events are kept forever; nothing removed\n"
