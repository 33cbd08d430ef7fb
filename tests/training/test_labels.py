"""The churn label (training/labels.py) on hand-made histories: window boundaries, returns, guests,
and the training cutoffs."""

from __future__ import annotations

import pandas as pd
import pytest

from training.labels import churn_labels, customer_orders, eligible_customers, training_cutoffs

T = pd.Timestamp("2024-01-01", tz="UTC")
DAY = pd.Timedelta(days=1)
SEC = pd.Timedelta(seconds=1)


@pytest.fixture
def history(make_orders) -> pd.DataFrame:
    """Order lines around T (lookback 365 d, horizon 90 d); the comment says what each customer tests."""
    rows = [
        ("A1", "A", "P1", 1.0, 10.0, T - 365 * DAY, False),  # exactly at t-365d: eligible; churned
        ("B1", "B", "P1", 1.0, 10.0, T - 365 * DAY - SEC, False),  # 1 s before the window: not eligible
        ("C1", "C", "P1", 1.0, 10.0, T, False),  # only an order exactly at t: not eligible
        ("D1", "D", "P1", 1.0, 10.0, T - 10 * DAY, False),  # eligible, and the order at t
        ("D2", "D", "P1", 1.0, 10.0, T, False),  # ... counts for the horizon: not churned
        ("E1", "E", "P1", 1.0, 10.0, T - 5 * DAY, False),  # next order exactly at t+90d: churned
        ("E2", "E", "P1", 1.0, 10.0, T + 90 * DAY, False),
        ("F1", "F", "P1", 1.0, 10.0, T - 5 * DAY, False),  # next order 1 s before t+90d: not churned
        ("F2", "F", "P1", 1.0, 10.0, T + 90 * DAY - SEC, False),
        ("G1", "G", "P1", -1.0, 10.0, T - 5 * DAY, True),  # returns only: not eligible
        ("H1", "H", "P1", 1.0, 10.0, T - 30 * DAY, False),  # only a return in the horizon: churned
        ("H2", "H", "P1", -1.0, 10.0, T + 10 * DAY, True),
        ("I1", "I", "P1", 1.0, 10.0, T - 20 * DAY, False),  # two-line orders count once each
        ("I1", "I", "P2", 1.0, 5.0, T - 20 * DAY, False),
        ("I2", "I", "P1", 1.0, 10.0, T + 5 * DAY, False),
        ("I2", "I", "P2", 2.0, 5.0, T + 5 * DAY, False),
        ("I3", "I", "P1", 1.0, 10.0, T + 6 * DAY, False),
        ("X1", None, "P1", 1.0, 10.0, T - 5 * DAY, False),  # guests are ignored
        ("X2", None, "P1", 1.0, 10.0, T + 5 * DAY, False),
    ]
    return make_orders(rows)


def test_customer_orders_one_row_per_sale_order(history):
    rows = customer_orders(history)
    assert sorted(zip(rows["customer_id"], rows["order_id"])) == [
        ("A", "A1"), ("B", "B1"), ("C", "C1"), ("D", "D1"), ("D", "D2"), ("E", "E1"), ("E", "E2"),
        ("F", "F1"), ("F", "F2"), ("H", "H1"), ("I", "I1"), ("I", "I2"), ("I", "I3"),
    ]  # no return order (G1, H2), no guest order (X1, X2)


def test_customer_orders_time_is_the_first_line(make_orders):
    lines = make_orders([
        ("O1", "A", "P1", 1.0, 10.0, "2024-01-02 10:00", False),
        ("O1", "A", "P2", 1.0, 10.0, "2024-01-02 09:00", False),
    ])
    rows = customer_orders(lines)
    assert list(rows["ordered_at"]) == [pd.Timestamp("2024-01-02 09:00", tz="UTC")]


def test_customer_order_value_is_the_exact_sum_of_its_lines_in_any_order(make_orders):
    """0.1 + 0.2 + 0.3 is 0.6000000000000001 in floats added in that order: the value is the exact sum (the
    float nearest 0.6) whatever the order of the lines, so DuckDB's threads cannot change it between runs."""
    amounts = [0.1, 0.2, 0.3, 1e6, -1e6 + 0.7]
    for perm in ([0, 1, 2, 3, 4], [4, 3, 2, 1, 0], [2, 0, 4, 1, 3]):
        lines = make_orders([("O1", "A", f"P{i}", 1.0, amounts[i], "2024-01-02 10:00", False) for i in perm])
        assert customer_orders(lines)["value"].item() == 1.3


