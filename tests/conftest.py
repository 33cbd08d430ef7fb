"""Shared fixtures: a tiny hand-made shop whose feature values are worked out by hand in the tests.

Cutoffs: T1 = 2024-01-01, T2 = 2024-03-01 (60 days later, 2024 is a leap year), T3 = 2024-04-01.

orders (amount = quantity * unit_price)
    C1  O1   2023-02-01 12:00  P1 2 x 10, P3 1 x 5           (333.5 days before T1)
    C1  O2   2023-12-22 12:00  P2 1 x 20, P4 1 x 100         (9.5 days before T1)
    C1  R1   2023-12-27 00:00  P4 -1 x 100, return           (5 days before T1)
    C1  O3   2024-02-10 00:00  P1 1 x 8                      (after T1)
    C2  O4   2023-11-01 00:00  P1 1 x 10                     (61 days before T1)
    C2  O5   2023-11-01 18:00  P3 2 x 5                      (60.25 days before T1, same day as O4)
    C2  O6   2023-12-11 00:00  P1 1 x 13                     (21 days before T1)
    C3  O7   2024-01-15 00:00  P2 1 x 20, P5 1 x 30          (first order after T1)
    C4  R2   2023-06-01 00:00  P3 -1 x 5, return             (returns only)
    --  O8   2023-12-21 00:00  P1 1 x 10, guest              (11 days before T1)
products: P1 A 10, P2 A 20, P3 B 5, P4 C 100, P5 B 30
sessions (before T1 unless noted)
    C1  S1   2023-12-20 10:00 view P1, 10:05 view P2, 10:10 add_to_cart P1, 10:15 purchase P1
    C1  S2   2023-12-28 12:00 view P3, 18:00 add_to_cart P3        (abandoned cart)
    C1  S3   2023-09-01 12:00 view P4, 12:05 add_to_cart P4        (abandoned, > 90 days before T1)
    C2  S4   2023-12-29 12:00 search, 2023-12-30 00:00 view P1
    --  S5   2023-12-31 view P2, add_to_cart P2                     (guest)
    C3  S6   2024-01-05 view P2                                     (after T1)
"""

from __future__ import annotations

import pandas as pd
import pytest

from features.schema import ORDERS, PRODUCTS, SESSIONS, conform


def _orders(rows: list[tuple]) -> pd.DataFrame:
    """Orders from (order_id, customer_id, product_id, quantity, unit_price, ordered_at, is_return)."""
    df = pd.DataFrame(
        rows, columns=["order_id", "customer_id", "product_id", "quantity", "unit_price", "ordered_at", "is_return"]
    )
    df["amount"] = df["quantity"] * df["unit_price"]
    return conform(df, ORDERS, source="test")


def _sessions(rows: list[tuple]) -> pd.DataFrame:
    """Sessions from (session_id, customer_id, occurred_at, event_type, product_id)."""
    df = pd.DataFrame(rows, columns=["session_id", "customer_id", "occurred_at", "event_type", "product_id"])
    return conform(df, SESSIONS, source="test")


ORDER_ROWS = [
    ("O1", "C1", "P1", 2.0, 10.0, "2023-02-01 12:00", False),
    ("O1", "C1", "P3", 1.0, 5.0, "2023-02-01 12:00", False),
    ("O2", "C1", "P2", 1.0, 20.0, "2023-12-22 12:00", False),
    ("O2", "C1", "P4", 1.0, 100.0, "2023-12-22 12:00", False),
    ("R1", "C1", "P4", -1.0, 100.0, "2023-12-27 00:00", True),
    ("O3", "C1", "P1", 1.0, 8.0, "2024-02-10 00:00", False),
    ("O4", "C2", "P1", 1.0, 10.0, "2023-11-01 00:00", False),
    ("O5", "C2", "P3", 2.0, 5.0, "2023-11-01 18:00", False),
    ("O6", "C2", "P1", 1.0, 13.0, "2023-12-11 00:00", False),
    ("O7", "C3", "P2", 1.0, 20.0, "2024-01-15 00:00", False),
    ("O7", "C3", "P5", 1.0, 30.0, "2024-01-15 00:00", False),
    ("R2", "C4", "P3", -1.0, 5.0, "2023-06-01 00:00", True),
    ("O8", None, "P1", 1.0, 10.0, "2023-12-21 00:00", False),
]
SESSION_ROWS = [
    ("S1", "C1", "2023-12-20 10:00", "view", "P1"),
    ("S1", "C1", "2023-12-20 10:05", "view", "P2"),
    ("S1", "C1", "2023-12-20 10:10", "add_to_cart", "P1"),
    ("S1", "C1", "2023-12-20 10:15", "purchase", "P1"),
    ("S2", "C1", "2023-12-28 12:00", "view", "P3"),
    ("S2", "C1", "2023-12-28 18:00", "add_to_cart", "P3"),
    ("S3", "C1", "2023-09-01 12:00", "view", "P4"),
    ("S3", "C1", "2023-09-01 12:05", "add_to_cart", "P4"),
    ("S4", "C2", "2023-12-29 12:00", "search", None),
    ("S4", "C2", "2023-12-30 00:00", "view", "P1"),
    ("S5", None, "2023-12-31 08:00", "view", "P2"),
    ("S5", None, "2023-12-31 08:05", "add_to_cart", "P2"),
    ("S6", "C3", "2024-01-05 09:00", "view", "P2"),
]


@pytest.fixture
def make_orders():
    """Builder: canonical orders from (order_id, customer_id, product_id, quantity, unit_price, ordered_at,
    is_return) tuples; amount = quantity * unit_price."""
    return _orders


@pytest.fixture
def make_sessions():
    """Builder: canonical sessions from (session_id, customer_id, occurred_at, event_type, product_id)."""
    return _sessions


def _shop() -> dict[str, pd.DataFrame]:
    products = pd.DataFrame(
        {
            "product_id": ["P1", "P2", "P3", "P4", "P5"],
            "name": ["p1", "p2", "p3", "p4", "p5"],
            "category": ["A", "A", "B", "C", "B"],
            "unit_price": [10.0, 20.0, 5.0, 100.0, 30.0],
        }
    )
    return {
        "orders": _orders(ORDER_ROWS),
        "products": conform(products, PRODUCTS, source="test"),
        "sessions": _sessions(SESSION_ROWS),
    }


@pytest.fixture(scope="session")
def make_tiny_shop():
    """Builder of fresh copies of the tiny shop above (for module-scoped fixtures)."""
    return _shop


@pytest.fixture
def tiny_shop() -> dict[str, pd.DataFrame]:
    """The tiny shop above as canonical tables (orders, products, sessions)."""
    return _shop()
