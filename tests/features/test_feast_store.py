"""The workspace's Feast store (features/store.py) serves exactly the snapshots of features/snapshots.py:
point-in-time offline retrieval and online lookups, on the tiny shop of tests/conftest.py."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from configs.settings import Settings
from features.snapshots import compute_view, ensure_snapshots
from features.storage import Workspace, write_tables
from features.store import (
    apply_definitions,
    feature_refs,
    historical_features,
    materialize_as_of,
    OnlineReader,
    OnlineStoreUnavailable,
    online_features,
    online_snapshot_info,
    open_store,
    repo_config,
)

T1 = pd.Timestamp("2024-01-01", tz="UTC")
T2 = pd.Timestamp("2024-03-01", tz="UTC")
T3 = pd.Timestamp("2024-04-01", tz="UTC")
VIEWS = ["customer_orders", "customer_sessions", "product_stats"]


@pytest.fixture(scope="module")
def feast_ws(tmp_path_factory, make_tiny_shop):
    """Workspace with the tiny shop, snapshots at T1, T2, T3 and applied Feast definitions (built once)."""
    root = tmp_path_factory.mktemp("feast")
    settings = Settings(workspace=root)
    ws = Workspace(settings.workspace)
    write_tables(ws, make_tiny_shop(), source="test")
    ensure_snapshots(ws, [T1, T2, T3])
    store = open_store(settings, ws)
    views = apply_definitions(store, ws)
    tables = {n: ws.read_table(n) for n in ("orders", "products", "sessions")}
    return settings, ws, store, views, tables


def _expected(tables, views, entity_df: pd.DataFrame) -> pd.DataFrame:
    """For each entity row: the snapshot row at the latest cutoff <= its time (NaN when none)."""
    key = entity_df.columns[0]
    out = entity_df.copy()
    for view in views:
        snap = compute_view(view, tables, [T1, T2, T3])
        feats = [c for c in snap.columns if c not in (key, "event_timestamp")]
        for f in feats:
            out[f"{view}__{f}"] = np.nan
        for i, (k, ts) in enumerate(zip(entity_df[key], entity_df["event_timestamp"])):
            hit = snap[(snap[key] == k) & (snap["event_timestamp"] <= ts)]
            if len(hit):
                last = hit.sort_values("event_timestamp").iloc[-1]
                for f in feats:
                    out.loc[out.index[i], f"{view}__{f}"] = last[f]
    return out


def test_apply_registers_every_view_with_snapshots(feast_ws):
    _settings, _ws, store, views, _tables = feast_ws
    assert views == VIEWS
    assert sorted(fv.name for fv in store.list_feature_views()) == sorted(VIEWS + [f"{v}_online" for v in VIEWS])
    # the per-feature views are offline only; their online twins hold the features in the views' order
    for view in VIEWS:
        assert not store.get_feature_view(view).online
        twin = store.get_feature_view(f"{view}_online")
        assert twin.online and [f.name for f in twin.features] == ["values"]
        assert twin.tags["features"] == ",".join(f.name for f in store.get_feature_view(view).features)
    assert sorted(s.name for s in store.list_feature_services()) == ["customer_features_v1", "product_features_v1"]


def test_historical_features_are_the_snapshots_point_in_time(feast_ws):
    _settings, _ws, store, _views, tables = feast_ws
    between = pd.Timestamp("2024-02-10 12:00", tz="UTC")  # must get the T1 snapshot
    entity_df = pd.DataFrame(
        {
            "customer_id": pd.Series(["C2", "C1", "C3", "C1", "C3", "C1", "NOPE", "C2", "C1"], dtype="string"),
            "event_timestamp": pd.Series(
                [T3, T1, T1, between, between, T2, T2, T1, T1], dtype="datetime64[us, UTC]"
            ),
        }
    )
    views = ["customer_orders", "customer_sessions"]
    got = historical_features(store, entity_df, feature_refs(views))
    want = _expected(tables, views, entity_df)
    assert list(got.columns) == list(want.columns)
    pd.testing.assert_frame_equal(got, want, check_exact=False, rtol=1e-12)  # NaN == NaN
    # spot checks that the comparison above is not vacuous
    assert got.loc[1, "customer_orders__recency_days"] == 9.5  # C1 at T1
    assert got.loc[3, "customer_orders__recency_days"] == 9.5  # C1 between T1 and T2: the T1 snapshot
    assert got.loc[5, "customer_orders__recency_days"] == 20.0  # C1 at T2
    assert got.loc[2, "customer_orders__recency_days"] != got.loc[2, "customer_orders__recency_days"]  # C3 at T1
    assert got.loc[6, feature_refs(views)[0].replace(":", "__"):].isna().all()  # unknown customer


def test_historical_product_features(feast_ws):
    _settings, _ws, store, _views, tables = feast_ws
    entity_df = pd.DataFrame(
        {
            "product_id": pd.Series(["P5", "P1", "P5", "P9"], dtype="string"),
            "event_timestamp": pd.Series([T1, T1, T2, T2], dtype="datetime64[us, UTC]"),
        }
    )
    got = historical_features(store, entity_df, feature_refs(["product_stats"]))
    pd.testing.assert_frame_equal(got, _expected(tables, ["product_stats"], entity_df), check_exact=False, rtol=1e-12)
    assert got.loc[1, "product_stats__orders_30d"] == 2.0
    assert np.isnan(got.loc[0, "product_stats__orders_30d"])


def test_materialize_then_online_features(feast_ws):
    _settings, ws, store, _views, tables = feast_ws
    views = ["customer_orders", "customer_sessions"]
    materialize_as_of(store, ws, T3, views)
    info = online_snapshot_info(ws)
    assert info["as_of"] == T3.isoformat() and info["views"] == views
    refs = feature_refs(views)
    got = online_features(store, ["C3", "NOPE", "C1"], refs)
    assert got["customer_id"] == ["C3", "NOPE", "C1"]
    for view in views:
        snap = compute_view(view, tables, [T3]).set_index("customer_id")
        for ref in (r for r in refs if r.startswith(view + ":")):
            feature = ref.split(":")[1]
            col = got[f"{view}__{feature}"]
            assert col[1] is None, ref  # unknown customer
            for pos, cid in ((0, "C3"), (2, "C1")):
                want = snap.loc[cid, feature]
                value = np.nan if col[pos] is None else float(col[pos])
                np.testing.assert_allclose(value, want, rtol=1e-12, err_msg=f"{cid} {ref}")
    assert got["customer_orders__recency_days"][2] == 51.0  # C1's O3 is 51 days before T3

    # the service's reader returns the same values as one float block, in the order of its refs
    reader = OnlineReader(store, list(reversed(refs)))
    values, known = reader.read(["C3", "NOPE", "C1"])
    assert known.tolist() == [True, False, True]
    assert values.shape == (3, len(refs)) and np.isnan(values[1]).all()
    for j, col in enumerate(reader.columns):
        for pos in (0, 2):
            want = np.nan if got[col][pos] is None else float(got[col][pos])
            np.testing.assert_allclose(values[pos, j], want, rtol=1e-12, err_msg=col)

    # an outage gives a clear error, and the next read reconnects (no restart needed)
    class Down:
        def online_read(self, **_kw):
            raise ConnectionError("connection refused")

    reader._provider = Down()
    with pytest.raises(OnlineStoreUnavailable, match="sqlite online store is unavailable: ConnectionError"):
        reader.read(["C3"])
    again, known_again = reader.read(["C3", "NOPE", "C1"])
    np.testing.assert_array_equal(again, values)
    np.testing.assert_array_equal(known_again, known)


def test_redis_online_store_config(tmp_path):
    settings = Settings.model_validate(
        {"workspace": str(tmp_path),
         "feast": {"online_store": {"type": "redis", "connection_string": "cache:6380,db=2"}}}
    )
    cfg = repo_config(settings, Workspace(tmp_path))
    assert cfg.online_store.type == "redis"
    assert cfg.online_store.connection_string == "cache:6380,db=2"
    assert cfg.registry.path == str(Workspace(tmp_path).feast_dir / "registry.db")


def test_online_record_knows_when_the_online_store_is_current(feast_ws):
    """The score stage may skip a load only while the record matches the as-of, the views and the very
    snapshot files."""
    from features.store import online_is_current

    _settings, ws, store, _views, _tables = feast_ws
    views = ["customer_orders", "customer_sessions"]
    materialize_as_of(store, ws, T2, views)
    assert online_is_current(ws, T2, views)
    assert not online_is_current(ws, T3, views)                 # another as-of
    assert not online_is_current(ws, T2, ["customer_orders"])   # other views
    record = ws.feast_dir / "online_snapshot.json"
    saved = record.read_text()
    record.write_text(saved.replace('"layout"', '"layout_of_another_version"'))
    assert not online_is_current(ws, T2, views)                 # loaded by a version with another layout
    record.write_text(saved.replace("recency_days,", ""))
    assert not online_is_current(ws, T2, views)                 # vectors of other features
    record.write_text(saved)
    assert online_is_current(ws, T2, views)
    snap = ws.features_dir / "customer_sessions.parquet"
    snap.write_bytes(snap.read_bytes())                         # a rewritten snapshot file
    assert not online_is_current(ws, T2, views)
    assert online_features(store, ["C1"], feature_refs(["customer_orders"]))[
        "customer_orders__recency_days"][0] == 51.0 - 31.0   # the T2 values are online (C1's O3: 20 days before T2)


def _online_rows(ws: Workspace) -> list[tuple]:
    """Every row of the SQLite online store's tables (entity key, feature, value bytes, event time)."""
    import sqlite3

    with sqlite3.connect(ws.feast_dir / "online_store.db") as con:
        tables = [r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")]
        return [(t, *row) for t in tables for row in con.execute(
            f'SELECT entity_key, feature_name, value, event_ts FROM "{t}" ORDER BY entity_key, feature_name')]


def test_online_store_holds_one_row_per_customer_and_view_whatever_the_chunks(tmp_path, make_tiny_shop,
                                                                               monkeypatch):
    """materialize_as_of writes the snapshot rows at as_of in chunks (bounded memory): chunks of 2, written
    here or by two worker processes, leave the store byte for byte as one chunk does, a second load
    overwrites the first (a daily refresh), and the store has one row per customer and view (the online
    twins), none per feature."""
    import features.store

    monkeypatch.setattr(features.store, "PARALLEL_LOAD_ROWS", 0)  # workers even for the tiny shop
    built = {}
    views = ["customer_orders", "customer_sessions"]
    for how, chunk_rows, loads, workers in (("whole", 10_000, (T3,), 1), ("chunks", 2, (T2, T3), 1),
                                            ("workers", 2, (T2, T3), 2)):
        settings = Settings(workspace=tmp_path / how)
        ws = Workspace(settings.workspace)
        write_tables(ws, make_tiny_shop(), source="test")
        ensure_snapshots(ws, [T1, T2, T3])
        store = open_store(settings, ws)
        apply_definitions(store, ws)
        for as_of in loads:
            said: list[str] = []
            materialize_as_of(store, ws, as_of, views, progress=said.append, chunk_rows=chunk_rows, workers=workers)
            n = {v: int((pd.read_parquet(ws.features_dir / f"{v}.parquet")["event_timestamp"] == as_of).sum())
                 for v in views}
            assert min(n.values()) >= 3  # several chunks of 2 per view
            assert said == [f"online store: {v} {n[v]}/{n[v]} rows as of {as_of.date()}" for v in views], said
        built[how] = _online_rows(ws)
    assert built["chunks"] == built["whole"] and built["workers"] == built["whole"]
    tables = sorted({row[0] for row in built["whole"]})
    assert tables == ["ecrm_customer_orders_online", "ecrm_customer_sessions_online"]
    for table, view in zip(tables, views):
        rows = [r for r in built["whole"] if r[0] == table]
        assert {r[2] for r in rows} == {"values"}
        assert len(rows) == n[view]  # one row per customer in the T3 snapshot


def test_online_load_without_the_snapshot_says_so(feast_ws):
    _settings, ws, store, _views, _tables = feast_ws
    before = online_snapshot_info(ws)
    with pytest.raises(ValueError, match=r"customer_orders\.parquet: no 'customer_orders' snapshot at 2025-01-01"):
        materialize_as_of(store, ws, pd.Timestamp("2025-01-01", tz="UTC"), ["customer_orders"])
    with pytest.raises(ValueError, match="chunk_rows must be at least 1"):
        materialize_as_of(store, ws, T2, ["customer_orders"], chunk_rows=0)
    assert online_snapshot_info(ws) == before  # the record still describes what the store holds