@pytest.mark.parametrize("amount", [float("inf"), 1e30])
def test_customer_orders_name_the_amount_column_when_an_amount_cannot_be_summed(make_orders, amount):
    lines = make_orders([("O1", "A", "P1", 1.0, 10.0, "2024-01-02 10:00", False)]).assign(amount=amount)
    with pytest.raises(ValueError, match="column 'amount' of the orders holds a sale line amount that is infinite"):
        customer_orders(lines)


def test_customer_orders_from_arrow_equal_the_pandas_definition(history):
    """Arrow input (dictionary-encoded ids, as the pipelines read it) and DataFrame input give the frame
    the pandas definition gives: sorted by customer and order, string ids, UTC microseconds, summed value."""
    import pyarrow as pa

    lines = pd.concat([history, history.iloc[[0]].assign(order_id="Ä1", amount=2.5)], ignore_index=True)
    sales = lines.loc[~lines["is_return"] & lines["customer_id"].notna()]
    expected = (sales.groupby(["customer_id", "order_id"], as_index=False, observed=True)
                .agg(ordered_at=("ordered_at", "min"), value=("amount", "sum"))
                .astype({"customer_id": "string", "order_id": "string"}))  # the contract's id dtype
    table = pa.Table.from_pandas(lines, preserve_index=False)
    encoded = table.set_column(table.schema.get_field_index("customer_id"), "customer_id",
                               table["customer_id"].dictionary_encode())
    halves = [pa.Table.from_pandas(part, preserve_index=False) for part in (lines.iloc[:7], lines.iloc[7:])]
    halves = [h.set_column(0, "order_id", h["order_id"].dictionary_encode()) for h in halves]
    chunked = pa.concat_tables(halves)  # two chunks with different dictionaries, as parquet row groups read
    for given in (lines, table, encoded, chunked):
        got = customer_orders(given)
        pd.testing.assert_frame_equal(got, expected)
    assert str(got["customer_id"].dtype) == "string" and str(got["ordered_at"].dtype) == "datetime64[us, UTC]"
    assert got.loc[got["order_id"] == "I2", "value"].item() == 20.0  # two lines: 10 + 2 x 5
    assert customer_orders(lines.iloc[:0]).empty


def test_eligibility_window_is_half_open(history):
    eligible = eligible_customers(customer_orders(history), T)
    assert list(eligible) == ["A", "D", "E", "F", "H", "I"]
    assert eligible.name == "customer_id"
    # a shorter lookback: H's order is exactly 30 days old, so in at 30 days and out at 29
    assert list(eligible_customers(customer_orders(history), T, lookback_days=30)) == ["D", "E", "F", "H", "I"]
    assert list(eligible_customers(customer_orders(history), T, lookback_days=29)) == ["D", "E", "F", "I"]


def test_churn_labels(history):
    labels = churn_labels(customer_orders(history), T)
    assert list(labels.columns) == ["customer_id", "event_timestamp", "orders_in_horizon", "churned"]
    assert str(labels["event_timestamp"].dtype) == "datetime64[us, UTC]"
    assert (labels["event_timestamp"] == T).all()
    got = dict(zip(labels["customer_id"], zip(labels["orders_in_horizon"], labels["churned"])))
    assert got == {
        "A": (0, 1),
        "D": (1, 0),  # the order exactly at t counts for the horizon
        "E": (0, 1),  # the order exactly at t+H does not
        "F": (1, 0),
        "H": (0, 1),  # a return is not an order
        "I": (2, 0),  # two orders (four lines) in the horizon
    }


def test_churn_labels_horizon_argument(history):
    labels = churn_labels(customer_orders(history), T, horizon_days=91)
    got = dict(zip(labels["customer_id"], labels["churned"]))
    assert got["E"] == 0  # t+90d is inside a 91-day horizon


