"""Compute feature snapshots "as of" cutoffs from the canonical tables, with DuckDB or Spark SQL.

A snapshot at cutoff t holds one row per entity with features computed only from events strictly before
t, stamped ``event_timestamp = t``. Snapshots for new cutoffs are appended to the view's parquet file;
the file is rebuilt from scratch when the data it was computed from changes. The SQL and the engines
that run it are in ``features/repo/*.sql`` and :mod:`features.snapshot_engines`.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from features.repo.definitions import SQL_DIR, VIEW_SPECS, snapshot_path
from features.schema import TIMESTAMP_DTYPE
from features.snapshot_engines import CUSTOMER_SCOPE, DuckDBEngine, SnapshotEngine, TableSource, load_view_sql
from features.storage import Workspace, file_stamp, write_json_atomic, write_parquet_tables_atomic

if TYPE_CHECKING:
    from configs.settings import DuckDBOfflineStore, SparkOfflineStore

    OfflineStore = DuckDBOfflineStore | SparkOfflineStore


def as_utc(ts: str | pd.Timestamp) -> pd.Timestamp:
    """A timestamp in UTC (naive input is taken as UTC)."""
    ts = pd.Timestamp(ts)
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


PRODUCT_COLUMNS = ("product_id", "category")
# Cutoffs per run of a view's snapshot query: its windowed joins hold about this many cutoffs' worth of
# recent events at once.
DEFAULT_CUTOFFS_PER_BATCH = 4


def _input(view: str, name: str, tables: dict[str, TableSource]) -> tuple[TableSource, list[str] | None]:
    """The source of input table ``name`` of ``view`` and the columns to read from it (products: only
    ``product_id`` and ``category``; an empty table when the shop has none)."""
    if name == "products":
        products = tables.get("products")
        if products is None:
            products = pd.DataFrame({c: pd.Series(dtype="string") for c in PRODUCT_COLUMNS})
        return products, list(PRODUCT_COLUMNS)
    if name not in tables:
        raise ValueError(f"feature view '{view}' needs table '{name}'; given: {sorted(tables)}")
    return tables[name], None


def _key(view: str) -> str:
    """The entity id column of a view's snapshots."""
    return "product_id" if view.startswith("product") else "customer_id"


def _batches(cutoffs: list[pd.Timestamp], size: int) -> list[list[pd.Timestamp]]:
    """``cutoffs`` in consecutive batches of at most ``size``."""
    return [cutoffs[i:i + size] for i in range(0, len(cutoffs), size)]


def view_batches(
    view: str,
    tables: dict[str, TableSource],
    cutoffs: Iterable[pd.Timestamp],
    engine: SnapshotEngine,
    *,
    cutoffs_per_batch: int = DEFAULT_CUTOFFS_PER_BATCH,
    progress: Callable[[str], None] | None = None,
    customers: Iterable[str] | None = None,
) -> Iterator[pd.DataFrame]:
    """One feature view's snapshots at ``cutoffs``, one frame per batch of at most ``cutoffs_per_batch``
    cutoffs (in time order), computed by its SQL (``features/repo/``) on ``engine``.

    ``tables`` maps table names to frames or parquet files. The view's preparing steps run once, then its
    snapshot query for each batch, which bounds the memory of the windowed joins. Each frame has one row
    per entity and cutoff, sorted by (event_timestamp, id), features as float64. ``customers``: only
    these customers' rows (a customer view's training sample), each the same as when every customer is
    computed; None = every customer.
    """
    _entity, feats, sql_file, _needs = VIEW_SPECS[view]
    key = _key(view)
    cuts = sorted({as_utc(c) for c in cutoffs})
    if customers is not None:
        if key != "customer_id":
            raise ValueError(f"feature view '{view}' is not a customer view: it cannot be limited to customers")
        ids = pd.unique(pd.Series(list(customers), dtype="string").dropna())
        tables = {**tables, CUSTOMER_SCOPE: pd.DataFrame({"customer_id": ids.astype(object)})}
    sql = load_view_sql(SQL_DIR / sql_file, scoped=customers is not None)
    for name in sql.inputs:
        source, columns = _input(view, name, tables)
        engine.register(name, source, columns)
    try:
        for step in sql.prepare:
            (engine.materialize if step.stored else engine.define)(step, f"{sql.path} step '{step.name}'")
        t0 = time.perf_counter()
        batches = _batches(cuts, max(1, int(cutoffs_per_batch)))
        for i, batch in enumerate(batches, 1):
            engine.set_cutoffs(batch)
            yield _conform_snapshots(engine.query(sql.snapshot, f"{sql.path} step '{sql.snapshot.name}'"),
                                     key, list(feats))
            if progress and len(batches) > 1:
                progress(f"{view}: {sum(map(len, batches[:i]))}/{len(cuts)} cutoffs "
                         f"({time.perf_counter() - t0:.0f} s)")
    finally:
        engine.drop([step.name for step in sql.prepare])


