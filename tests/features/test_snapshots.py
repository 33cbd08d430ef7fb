"""Feature snapshots (features/snapshots.py, features/snapshot_engines.py and the SQL in features/repo): exact
values on the tiny shop of tests/conftest.py and on edge cases added to it, point-in-time correctness, batches
of cutoffs, the incremental snapshot files of ensure_snapshots, the SQL files' steps and their Spark
translation (tests/servers/test_spark_profile.py runs them on Spark)."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from configs.settings import ConfigError, Settings
from features.repo.definitions import SQL_DIR, VIEW_SPECS, snapshot_path
from features.snapshot_engines import DuckDBEngine, SnapshotSqlError, SqlStep, load_view_sql, to_spark_sql
from features.snapshots import compute_view, ensure_snapshots, snapshot_engine, write_snapshots
from features.storage import Workspace, write_tables

T1 = pd.Timestamp("2024-01-01", tz="UTC")
T2 = pd.Timestamp("2024-03-01", tz="UTC")
T3 = pd.Timestamp("2024-04-01", tz="UTC")


def _row(frame: pd.DataFrame, key: str, cutoff: pd.Timestamp) -> pd.Series:
    id_col = frame.columns[0]
    hit = frame[(frame[id_col] == key) & (frame["event_timestamp"] == cutoff)]
    assert len(hit) == 1, f"expected one row for {key} at {cutoff}, got {len(hit)}"
    return hit.iloc[0]


def _check(row: pd.Series, expected: dict) -> None:
    """Exact comparison (NaN == NaN); floats from averages compared to 1e-12 relative."""
    for name, want in expected.items():
        got = row[name]
        if want is None:
            assert math.isnan(got), f"{name}: expected NaN, got {got}"
        else:
            assert got == pytest.approx(want, rel=1e-12, abs=0), f"{name}: expected {want}, got {got}"


# ------------------------------------------------------------------------------------------------------
# customer_orders: exact values
# ------------------------------------------------------------------------------------------------------


@pytest.fixture
def orders_view(tiny_shop) -> pd.DataFrame:
    return compute_view("customer_orders", tiny_shop, [T2, T1])


def test_customer_orders_frame_shape(orders_view):
    feats = list(VIEW_SPECS["customer_orders"][1])
    assert list(orders_view.columns) == ["customer_id", "event_timestamp", *feats]
    assert str(orders_view["event_timestamp"].dtype) == "datetime64[us, UTC]"
    assert all(str(orders_view[f].dtype) == "float64" for f in feats)
    # sorted by (cutoff, customer); C3 only from T2; C4 (returns only) and the guest never
    assert list(zip(orders_view["event_timestamp"], orders_view["customer_id"])) == [
        (T1, "C1"), (T1, "C2"), (T2, "C1"), (T2, "C2"), (T2, "C3"),
    ]


def test_customer_orders_c1_at_t1(orders_view):
    # O1 333.5 days before T1 (value 25), O2 9.5 days before (value 120), R1 returns 100 five days before
    _check(_row(orders_view, "C1", T1), {
        "recency_days": 9.5,
        "tenure_days": 333.5,
        "frequency_30d": 1, "frequency_90d": 1, "frequency_365d": 2, "frequency_lifetime": 2,
        "monetary_30d": 20.0, "monetary_90d": 20.0, "monetary_365d": 45.0, "monetary_lifetime": 45.0,
        "repeat_purchase_days": 1,
        "active_span_days": 324.0,
        "ipi_mean_days": 324.0, "ipi_std_days": None, "last_gap_days": 324.0,
        "frequency_ly_next_90d": 1, "monetary_ly_next_90d": 25.0, "frequency_ly_90d": 0,
        "avg_units_per_order": 2.5, "avg_lines_per_order": 2.0, "max_order_value": 120.0,
        "returns_365d": 1, "return_rate_365d": 100.0 / 145.0,
        "distinct_products_365d": 4, "distinct_categories_365d": 3,
        "price_index_365d": 1.0, "discount_share_365d": 0.0,
    })


def test_customer_orders_c2_at_t1(orders_view):
    # O4 61 d, O5 60.25 d (same calendar day), O6 21 d before T1; P1 paid 10 and 13, median P1 price 10
    _check(_row(orders_view, "C2", T1), {
        "recency_days": 21.0, "tenure_days": 61.0,
        "frequency_30d": 1, "frequency_90d": 3, "frequency_365d": 3, "frequency_lifetime": 3,
        "monetary_30d": 13.0, "monetary_90d": 33.0, "monetary_365d": 33.0, "monetary_lifetime": 33.0,
        "repeat_purchase_days": 1,  # two distinct days
        "active_span_days": 40.0,
        "ipi_mean_days": 20.0, "ipi_std_days": 38.5 / math.sqrt(2), "last_gap_days": 39.25,
        "recency_ipi_ratio": 21.0 / 20.0,
        "frequency_ly_next_90d": 0, "returns_365d": 0, "return_rate_365d": 0.0,
        "distinct_categories_365d": 2,
        "price_index_365d": (1.0 + 1.0 + 1.3) / 3,
    })


def test_customer_orders_at_t2(orders_view):
    # C1: O1 now 393.5 d old (out of 365 d), O2 69.5 d, O3 20 d (P1 at 8 vs median 10); return 65 d
    _check(_row(orders_view, "C1", T2), {
        "recency_days": 20.0, "tenure_days": 393.5,
        "frequency_30d": 1, "frequency_90d": 2, "frequency_365d": 2, "frequency_lifetime": 3,
        "monetary_30d": 8.0, "monetary_90d": 28.0, "monetary_365d": 28.0, "monetary_lifetime": 53.0,
        "repeat_purchase_days": 2, "active_span_days": 373.5,
        "ipi_mean_days": (324.0 + 49.5) / 2, "last_gap_days": 49.5,
        "frequency_ly_next_90d": 0, "frequency_ly_90d": 1,
        "returns_365d": 1,
        "distinct_categories_365d": 2,  # A (P1, P2) and C (P4); B (P3) only in O1
        "price_index_365d": (1.0 + 1.0 + 0.8) / 3, "discount_share_365d": 1 / 3,
    })
    # C3: a single order, 46 days before T2
    _check(_row(orders_view, "C3", T2), {
        "recency_days": 46.0, "tenure_days": 46.0,
        "frequency_lifetime": 1, "monetary_lifetime": 50.0,
        "repeat_purchase_days": 0, "active_span_days": 0.0,
        "ipi_mean_days": None, "last_gap_days": None, "recency_ipi_ratio": None,
        "avg_lines_per_order": 2.0, "distinct_categories_365d": 2, "returns_365d": 0,
    })


# ------------------------------------------------------------------------------------------------------
# Point in time: features at t use only events strictly before t
# ------------------------------------------------------------------------------------------------------


def test_customer_orders_ignore_events_at_or_after_the_cutoff(tiny_shop, make_orders):
    before = compute_view("customer_orders", tiny_shop, [T1])
    late = make_orders([
        ("N1", "C1", "P1", 5.0, 10.0, "2024-01-01 00:00", False),  # exactly at T1: excluded
        ("N2", "C2", "P4", 1.0, 100.0, "2024-01-01 00:00", False),
        ("N3", "C2", "P1", -1.0, 13.0, "2024-01-01 00:00", True),  # a return exactly at T1
        ("N4", "C9", "P2", 1.0, 20.0, "2024-01-01 00:00", False),  # a new customer exactly at T1
        ("N5", "C1", "P3", 1.0, 1.0, "2024-01-02 00:00", False),
    ])
    orders = tiny_shop["orders"].copy()
    later = orders["ordered_at"] >= T1
    orders.loc[later, "unit_price"] *= 3  # change events after T1 (O3, O7)
    orders.loc[later, "amount"] *= 3
    after = compute_view("customer_orders", {**tiny_shop, "orders": pd.concat([orders, late], ignore_index=True)}, [T1])
    pd.testing.assert_frame_equal(before, after)
    # and the customer whose first order is after T1 (C3), or exactly at T1 (C9), has no row at T1
    assert set(after["customer_id"]) == {"C1", "C2"}


def test_customer_orders_cutoff_just_after_an_event_sees_it(tiny_shop):
    """The other side of 'strictly before': one second after O2, O2 counts (0 s old is not excluded)."""
    view = compute_view("customer_orders", tiny_shop, [pd.Timestamp("2023-12-22 12:00:01", tz="UTC")])
    assert _row(view, "C1", pd.Timestamp("2023-12-22 12:00:01", tz="UTC"))["recency_days"] == 1 / 86400


def test_customer_orders_ignore_late_lines_of_an_earlier_order(tiny_shop, make_orders):
    before = compute_view("customer_orders", tiny_shop, [T1])
    late_line = make_orders([("O2", "C1", "P1", 3.0, 10.0, "2024-01-01 00:00", False)])  # same order id as O2
    after = compute_view(
        "customer_orders", {**tiny_shop, "orders": pd.concat([tiny_shop["orders"], late_line], ignore_index=True)}, [T1]
    )
    pd.testing.assert_frame_equal(before, after)


# ------------------------------------------------------------------------------------------------------
# customer_sessions
# ------------------------------------------------------------------------------------------------------


def test_customer_sessions_values(tiny_shop):
    view = compute_view("customer_sessions", tiny_shop, [T1])
    assert list(view["customer_id"]) == ["C1", "C2"]  # no guest row, C3 browses only after T1
    # C1: S1 (cart + purchase) and S2 (abandoned cart) in 90 d; S3's abandoned cart is 121.5 d old
    _check(_row(view, "C1", T1), {
        "sessions_30d": 2, "sessions_90d": 2, "views_30d": 3, "views_90d": 3, "add_to_cart_90d": 2,
        "searches_90d": 0,
        "cart_abandonment_90d": 0.5,
        "view_to_purchase_90d": 1 / 3,
        "days_since_last_session": 3.25,  # S2's last event 2023-12-28 18:00
    })
    _check(_row(view, "C2", T1), {
        "sessions_90d": 1, "views_90d": 1, "searches_90d": 1,
        "cart_abandonment_90d": None,  # no cart at all
        "view_to_purchase_90d": 0.0,
        "days_since_last_session": 2.0,
    })


def test_customer_sessions_ignore_events_at_or_after_the_cutoff(tiny_shop, make_sessions):
    before = compute_view("customer_sessions", tiny_shop, [T1])
    late = make_sessions([
        ("S2", "C1", "2024-01-01 00:00", "purchase", "P3"),  # would rescue S2's cart: exactly at T1
        ("S7", "C2", "2024-01-01 00:00", "add_to_cart", "P1"),
        ("S8", "C9", "2024-01-01 00:00", "view", "P1"),
        ("S9", "C1", "2024-01-03 00:00", "view", "P2"),
    ])
    sessions = pd.concat([tiny_shop["sessions"], late], ignore_index=True)
    after = compute_view("customer_sessions", {**tiny_shop, "sessions": sessions}, [T1])
    pd.testing.assert_frame_equal(before, after)


def test_customer_with_only_old_sessions_gets_zero_window_counts(tiny_shop, make_sessions):
    """A visit long before the cutoff still makes a row: zero counts in the 30/90-day windows, no ratios,
    and the days since that visit (the windows read only recent events; the last visit reads all)."""
    old = make_sessions([("S20", "C4", "2023-06-20 12:00", "view", "P1"),      # 194.5 days before T1
                         ("S21", "C4", "2023-10-02 23:59:59", "add_to_cart", "P2")])  # 90 days + 1 s before T1
    sessions = pd.concat([tiny_shop["sessions"], old], ignore_index=True)
    view = compute_view("customer_sessions", {**tiny_shop, "sessions": sessions}, [T1])
    _check(_row(view, "C4", T1), {
        "sessions_30d": 0, "sessions_90d": 0, "views_30d": 0, "views_90d": 0, "add_to_cart_90d": 0,
        "searches_90d": 0, "cart_abandonment_90d": None, "view_to_purchase_90d": None,
        "days_since_last_session": 90 + 1 / 86400,
    })
    # the other customers' rows do not change
    pd.testing.assert_frame_equal(view[view["customer_id"] != "C4"].reset_index(drop=True),
                                  compute_view("customer_sessions", tiny_shop, [T1]))


def test_guest_sessions_create_no_row(tiny_shop, make_sessions):
    only_guest = make_sessions([("G1", None, "2023-12-31 08:00", "add_to_cart", "P2")])
    view = compute_view("customer_sessions", {**tiny_shop, "sessions": only_guest}, [T1])
    assert view.empty


# ------------------------------------------------------------------------------------------------------
# product_stats
# ------------------------------------------------------------------------------------------------------


def test_product_stats_values(tiny_shop):
    view = compute_view("product_stats", tiny_shop, [T1, T2])
    assert list(view.loc[view["event_timestamp"] == T1, "product_id"]) == ["P1", "P2", "P3", "P4"]  # P5 from T2
    # P1 before T1: O1 (C1, 333.5 d), O4 (C2, 61 d), O8 (guest, 11 d), O6 (C2, 21 d)
    _check(_row(view, "P1", T1), {
        "orders_30d": 2,  # O6 and the guest's O8: guest lines count as orders
        "orders_90d": 3, "orders_prev_30d": 0, "trend_30d": 3.0, "units_90d": 3,
        "buyers_90d": 1,  # C2 only: the guest is not a buyer
        "buyers_365d": 2, "repeat_purchase_rate_365d": 0.5,  # C2 bought it in 2 orders, C1 in 1
        "price_median_365d": 10.0, "days_since_last_sold": 11.0,
    })
    # P4: the return R1 is not a sale
    _check(_row(view, "P4", T1), {"orders_30d": 1, "units_90d": 1, "buyers_365d": 1, "days_since_last_sold": 9.5})
    # P2 at T2: O7 (C3) 46 d and O2 (C1) 69.5 d before
    _check(_row(view, "P2", T2), {
        "orders_30d": 0, "orders_90d": 2, "orders_prev_30d": 1, "trend_30d": 0.5,
        "buyers_90d": 2, "repeat_purchase_rate_365d": 0.0,
    })


def test_product_stats_ignore_events_at_or_after_the_cutoff(tiny_shop, make_orders):
    before = compute_view("product_stats", tiny_shop, [T1])
    late = make_orders([
        ("N1", "C1", "P1", 1.0, 99.0, "2024-01-01 00:00", False),
        ("N2", None, "P5", 1.0, 30.0, "2024-01-01 00:00", False),  # a product first sold exactly at T1
        ("N3", "C2", "P2", 4.0, 20.0, "2024-02-01 00:00", False),
    ])
    after = compute_view(
        "product_stats", {**tiny_shop, "orders": pd.concat([tiny_shop["orders"], late], ignore_index=True)}, [T1]
    )
    pd.testing.assert_frame_equal(before, after)


# ------------------------------------------------------------------------------------------------------
# ensure_snapshots: incremental, idempotent, rebuilt when the data change
# ------------------------------------------------------------------------------------------------------


@pytest.fixture
def ws(tmp_path, tiny_shop) -> Workspace:
    ws = Workspace(tmp_path / "ws")
    write_tables(ws, tiny_shop, source="test")
    return ws


def test_ensure_snapshots_is_idempotent(ws):
    first = ensure_snapshots(ws, [T1, T2])
    assert set(first) == {"customer_orders", "customer_sessions", "product_stats"}
    mtimes = {v: snapshot_path(ws.features_dir, v).stat().st_mtime_ns for v in first}
    calls: list[str] = []
    second = ensure_snapshots(ws, [T2, T1], progress=calls.append)
    assert calls == []  # nothing recomputed
    assert {v: snapshot_path(ws.features_dir, v).stat().st_mtime_ns for v in second} == mtimes
    tables = {n: ws.read_table(n) for n in ("orders", "products", "sessions")}
    for view, frame in first.items():
        pd.testing.assert_frame_equal(frame, second[view])
        pd.testing.assert_frame_equal(frame, compute_view(view, tables, [T1, T2]))


def test_ensure_snapshots_only_some_views(ws):
    calls: list[str] = []
    got = ensure_snapshots(ws, [T1], progress=calls.append, only=["customer_orders", "customer_sessions"])
    assert set(got) == {"customer_orders", "customer_sessions"}
    assert not snapshot_path(ws.features_dir, "product_stats").exists()  # the customer models never pay for it
    assert calls == ["customer_orders: 1 snapshot(s)", "customer_sessions: 1 snapshot(s)"]
    later = ensure_snapshots(ws, [T1])  # the others come when asked for
    assert set(later) == {"customer_orders", "customer_sessions", "product_stats"}


def test_ensure_snapshots_appends_a_new_cutoff(ws):
    first = ensure_snapshots(ws, [T1, T2])
    third = ensure_snapshots(ws, [T1, T2, T3])
    tables = {n: ws.read_table(n) for n in ("orders", "products", "sessions")}
    for view, frame in third.items():
        assert sorted(set(frame["event_timestamp"])) == [T1, T2, T3]
        old = frame[frame["event_timestamp"] < T3].reset_index(drop=True)
        pd.testing.assert_frame_equal(old, first[view])
        new = frame[frame["event_timestamp"] == T3].reset_index(drop=True)
        pd.testing.assert_frame_equal(new, compute_view(view, tables, [T3]))
        pd.testing.assert_frame_equal(pd.read_parquet(snapshot_path(ws.features_dir, view)), frame)
    manifest = json.loads((ws.features_dir / "snapshots.json").read_text())
    assert manifest["views"]["customer_orders"] == sorted(str(t) for t in (T1, T2, T3))


def test_ensure_snapshots_rebuilds_when_orders_change(ws, tiny_shop):
    first = ensure_snapshots(ws, [T1, T2])
    assert "C3" in set(first["customer_orders"]["customer_id"])
    orders = tiny_shop["orders"]
    write_tables(ws, {**tiny_shop, "orders": orders[orders["customer_id"] != "C3"]}, source="test")
    rebuilt = ensure_snapshots(ws, [T1, T2])
    assert "C3" not in set(rebuilt["customer_orders"]["customer_id"])
    assert "P5" not in set(rebuilt["product_stats"]["product_id"])
    on_disk = pd.read_parquet(snapshot_path(ws.features_dir, "customer_orders"))
    pd.testing.assert_frame_equal(on_disk, rebuilt["customer_orders"])


def test_ensure_snapshots_drops_views_whose_inputs_are_gone(ws, tiny_shop):
    ensure_snapshots(ws, [T1])
    assert snapshot_path(ws.features_dir, "customer_sessions").is_file()
    write_tables(ws, {"orders": tiny_shop["orders"], "products": tiny_shop["products"]}, source="test")
    result = ensure_snapshots(ws, [T1])
    assert set(result) == {"customer_orders", "product_stats"}
    assert not snapshot_path(ws.features_dir, "customer_sessions").exists()


# ------------------------------------------------------------------------------------------------------
# Bounded windows and lifetime state: old orders, orders split across a cutoff, ties, sub-second times,
# events exactly at an earlier cutoff, and batches of cutoffs
# ------------------------------------------------------------------------------------------------------

T0 = pd.Timestamp("2023-11-01", tz="UTC")
# Edge cases added to the tiny shop (also used by tests/servers/test_spark_profile.py).
EDGE_ORDER_ROWS = [
    # C5: orders only long before T1 (579 and 487 days), a return 457 days before T1
    ("Q1", "C5", "P1", 2.0, 10.0, "2022-06-01 00:00", False),
    ("Q2", "C5", "P2", 1.0, 20.0, "2022-09-01 00:00", False),
    ("Q2", "C5", "P3", 1.0, 5.0, "2022-09-01 00:00", False),
    ("RQ", "C5", "P3", -1.0, 5.0, "2022-10-01 00:00", True),
    # C6: one order exactly 455 days before T1 (in "the 90 days before t one year earlier"), one 1 s older
    ("V1", "C6", "P1", 1.0, 10.0, "2022-10-03 00:00:00", False),
    ("V2", "C6", "P2", 1.0, 20.0, "2022-10-02 23:59:59", False),
    # C7: order X1 has lines on 2023-12-01 and (a late line) on 2023-12-20; X2 on 2023-12-10
    ("X1", "C7", "P1", 9.0, 10.0, "2023-12-01 00:00", False),
    ("X2", "C7", "P2", 4.0, 20.0, "2023-12-10 00:00", False),
    ("X1", "C7", "P4", 1.0, 100.0, "2023-12-20 00:00", False),
    # C8: two orders at the same time, a third ten days later
    ("Y1", "C8", "P1", 1.0, 10.0, "2023-12-01 10:00", False),
    ("Y2", "C8", "P2", 1.0, 20.0, "2023-12-01 10:00", False),
    ("Y3", "C8", "P1", 1.0, 10.0, "2023-12-11 10:00", False),
    # C10: sub-second times around the 30-day boundary of the cutoff 2024-01-01 00:00:00.7
    ("Z1", "C10", "P1", 1.0, 10.0, "2023-12-02 00:00:00.2", False),
    ("Z2", "C10", "P1", 1.0, 10.0, "2023-12-01 23:59:59.9", False),
    # P8: first sold exactly at T1; P9: sold once, long ago (a guest line)
    ("W1", "C2", "P8", 1.0, 7.0, "2024-01-01 00:00", False),
    ("W2", None, "P9", 3.0, 4.0, "2022-06-01 00:00", False),
]
EDGE_SESSION_ROWS = [
    ("S30", "C9", "2024-01-01 00:00", "view", "P1"),               # exactly at T1
    ("S31", "C10", "2023-12-02 00:00:00.2", "view", "P1"),         # 30 days before 00:00:00.7 (whole seconds)
    ("S32", "C10", "2023-12-01 23:59:59.9", "add_to_cart", "P1"),  # 30 days + 1 s before it
]
SUBSECOND = pd.Timestamp("2024-01-01 00:00:00.7", tz="UTC")


@pytest.fixture
def edge_shop(tiny_shop, make_orders, make_sessions) -> dict[str, pd.DataFrame]:
    """The tiny shop plus EDGE_ORDER_ROWS and EDGE_SESSION_ROWS."""
    return {**tiny_shop,
            "orders": pd.concat([tiny_shop["orders"], make_orders(EDGE_ORDER_ROWS)], ignore_index=True),
            "sessions": pd.concat([tiny_shop["sessions"], make_sessions(EDGE_SESSION_ROWS)], ignore_index=True)}


def test_customer_with_only_old_orders_keeps_lifetime_features(edge_shop):
    """Orders older than every window (455 days) still give the lifetime features, with zero windows."""
    view = compute_view("customer_orders", edge_shop, [T1, T0])
    _check(_row(view, "C5", T1), {
        "recency_days": 487.0, "tenure_days": 579.0,
        "frequency_30d": 0, "frequency_90d": 0, "frequency_365d": 0, "frequency_lifetime": 2,
        "monetary_30d": 0.0, "monetary_90d": 0.0, "monetary_365d": 0.0, "monetary_lifetime": 40.0,
        "repeat_purchase_days": 1, "active_span_days": 92.0,
        "ipi_mean_days": 92.0, "ipi_std_days": None, "last_gap_days": 92.0, "recency_ipi_ratio": 487.0 / 92.0,
        "frequency_prev_90d": 0, "frequency_trend_90d": 1.0, "monetary_trend_90d": 1.0,
        "frequency_ly_next_90d": 0, "monetary_ly_next_90d": 0.0, "frequency_ly_90d": 0,
        "orders_per_30d": 60.0 / 579.0, "avg_units_per_order": 2.0, "avg_lines_per_order": 1.5,
        "avg_order_value_365d": None, "avg_order_value_lifetime": 22.5, "max_order_value": 25.0,
        "distinct_products_365d": 0, "distinct_categories_365d": 0, "returns_365d": 0,
        "return_rate_365d": None, "price_index_365d": None, "discount_share_365d": None,
    })
    # at T0 the order of 2022-09-01 is 426 days old: in "the 90 days before t one year earlier"
    _check(_row(view, "C5", T0), {"recency_days": 426.0, "frequency_ly_90d": 1, "frequency_365d": 0,
                                  "returns_365d": 0, "monetary_lifetime": 40.0})


def test_longest_window_ends_exactly_455_days_back(edge_shop):
    view = compute_view("customer_orders", edge_shop, [T1])
    _check(_row(view, "C6", T1), {"frequency_ly_90d": 1, "frequency_lifetime": 2, "monetary_lifetime": 30.0,
                                  "recency_days": 455.0, "tenure_days": 455.0 + 1 / 86400,
                                  "monetary_365d": 0.0})


def test_order_with_lines_on_both_sides_of_a_cutoff(edge_shop):
    """An order counts from its first line; a cutoff between its lines sees only the earlier ones, in its
    value, in the money totals and in the largest order."""
    mid = pd.Timestamp("2023-12-15", tz="UTC")
    at_late_line = pd.Timestamp("2023-12-20", tz="UTC")
    after_late_line = pd.Timestamp("2023-12-20 00:00:01", tz="UTC")
    view = compute_view("customer_orders", edge_shop, [mid, at_late_line, after_late_line, T1],
                        cutoffs_per_batch=2)
    _check(_row(view, "C7", mid), {
        "recency_days": 5.0, "tenure_days": 14.0, "frequency_lifetime": 2, "frequency_30d": 2,
        "monetary_30d": 170.0, "monetary_lifetime": 170.0,
        "max_order_value": 90.0,  # X1 so far (90) is larger than X2 (80)
        "avg_order_value_lifetime": 85.0, "avg_units_per_order": 6.5, "avg_lines_per_order": 1.0,
        "ipi_mean_days": 9.0, "last_gap_days": 9.0, "distinct_products_365d": 2,
    })
    _check(_row(view, "C7", at_late_line), {"max_order_value": 90.0, "monetary_lifetime": 170.0,
                                             "avg_lines_per_order": 1.0})
    _check(_row(view, "C7", after_late_line), {"max_order_value": 190.0, "monetary_lifetime": 270.0,
                                                "avg_lines_per_order": 1.5, "recency_days": 10 + 1 / 86400})
    _check(_row(view, "C7", T1), {
        "recency_days": 22.0, "tenure_days": 31.0, "frequency_lifetime": 2,
        "frequency_30d": 1, "monetary_30d": 80.0,  # X1 started 31 days ago: its late line is not in 30 days
        "frequency_90d": 2, "monetary_90d": 270.0, "monetary_lifetime": 270.0,
        "max_order_value": 190.0, "avg_order_value_lifetime": 135.0, "avg_units_per_order": 7.0,
        "avg_lines_per_order": 1.5, "distinct_products_365d": 3,
    })


def test_orders_at_the_same_time(edge_shop):
    view = compute_view("customer_orders", edge_shop, [T1])
    _check(_row(view, "C8", T1), {
        "frequency_lifetime": 3, "repeat_purchase_days": 1,
        "ipi_mean_days": 5.0, "ipi_std_days": math.sqrt(50.0), "last_gap_days": 10.0,  # gaps 0 and 10 days
        "recency_days": 20 + 14 / 24, "tenure_days": 30 + 14 / 24, "active_span_days": 10.0,
        "max_order_value": 20.0, "monetary_lifetime": 40.0,
    })


def test_windows_count_whole_seconds(edge_shop):
    """date_diff('second', t, cutoff) counts whole-second boundaries: at 00:00:00.7, an order at
    00:00:00.2 thirty days earlier is exactly 30 days old, one at 23:59:59.9 the evening before is not."""
    orders = compute_view("customer_orders", edge_shop, [SUBSECOND])
    _check(_row(orders, "C10", SUBSECOND), {"frequency_30d": 1, "monetary_30d": 10.0, "frequency_90d": 2,
                                            "recency_days": 30.0, "tenure_days": 30 + 1 / 86400})
    sessions = compute_view("customer_sessions", edge_shop, [SUBSECOND])
    _check(_row(sessions, "C10", SUBSECOND), {"sessions_30d": 1, "views_30d": 1, "sessions_90d": 2,
                                              "add_to_cart_90d": 1, "days_since_last_session": 30.0})
    products = compute_view("product_stats", edge_shop, [SUBSECOND])
    # P1 in the last 30 days: O6 (21 d), the guest's O8 (11 d), Y3 (20.6 d), Z1 (30 d); 30-60 days ago:
    # Z2 (30 d + 1 s), Y1 (30.6 d), X1 (31 d); O4 is 61 days old
    _check(_row(products, "P1", SUBSECOND), {"orders_30d": 4, "orders_prev_30d": 3})


def test_product_sold_only_long_ago(edge_shop):
    view = compute_view("product_stats", edge_shop, [T1])
    _check(_row(view, "P9", T1), {
        "orders_30d": 0, "orders_90d": 0, "orders_prev_30d": 0, "trend_30d": 1.0, "units_90d": 0,
        "buyers_90d": 0, "buyers_365d": 0, "repeat_purchase_rate_365d": None, "price_median_365d": None,
        "days_since_last_sold": 579.0,
    })


@pytest.mark.parametrize("per_batch", [1, 3])
def test_events_exactly_at_an_earlier_cutoff_count_from_the_next_one(edge_shop, per_batch):
    """The last visit / last sale is carried from one cutoff to the next: an event exactly at T1 is not seen
    at T1 but is at T2 and T3, whether or not T1 is in the same batch of cutoffs."""
    sessions = compute_view("customer_sessions", edge_shop, [T1, T2, T3], cutoffs_per_batch=per_batch)
    assert "C9" not in set(sessions.loc[sessions["event_timestamp"] == T1, "customer_id"])
    _check(_row(sessions, "C9", T2), {"days_since_last_session": 60.0, "sessions_90d": 1, "views_90d": 1})
    _check(_row(sessions, "C9", T3), {"days_since_last_session": 91.0, "sessions_90d": 0, "views_90d": 0})
    _check(_row(sessions, "C2", T3), {"days_since_last_session": 93.0})  # its last visit: 2023-12-30
    products = compute_view("product_stats", edge_shop, [T1, T2, T3], cutoffs_per_batch=per_batch)
    assert "P8" not in set(products.loc[products["event_timestamp"] == T1, "product_id"])
    _check(_row(products, "P8", T2), {"days_since_last_sold": 60.0, "orders_30d": 0, "orders_90d": 1,
                                      "orders_prev_30d": 1, "trend_30d": 0.5, "buyers_365d": 1})


CUTOFF_MIX = [pd.Timestamp(t, tz="UTC") for t in (
    "2022-05-01", "2022-09-01", "2023-12-01 10:00", "2023-12-15", "2023-12-20", "2023-12-22 12:00:01",
    "2024-01-01", "2024-01-01 00:00:00.7", "2024-01-15", "2024-03-01", "2024-04-01")]


@pytest.mark.parametrize("view", sorted(VIEW_SPECS))
def test_batches_of_cutoffs_give_the_same_snapshots(edge_shop, view):
    one = compute_view(view, edge_shop, CUTOFF_MIX, cutoffs_per_batch=len(CUTOFF_MIX))
    times = set(one["event_timestamp"])
    assert CUTOFF_MIX[0] not in times and set(CUTOFF_MIX[-6:]) <= times  # nothing happened before 2022-05-01
    for per_batch in (1, 4):
        pd.testing.assert_frame_equal(compute_view(view, edge_shop, CUTOFF_MIX, cutoffs_per_batch=per_batch), one)
    # and each cutoff alone gives its rows of the joint computation
    alone = pd.concat([compute_view(view, edge_shop, [c]) for c in CUTOFF_MIX[::3]], ignore_index=True)
    pd.testing.assert_frame_equal(alone, one[one["event_timestamp"].isin(CUTOFF_MIX[::3])].reset_index(drop=True))


def test_compute_view_reads_parquet_files_like_frames(edge_shop, tmp_path):
    paths = {}
    for name, frame in edge_shop.items():
        paths[name] = tmp_path / f"{name}.parquet"
        frame.to_parquet(paths[name], index=False)
    for view in VIEW_SPECS:
        pd.testing.assert_frame_equal(compute_view(view, paths, CUTOFF_MIX), compute_view(view, edge_shop, CUTOFF_MIX))


def test_compute_view_without_products_or_cutoffs(tiny_shop):
    no_products = compute_view("customer_orders", {"orders": tiny_shop["orders"]}, [T1])
    _check(_row(no_products, "C1", T1), {"distinct_products_365d": 4, "distinct_categories_365d": 0})
    empty = compute_view("customer_orders", tiny_shop, [])
    assert empty.empty and list(empty.columns) == ["customer_id", "event_timestamp", *VIEW_SPECS["customer_orders"][1]]
    with pytest.raises(ValueError, match="feature view 'customer_sessions' needs table 'sessions'"):
        compute_view("customer_sessions", {"orders": tiny_shop["orders"]}, [T1])


# ------------------------------------------------------------------------------------------------------
# The SQL files' steps, their Spark translation, and the DuckDB engine's settings
# ------------------------------------------------------------------------------------------------------


def test_view_sql_files_have_prepared_steps_and_a_snapshot_query():
    orders = load_view_sql(SQL_DIR / "customer_order_features.sql")
    assert [s.name for s in orders.prepare] == ["line_parts", "order_parts", "sale_orders", "money"]
    assert orders.snapshot.name == "snapshot" and orders.inputs == ("orders", "products")
    assert all(s.stored for s in orders.prepare)
    product = load_view_sql(SQL_DIR / "product_features.sql")
    assert product.prepare == () and product.inputs == ("orders",)


def test_a_step_when_scoped_is_stored_only_for_a_sample():
    everyone = load_view_sql(SQL_DIR / "customer_session_features.sql")
    sample = load_view_sql(SQL_DIR / "customer_session_features.sql", scoped=True)
    assert [(s.name, s.stored) for s in everyone.prepare] == [("customer_events", False)]
    assert [(s.name, s.stored) for s in sample.prepare] == [("customer_events", True)]
    assert "customer_scope" in sample.prepare[0].sql and "customer_scope" not in everyone.prepare[0].sql
    assert everyone.inputs == ("sessions",) and sample.inputs == ("customer_scope", "sessions")


def test_duckdb_defines_a_view_and_stores_a_table_and_drops_both(tmp_path, tiny_shop):
    engine = DuckDBEngine(temp_parent=tmp_path)
    try:
        engine.register("orders", tiny_shop["orders"])
        engine.define(SqlStep("lines_view", "SELECT order_id FROM orders", stored=False), "test step 'lines_view'")
        engine.materialize(SqlStep("lines_table", "SELECT order_id FROM orders"), "test step 'lines_table'")
        kinds = dict(engine.con.execute("SELECT table_name, table_type FROM information_schema.tables").fetchall())
        assert kinds["lines_view"] == "VIEW" and kinds["lines_table"] == "LOCAL TEMPORARY"
        n = len(tiny_shop["orders"])
        assert engine.con.execute("SELECT count(*) FROM lines_view").fetchone()[0] == n
        engine.drop(["lines_view", "lines_table"])
        names = {r[0] for r in engine.con.execute("SELECT table_name FROM information_schema.tables").fetchall()}
        assert not names & {"lines_view", "lines_table"}
    finally:
        engine.close()


@pytest.mark.parametrize("text, message", [
    ("SELECT 1", "no '-- step: NAME' line"),
    ("-- step: a\nSELECT 1\n-- step: b\nSELECT 2", "the last step, and only it, must be 'snapshot'"),
    ("-- step: a\nSELECT cutoff FROM cutoffs\n-- step: snapshot\nSELECT * FROM a", "step 'a' reads 'cutoffs'"),
    ("-- step: a\n-- only a comment\n-- step: snapshot\nSELECT 1", "step 'a' has no query"),
    ("-- step: a\nSELECT 1\n-- step: a\nSELECT 2\n-- step: snapshot\nSELECT 3", "duplicate step names"),
    ("-- step: snapshot\nSELEC oops FROM", "step 'snapshot' does not parse"),
    ("-- step: snapshot when scoped\nSELECT 1", "'snapshot' step cannot be marked 'when scoped'"),
])
def test_malformed_view_sql_names_the_file_and_step(tmp_path, text, message):
    path = tmp_path / "bad_features.sql"
    path.write_text(text)
    with pytest.raises(SnapshotSqlError, match=message) as info:
        load_view_sql(path)
    assert str(path) in str(info.value)


def test_a_failing_step_names_the_file_and_step(tmp_path, tiny_shop):
    path = tmp_path / "broken.sql"
    path.write_text("-- step: snapshot\nSELECT no_such_column FROM orders, cutoffs")
    engine = DuckDBEngine(temp_parent=tmp_path)
    try:
        engine.register("orders", tiny_shop["orders"])
        engine.set_cutoffs([T1])
        step = load_view_sql(path).snapshot
        with pytest.raises(SnapshotSqlError, match=r"broken.sql step 'snapshot' failed on DuckDB.*no_such_column"):
            engine.query(step, f"{path} step 'snapshot'")
    finally:
        engine.close()


def test_spark_translation_keeps_duckdb_meanings():
    sql = ("SELECT date_diff('second', a, c) / 86400.0 AS age, 0.95 * p AS d, CAST(x AS DOUBLE) / 2 AS h, "
           "count(*) FILTER (WHERE a >= c - INTERVAL 30 DAY) AS n FROM t")
    spark = to_spark_sql(sql, "test.sql step 'snapshot'")
    assert "(UNIX_SECONDS(c) - UNIX_SECONDS(a)) / CAST(86400.0 AS DOUBLE)" in spark  # boundaries, not DATEDIFF
    assert "CAST(0.95 AS DOUBLE) * p" in spark and "/ 2" in spark  # decimals become DOUBLE, integers stay
    assert "FILTER(WHERE a >= c - INTERVAL '30' DAY)" in spark
    with pytest.raises(SnapshotSqlError, match="test.sql step 'x': date_diff with unit 'DAY'"):
        to_spark_sql("SELECT date_diff('day', a, c) FROM t", "test.sql step 'x'")


def test_duckdb_engine_spills_to_a_folder_in_the_workspace(ws, monkeypatch):
    engine = snapshot_engine(ws)
    try:
        setting = dict(engine.con.execute(
            "SELECT name, value FROM duckdb_settings() WHERE name IN ('memory_limit', 'temp_directory')").fetchall())
        assert Path(setting["temp_directory"]).parent == ws.root / "tmp"
        assert setting["memory_limit"] == "2.7 GiB"  # 3GB, the default
    finally:
        engine.close()
    assert list((ws.root / "tmp").iterdir()) == []  # removed on close
    monkeypatch.setenv("ECRM_DUCKDB_MEMORY_LIMIT", "lots")
    with pytest.raises(ValueError, match="ECRM_DUCKDB_MEMORY_LIMIT"):
        snapshot_engine(ws)
    assert list((ws.root / "tmp").iterdir()) == []


def test_spark_engine_without_pyspark_says_how_to_install_it(ws, monkeypatch):
    monkeypatch.setitem(sys.modules, "pyspark", None)  # import pyspark fails as if it were not installed
    spark = Settings.model_validate({"feast": {"offline_store": {"type": "spark"}}}).feast.offline_store
    with pytest.raises(ConfigError, match="make install-spark"):
        ensure_snapshots(ws, [T1], offline_store=spark)


def test_the_duckdb_path_does_not_import_pyspark(ws):
    """The default engine never imports pyspark (an optional extra): checked in a fresh interpreter.

    The child leaves with ``os._exit`` once it has printed its verdict: pyarrow's parquet reader threads
    can abort the interpreter's shutdown now and then ("terminate called without an active exception",
    apache/arrow#34314), which happened once in CI and is not what this test is about."""
    code = ("import os, sys; from features.snapshots import ensure_snapshots; from features.storage import Workspace; "
            f"got = ensure_snapshots(Workspace({str(ws.root)!r}), ['2024-01-01']); "
            "assert len(got['customer_orders']) == 2, got; "
            "assert 'pyspark' not in sys.modules and 'py4j' not in sys.modules; print('ok', flush=True); "
            "os._exit(0)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                         cwd=Path(__file__).resolve().parents[2])
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr[-2000:]


def test_a_failed_update_leaves_the_previous_snapshot_file(ws):
    first = ensure_snapshots(ws, [T1])["customer_orders"]
    path = snapshot_path(ws.features_dir, "customer_orders")

    def batches_then_failure():
        yield compute_view("customer_orders", {n: ws.table_path(n) for n in ("orders", "products")}, [T2])
        raise RuntimeError("engine died")

    with pytest.raises(RuntimeError, match="engine died"):
        write_snapshots(path, True, batches_then_failure())
    pd.testing.assert_frame_equal(pd.read_parquet(path), first)
    assert [p.name for p in ws.features_dir.iterdir() if p.name.endswith(".tmp")] == []


def test_workspace_as_of_reads_only_the_order_times(tmp_path, tiny_shop):
    from features.snapshots import default_as_of, workspace_as_of

    ws = Workspace(tmp_path)
    with pytest.raises(FileNotFoundError, match="no 'orders' table"):
        workspace_as_of(ws)
    write_tables(ws, tiny_shop, source="test")
    want = default_as_of(ws.read_table("orders"))
    assert workspace_as_of(ws) == want == pd.Timestamp(tiny_shop["orders"]["ordered_at"].max()).normalize() + pd.Timedelta(days=1)
    assert str(want.tz) == "UTC"


# ------------------------------------------------------------------------------------------------------
# snapshots for a sample of customers (the training cutoffs of a large shop)
# ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("view", ["customer_orders", "customer_sessions"])
@pytest.mark.parametrize("per_batch", [1, 3])
def test_snapshots_of_some_customers_are_their_rows_of_everyones(edge_shop, view, per_batch):
    full = compute_view(view, edge_shop, [T1, T2, T3], cutoffs_per_batch=per_batch)
    ids = sorted(set(full["customer_id"]))[::2]
    some = compute_view(view, edge_shop, [T1, T2, T3], cutoffs_per_batch=per_batch, customers=[*ids, "NOBODY"])
    assert 0 < len(some) < len(full)
    pd.testing.assert_frame_equal(some, full[full["customer_id"].isin(ids)].reset_index(drop=True))


def test_reference_prices_of_a_sample_come_from_every_customer(make_orders):
    """A's price index compares A's price with the median of everyone's (10, 20, 30 -> 20), not of A's alone."""
    t = "2023-12-01 10:00"
    orders = make_orders([("O1", "A", "P1", 1, 10.0, t, False), ("O2", "B", "P1", 1, 20.0, t, False),
                          ("O3", "C", "P1", 1, 30.0, t, False)])
    some = compute_view("customer_orders", {"orders": orders}, [T1], customers=["A"])
    assert list(some["customer_id"]) == ["A"]
    assert some["price_index_365d"].iloc[0] == pytest.approx(0.5, rel=1e-12)
    assert some["discount_share_365d"].iloc[0] == 1.0


@pytest.mark.parametrize("per_batch", [1, 2])
def test_reference_price_is_the_median_of_the_365_days_before_each_cutoff(make_orders, per_batch):
    """Everyone's P1 lines before T1: 10, 10, 40, 50 (even: the mean of 10 and 40 is 25); one at 1000 more than
    365 days before T1 and one at 60 between T1 and T2 (T2: 10, 10, 40, 50, 60 -> 40). A paid 10."""
    rows = [("O0", "B", "P1", 1, 1000.0, "2022-12-31 23:59", False), ("O1", "A", "P1", 1, 10.0, "2023-12-01", False),
            ("O2", "B", "P1", 1, 10.0, "2023-12-02", False), ("O3", "C", "P1", 1, 40.0, "2023-12-03", False),
            ("O4", "C", "P1", 2, 50.0, "2023-12-04", False), ("O5", "B", "P1", 1, 60.0, "2024-02-01", False)]
    out = compute_view("customer_orders", {"orders": make_orders(rows)}, [T1, T2], cutoffs_per_batch=per_batch)
    a = out[out["customer_id"] == "A"].set_index("event_timestamp")["price_index_365d"]
    assert a[T1] == pytest.approx(10 / 25, rel=1e-12) and a[T2] == pytest.approx(10 / 40, rel=1e-12)
    c = out[out["customer_id"] == "C"].set_index("event_timestamp")
    assert c.loc[T1, "price_index_365d"] == pytest.approx((40 / 25 + 50 / 25) / 2, rel=1e-12)
    assert c.loc[T1, "discount_share_365d"] == 0.0


def test_product_views_cannot_be_limited_to_customers(tiny_shop, ws):
    with pytest.raises(ValueError, match="'product_stats' is not a customer view"):
        compute_view("product_stats", tiny_shop, [T1], customers=["C1"])
    with pytest.raises(ValueError, match=r"\['product_stats'\] are not customer views"):
        ensure_snapshots(ws, [T1], customers=["C1"])


def test_scope_lines_are_kept_only_for_a_sample():
    sql = load_view_sql(SQL_DIR / "customer_order_features.sql")
    scoped = load_view_sql(SQL_DIR / "customer_order_features.sql", scoped=True)
    assert "customer_scope" not in " ".join(s.sql for s in (*sql.prepare, sql.snapshot))
    assert "customer_scope" in scoped.prepare[0].sql and "customer_scope" in scoped.snapshot.sql
    assert scoped.inputs == ("customer_scope", "orders", "products")
    assert "customer_scope" in to_spark_sql(scoped.snapshot.sql, "test")
    with pytest.raises(SnapshotSqlError, match="product_features.sql: no line ending in '-- scope'"):
        load_view_sql(SQL_DIR / "product_features.sql", scoped=True)


def test_sampled_cutoffs_are_kept_and_recomputed_for_everyone_when_asked(ws):
    views = ["customer_orders", "customer_sessions"]
    full = ensure_snapshots(ws, [T1, T2], only=views)
    ws.features_dir.joinpath("snapshots.json").unlink()  # start again from nothing
    calls: list[str] = []
    ids = ["C1", "C3"]
    ensure_snapshots(ws, [T3], only=views)
    sampled = ensure_snapshots(ws, [T1, T2], only=views, customers=ids, progress=calls.append)
    assert calls == ["customer_orders: 2 snapshot(s) of 2 sampled customers",
                     "customer_sessions: 2 snapshot(s) of 2 sampled customers"]
    for view in views:
        got = sampled[view][sampled[view]["event_timestamp"] < T3].reset_index(drop=True)
        want = full[view][full[view]["customer_id"].isin(ids)].reset_index(drop=True)
        pd.testing.assert_frame_equal(got, want)
    calls.clear()
    ensure_snapshots(ws, [T2, T1], only=views, customers=["C3", "C1"], progress=calls.append)
    assert calls == []  # the same sample: nothing to do
    ensure_snapshots(ws, [T1], only=views, customers=["C2"], progress=calls.append)
    assert calls == ["customer_orders: 1 snapshot(s) of 1 sampled customers",
                     "customer_sessions: 1 snapshot(s) of 1 sampled customers"]
    calls.clear()
    again = ensure_snapshots(ws, [T1, T2], only=views, progress=calls.append)  # every customer: recomputed
    assert calls == ["customer_orders: 2 snapshot(s)", "customer_sessions: 2 snapshot(s)"]
    for view in views:
        got = again[view][again[view]["event_timestamp"] < T3].sort_values(["event_timestamp", "customer_id"])
        pd.testing.assert_frame_equal(got.reset_index(drop=True), full[view])
        assert not again[view].duplicated(["customer_id", "event_timestamp"]).any()
    manifest = json.loads((ws.features_dir / "snapshots.json").read_text())
    assert manifest["views"]["customer_orders"] == sorted(str(t) for t in (T1, T2, T3))
    assert manifest["samples"]["customer_orders"] == {}
    calls.clear()
    ensure_snapshots(ws, [T1], only=views, customers=ids, progress=calls.append)
    assert calls == []  # computed for everyone covers any sample