def test_churn_labels_naive_cutoff_is_utc(history):
    pd.testing.assert_frame_equal(
        churn_labels(customer_orders(history), "2024-01-01 00:00"), churn_labels(customer_orders(history), T)
    )


def test_no_eligible_customer_gives_an_empty_frame(history):
    labels = churn_labels(customer_orders(history), T - 2000 * DAY)
    assert labels.empty
    assert list(labels.columns) == ["customer_id", "event_timestamp", "orders_in_horizon", "churned"]


def test_training_cutoffs():
    cuts = training_cutoffs("2024-04-01", horizon_days=90, n_cutoffs=3, step_days=30)
    assert cuts == [
        pd.Timestamp("2023-11-03", tz="UTC"),
        pd.Timestamp("2023-12-03", tz="UTC"),
        pd.Timestamp("2024-01-02", tz="UTC"),  # as_of - 90 days (2024 is a leap year)
    ]
    assert all(c + pd.Timedelta(days=90) <= pd.Timestamp("2024-04-01", tz="UTC") for c in cuts)


def test_training_cutoffs_drop_those_before_earliest():
    cuts = training_cutoffs(pd.Timestamp("2024-04-01", tz="UTC"), 90, 3, 30, earliest="2023-12-03")
    assert cuts == [pd.Timestamp("2023-12-03", tz="UTC"), pd.Timestamp("2024-01-02", tz="UTC")]  # inclusive
    cuts = training_cutoffs(pd.Timestamp("2024-04-01", tz="UTC"), 90, 3, 30, earliest="2023-12-03 00:00:01")
    assert cuts == [pd.Timestamp("2024-01-02", tz="UTC")]


def test_purchase_targets(history):
    from training.labels import purchase_targets

    t = purchase_targets(customer_orders(history), T, horizon_days=90, short_days=30).set_index("customer_id")
    assert list(t.index) == ["A", "D", "E", "F", "H", "I"]
    assert t.loc["I", "orders_in_horizon"] == 2 and t.loc["I", "orders_short"] == 2
    assert t.loc["I", "spend_in_horizon"] == 10.0 + 10.0 + 10.0  # I2 = 10 + 2*5, I3 = 10
    assert t.loc["I", "days_to_next_order"] == 5.0
    assert t.loc["D", "days_to_next_order"] == 0.0 and t.loc["D", "spend_in_horizon"] == 10.0
    assert t.loc["F", "orders_short"] == 0 and t.loc["F", "orders_in_horizon"] == 1
    assert t.loc["F", "days_to_next_order"] == pytest.approx(90 - 1 / 86400)
    for cid in ("A", "E", "H"):  # nothing in the horizon (E's order at t+90d is outside; H only returned)
        assert t.loc[cid, "orders_in_horizon"] == 0 and t.loc[cid, "spend_in_horizon"] == 0.0
        assert pd.isna(t.loc[cid, "days_to_next_order"])
    churn = churn_labels(customer_orders(history), T).set_index("customer_id")
    assert ((t["orders_in_horizon"] == 0).astype(int) == churn["churned"]).all()  # one definition


def test_customer_orders_from_the_parquet_file_and_the_workspace(history, tmp_path):
    """The workspace's orders file is read by DuckDB itself: the same frame; a missing file says what to run."""
    from features.storage import Workspace, write_tables
    from training.labels import workspace_order_rows

    ws = Workspace(tmp_path / "ws")
    with pytest.raises(FileNotFoundError, match="no 'orders' table in workspace .* `ecrm data synthesize`"):
        workspace_order_rows(ws)
    write_tables(ws, {"orders": history}, source="test")
    rows, as_of = workspace_order_rows(ws)
    pd.testing.assert_frame_equal(rows, customer_orders(history))
    pd.testing.assert_frame_equal(customer_orders(ws.table_path("orders")), customer_orders(history))
    assert as_of == history["ordered_at"].max().normalize() + pd.Timedelta(days=1)
    assert workspace_order_rows(ws, "2024-02-01")[1] == pd.Timestamp("2024-02-01", tz="UTC")
    assert not any((ws.root / "tmp").glob("duckdb-*"))  # DuckDB's spill folder removed