def compute_view(
    view: str,
    tables: dict[str, TableSource],
    cutoffs: Iterable[pd.Timestamp],
    *,
    engine: SnapshotEngine | None = None,
    cutoffs_per_batch: int = DEFAULT_CUTOFFS_PER_BATCH,
    progress: Callable[[str], None] | None = None,
    customers: Iterable[str] | None = None,
) -> pd.DataFrame:
    """One feature view's snapshots at ``cutoffs`` as one frame (see :func:`view_batches`); ``engine``
    defaults to a DuckDB engine for this call."""
    own = engine is None
    engine = DuckDBEngine() if own else engine
    try:
        frames = list(view_batches(view, tables, cutoffs, engine, cutoffs_per_batch=cutoffs_per_batch,
                                   progress=progress, customers=customers))
    finally:
        if own:
            engine.close()
    if not frames:
        return _conform_snapshots(pd.DataFrame(), _key(view), list(VIEW_SPECS[view][1]))
    return pd.concat(frames, ignore_index=True)


def _conform_snapshots(frame: pd.DataFrame, key: str, feats: list[str]) -> pd.DataFrame:
    """A query's rows with string ids, UTC microsecond times and float64 features, sorted by time and id."""
    out = frame if len(frame.columns) else pd.DataFrame(columns=[key, "event_timestamp", *feats])
    out[key] = out[key].astype("string")
    out["event_timestamp"] = pd.to_datetime(out["event_timestamp"], utc=True).astype(TIMESTAMP_DTYPE)
    for f in feats:
        out[f] = pd.to_numeric(out[f], errors="coerce").astype("float64")
    return out[[key, "event_timestamp", *feats]].sort_values(["event_timestamp", key]).reset_index(drop=True)


def write_snapshots(path: Path, keep_existing: bool, frames: Iterable[pd.DataFrame],
                    replaced: Iterable[pd.Timestamp] = ()) -> None:
    """Rewrite the snapshot file ``path`` as its current rows (if ``keep_existing``; without those at the
    cutoffs ``replaced``) followed by ``frames``, one row group at a time, so that neither the old rows nor
    all the new ones are held in memory at once. Readers see the old file or the complete new one."""
    replaced = sorted({as_utc(c) for c in replaced})
    old = pq.ParquetFile(path) if keep_existing else None
    tables = itertools.chain(
        (_without(old.read_row_group(i), replaced) for i in range(old.num_row_groups)) if old is not None else (),
        (pa.Table.from_pandas(f, preserve_index=False) for f in frames))
    write_parquet_tables_atomic(tables, path, "snapshots")


def _without(table: pa.Table, cutoffs: list[pd.Timestamp]) -> pa.Table:
    """``table``'s snapshot rows at other cutoffs than ``cutoffs``."""
    if not cutoffs:
        return table
    import pyarrow.compute as pc

    stamps = pa.array([c.to_pydatetime() for c in cutoffs], type=table.schema.field("event_timestamp").type)
    return table.filter(pc.invert(pc.is_in(table["event_timestamp"], value_set=stamps)))


def snapshot_engine(ws: Workspace, offline_store: OfflineStore | None = None) -> SnapshotEngine:
    """The engine for the configured offline store (``feast.offline_store``): Spark SQL for ``spark``,
    DuckDB otherwise (None included), with its temporary files under the workspace's ``tmp`` folder."""
    temp_parent = ws.root / "tmp"
    if getattr(offline_store, "type", "duckdb") == "spark":
        from features.snapshot_engines import SparkEngine

        return SparkEngine(dict(offline_store.spark_conf), temp_parent=temp_parent)
    return DuckDBEngine(temp_parent=temp_parent)


def data_fingerprint(ws: Workspace) -> str:
    """Hash of the canonical tables' files, to know when snapshots must be rebuilt."""
    h = hashlib.sha256()
    for name in ("orders", "customers", "products", "sessions"):
        stamp = file_stamp(ws.table_path(name))
        if stamp is not None:
            h.update(f"{name}:{stamp}".encode())
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


