"""Feature snapshots (features/snapshots.py and the SQL in features/repo): exact values on the tiny shop of
tests/conftest.py, point-in-time correctness, and the incremental snapshot files of ensure_snapshots."""

from __future__ import annotations

import json
import math

import pandas as pd
import pytest

from features.repo.definitions import VIEW_SPECS, snapshot_path
from features.snapshots import compute_view, ensure_snapshots
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
