"""``ecrm data purge-expired``: remove raw events older than ``privacy.retention_days``.

Raw events are the order lines and browsing events of the canonical tables. A purge as of a date removes
those strictly before ``as_of - retention_days``; customers left without any order or session lose their
row in ``customers``. Products (the catalog) stay. Feature snapshots, models and outputs are derived from
the tables and are rebuilt from what is left by the next ``train`` / ``score`` (the tables' fingerprint
changes). Every table is rewritten atomically.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from features.snapshots import as_utc
from features.storage import Workspace, write_tables

EVENT_TIME = {"orders": "ordered_at", "sessions": "occurred_at"}


@dataclass
class PurgeReport:
    """What a purge removed: rows per table, before which time."""

    cutoff: pd.Timestamp | None
    removed: dict[str, int] = field(default_factory=dict)
    kept: dict[str, int] = field(default_factory=dict)


def purge_expired(ws: Workspace, retention_days: int | None, as_of: str | pd.Timestamp | None = None) -> PurgeReport:
    """Remove events before ``as_of - retention_days`` (``as_of`` default: now); None keeps everything."""
    if retention_days is None:
        return PurgeReport(None)
    cutoff = as_utc(as_of if as_of is not None else pd.Timestamp.now(tz="UTC")) - pd.Timedelta(days=retention_days)
    report = PurgeReport(cutoff)
    tables = {name: ws.read_table(name) for name in ("orders", "customers", "products", "sessions")
              if ws.has_table(name)}
    if "orders" not in tables:
        raise FileNotFoundError(f"{ws.table_path('orders')}: no orders in workspace {ws.root}; nothing to purge")
    for name, column in EVENT_TIME.items():
        if name in tables:
            old = tables[name][column] < cutoff
            report.removed[name] = int(old.sum())
            tables[name] = tables[name].loc[~old].reset_index(drop=True)
    if "customers" in tables:
        active = set(tables["orders"]["customer_id"].dropna())
        if "sessions" in tables:
            active |= set(tables["sessions"]["customer_id"].dropna())
        gone = ~tables["customers"]["customer_id"].isin(active)
        report.removed["customers"] = int(gone.sum())
        tables["customers"] = tables["customers"].loc[~gone].reset_index(drop=True)
    if any(report.removed.values()):
        write_tables(ws, tables, source=f"retention purge before {cutoff.isoformat()}")
    report.kept = {name: len(df) for name, df in tables.items()}
    return report