def update_snapshots(
    ws: Workspace, cutoffs: Iterable[pd.Timestamp], progress: Callable[[str], None] | None = None,
    only: Iterable[str] | None = None, offline_store: OfflineStore | None = None,
    customers: Iterable[str] | None = None,
) -> list[str]:
    """Make sure every available view (or those of them in ``only``) has snapshots at ``cutoffs`` in its
    file; return those views.

    Idempotent: cutoffs already computed from the same data are not recomputed. The SQL reads the
    workspace's parquet tables directly, on the engine of ``offline_store`` (the settings'
    ``feast.offline_store``: Spark SQL when its type is ``spark``, DuckDB otherwise), and each batch of
    cutoffs is appended to the file as it comes.

    ``customers``: the snapshots are needed only for these customers (the training sample of a large
    shop; customer views only). Such cutoffs hold only their rows, and the manifest records which sample:
    a later call for every customer, or for another sample, recomputes them. None = every customer.
    """
    cutoffs = sorted({as_utc(c) for c in cutoffs})
    scope = None if customers is None else sorted(set(map(str, customers)))
    tag = None if scope is None else hashlib.sha256("\n".join(scope).encode()).hexdigest()[:16]
    manifest_path = ws.features_dir / "snapshots.json"
    fingerprint = data_fingerprint(ws)
    manifest = json.loads(manifest_path.read_text()) if manifest_path.is_file() else {}
    if manifest.get("data") != fingerprint:
        manifest = {"data": fingerprint, "views": {}}
    manifest.setdefault("samples", {})  # view -> {cutoff: sample tag} for cutoffs computed for a sample only
    tables = {n: ws.table_path(n) for n in ("orders", "products", "sessions") if ws.has_table(n)}
    engine: SnapshotEngine | None = None
    views = available_views(ws)
    chosen = None if only is None else set(only)
    wanted = [v for v in views if chosen is None or v in chosen]
    if scope is not None and (products := [v for v in wanted if _key(v) != "customer_id"]):
        raise ValueError(f"feature views {products} are not customer views: they cannot be limited to customers")
    try:
        for view in wanted:
            path = snapshot_path(ws.features_dir, view)
            exists = path.is_file()
            full = {as_utc(c) for c in manifest["views"].get(view, [])} if exists else set()
            sampled = {as_utc(c): t for c, t in manifest["samples"].get(view, {}).items()} if exists else {}
            todo = [c for c in cutoffs if c not in full and (tag is None or sampled.get(c) != tag)]
            if not todo:
                continue
            if engine is None:
                engine = snapshot_engine(ws, offline_store)
            if progress:
                progress(f"{view}: {len(todo)} snapshot(s)" + ("" if scope is None else
                                                               f" of {len(scope):,} sampled customers"))
            replaced = [c for c in todo if c in sampled]
            write_snapshots(path, bool(full or sampled), view_batches(view, tables, todo, engine, progress=progress,
                                                                      customers=scope), replaced)
            if scope is None:
                full |= set(todo)
                sampled = {c: t for c, t in sampled.items() if c not in full}
            else:
                sampled.update({c: tag for c in todo})
            manifest["views"][view] = sorted(str(c) for c in full)
            manifest["samples"][view] = {str(c): t for c, t in sorted(sampled.items())}
            write_json_atomic(manifest, manifest_path)
    finally:
        if engine is not None:
            engine.close()
    for view in set(VIEW_SPECS) - set(views):  # inputs gone: drop stale snapshots
        snapshot_path(ws.features_dir, view).unlink(missing_ok=True)
        manifest["views"].pop(view, None)
        manifest["samples"].pop(view, None)
    write_json_atomic(manifest, manifest_path)
    return wanted


def ensure_snapshots(
    ws: Workspace, cutoffs: Iterable[pd.Timestamp], progress: Callable[[str], None] | None = None,
    only: Iterable[str] | None = None, offline_store: OfflineStore | None = None,
    customers: Iterable[str] | None = None,
) -> dict[str, pd.DataFrame]:
    """:func:`update_snapshots`, then the full snapshot frames of those views (read from their files)."""
    views = update_snapshots(ws, cutoffs, progress=progress, only=only, offline_store=offline_store,
                             customers=customers)
    return {v: pd.read_parquet(snapshot_path(ws.features_dir, v)) for v in views}


def order_line_time(orders: pd.DataFrame | pa.Table, how: str) -> pd.Timestamp:
    """The first (``how="min"``) or last (``"max"``) ``ordered_at`` of order lines, as a DataFrame or an
    Arrow table (NaT when there is none)."""
    if how not in ("min", "max"):
        raise ValueError(f"how must be 'min' or 'max', got {how!r}")
    if isinstance(orders, pa.Table):
        import pyarrow.compute as pc

        value = (pc.min if how == "min" else pc.max)(orders["ordered_at"]).as_py()
        return pd.NaT if value is None else as_utc(value)
    value = getattr(orders["ordered_at"], how)()
    return pd.NaT if pd.isna(value) else as_utc(value)


def default_as_of(orders: pd.DataFrame | pa.Table) -> pd.Timestamp:
    """The day after the last order line (UTC midnight): scoring "now" for a static data set."""
    if len(orders) == 0:
        raise ValueError("the orders table is empty: nothing to train or score on")
    return order_line_time(orders, "max").normalize() + pd.Timedelta(days=1)


def workspace_as_of(ws: Workspace) -> pd.Timestamp:
    """:func:`default_as_of` of the workspace's orders, reading only their times (the whole table of a large
    shop takes gigabytes in memory)."""
    return default_as_of(pd.read_parquet(ws.existing_table("orders"), columns=["ordered_at"]))
