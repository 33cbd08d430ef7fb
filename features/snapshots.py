"""Compute feature snapshots "as of" cutoffs with DuckDB, from the canonical tables.

A snapshot at cutoff t holds one row per entity with features computed only from events strictly before
t, stamped ``event_timestamp = t``. Snapshots for new cutoffs are appended to the view's parquet file;
the file is rebuilt from scratch when the data it was computed from changes.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from pathlib import Path

import duckdb
import pandas as pd

from features.repo.definitions import SQL_DIR, VIEW_SPECS, snapshot_path
from features.schema import TIMESTAMP_DTYPE
from features.storage import Workspace, write_json_atomic, write_parquet_atomic


def as_utc(ts: str | pd.Timestamp) -> pd.Timestamp:
    """A timestamp in UTC (naive input is taken as UTC)."""
    ts = pd.Timestamp(ts)
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


def compute_view(view: str, tables: dict[str, pd.DataFrame], cutoffs: Iterable[pd.Timestamp]) -> pd.DataFrame:
    """Run one feature view's SQL over in-memory canonical tables for the given cutoffs."""
    _entity, feats, sql_file, _needs = VIEW_SPECS[view]
    key = "product_id" if view.startswith("product") else "customer_id"
    cut = pd.DataFrame({"cutoff": pd.Series([as_utc(c) for c in cutoffs], dtype=TIMESTAMP_DTYPE)})
    con = duckdb.connect()
    try:
        con.execute("SET TimeZone = 'UTC'")
        con.register("cutoffs", cut)
        for name in ("orders", "sessions"):
            if name in tables:
                con.register(name, tables[name])
        products = tables.get("products")
        if products is None:
            products = pd.DataFrame({"product_id": pd.Series(dtype="string"), "category": pd.Series(dtype="string")})
        con.register("products", products[["product_id", "category"]])
        out = con.execute((SQL_DIR / sql_file).read_text()).df()
    finally:
        con.close()
    out[key] = out[key].astype("string")
    out["event_timestamp"] = pd.to_datetime(out["event_timestamp"], utc=True).astype(TIMESTAMP_DTYPE)
    for f in feats:
        out[f] = pd.to_numeric(out[f], errors="coerce").astype("float64")
    return out[[key, "event_timestamp", *feats]].sort_values(["event_timestamp", key]).reset_index(drop=True)


def data_fingerprint(ws: Workspace) -> str:
    """Hash of the canonical tables' files, to know when snapshots must be rebuilt."""
    h = hashlib.sha256()
    for name in ("orders", "customers", "products", "sessions"):
        path = ws.table_path(name)
        if path.is_file():
            st = path.stat()
            h.update(f"{name}:{st.st_size}:{st.st_mtime_ns}".encode())
    return h.hexdigest()[:16]


def available_views(ws: Workspace) -> list[str]:
    """Feature views whose input tables exist in the workspace (products need product ids)."""
    views = []
    for view, (_e, _f, _sql, needs) in VIEW_SPECS.items():
        if not all(ws.has_table(t) for t in needs):
            continue
        if view == "product_stats" and not ws.has_table("products"):
            continue
        views.append(view)
    return views


def ensure_snapshots(
    ws: Workspace, cutoffs: Iterable[pd.Timestamp], progress=None, only: Iterable[str] | None = None
) -> dict[str, pd.DataFrame]:
    """Make sure every available view (or those of them in ``only``) has snapshots at ``cutoffs``;
    return the full snapshot frames of those views.

    Idempotent: cutoffs already computed from the same data are not recomputed.
    """
    cutoffs = sorted({as_utc(c) for c in cutoffs})
    manifest_path = ws.features_dir / "snapshots.json"
    fingerprint = data_fingerprint(ws)
    manifest = json.loads(manifest_path.read_text()) if manifest_path.is_file() else {}
    if manifest.get("data") != fingerprint:
        manifest = {"data": fingerprint, "views": {}}
    tables = None
    result: dict[str, pd.DataFrame] = {}
    views = available_views(ws)
    wanted = set(views) if only is None else set(only)
    for view in views:
        if view not in wanted:
            continue
        path = snapshot_path(ws.features_dir, view)
        done = {as_utc(c) for c in manifest["views"].get(view, [])} if path.is_file() else set()
        todo = [c for c in cutoffs if c not in done]
        existing = pd.read_parquet(path) if done else None
        if todo:
            if tables is None:
                tables = {n: ws.read_table(n) for n in ("orders", "products", "sessions") if ws.has_table(n)}
            if progress:
                progress(f"{view}: {len(todo)} snapshot(s)")
            new = compute_view(view, tables, todo)
            frames = [f for f in (existing, new) if f is not None and len(f)]
            existing = pd.concat(frames, ignore_index=True) if frames else new
            write_parquet_atomic(existing, path)
            manifest["views"][view] = sorted(str(c) for c in done | set(todo))
            write_json_atomic(manifest, manifest_path)
        result[view] = existing
    for view in set(VIEW_SPECS) - set(views):  # inputs gone: drop stale snapshots
        snapshot_path(ws.features_dir, view).unlink(missing_ok=True)
        manifest["views"].pop(view, None)
    write_json_atomic(manifest, manifest_path)
    return result


def default_as_of(orders: pd.DataFrame) -> pd.Timestamp:
    """The day after the last order line (UTC midnight): scoring "now" for a static data set."""
    if orders.empty:
        raise ValueError("the orders table is empty: nothing to train or score on")
    last = orders["ordered_at"].max()
    return as_utc(last).normalize() + pd.Timedelta(days=1)
