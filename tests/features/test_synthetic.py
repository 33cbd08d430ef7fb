"""Tests for features.synthetic: the synthetic shop is deterministic, follows the data contract and is
internally consistent (orders, returns, sessions, customers), with the behaviour the models rely on
(heterogeneous customers, drop-out, seasonality, repeat and co-purchases), whether it is generated in
one block of customers or several, in this process or in worker processes."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

import features.synthetic.blocks as synthetic_blocks
import features.synthetic.tables as synthetic_tables
from features.schema import EVENT_TYPES, TABLES, conform
from features.synthetic import generate_shop, synthesize_shop
from features.synthetic.arrays import _lex_order
from features.synthetic.skeleton import _first_order_statistics
from features.synthetic.tables import _format_ids, _id_labels

SMALL = {"customers": 500, "products": 100, "seed": 7}
START, END = pd.Timestamp("2022-01-01", tz="UTC"), pd.Timestamp("2024-01-01", tz="UTC")


@pytest.fixture(scope="module", params=[150_000, 800], ids=["one block", "five blocks"])
def shop(request) -> dict[str, pd.DataFrame]:
    """The small shop (about 3,800 orders) generated in one block of customers, and in five."""
    return synthesize_shop(**SMALL, block_orders=request.param)


@pytest.fixture(scope="module")
def medium() -> dict[str, pd.DataFrame]:
    """Big enough for population-level statistics."""
    return synthesize_shop(customers=3_000, products=300, seed=11)


def _sales(orders: pd.DataFrame) -> pd.DataFrame:
    return orders[~orders["is_return"]]


# ------------------------------------------------------------------------------------------------------
# Determinism and the contract
# ------------------------------------------------------------------------------------------------------


def test_same_arguments_give_identical_tables():
    first, again = synthesize_shop(**SMALL), synthesize_shop(**SMALL)
    assert set(again) == {"orders", "customers", "products", "sessions"}
    for name, df in first.items():
        pd.testing.assert_frame_equal(df, again[name])


def test_worker_processes_give_the_same_shop(monkeypatch):
    """Blocks generated in two worker processes and time windows built in two threads give exactly the
    shop generated in this thread."""
    monkeypatch.setattr(synthetic_tables, "_ROW_GROUP_ROWS", 5_000)  # several windows
    pools = []
    make_pool = synthetic_blocks._block_pool
    monkeypatch.setattr(synthetic_blocks, "_block_pool", lambda *a: pools.append(make_pool(*a)) or pools[-1])
    alone = synthesize_shop(**SMALL, block_orders=700)
    parallel = synthesize_shop(**SMALL, block_orders=700, workers=2)
    assert pools[0] is None and pools[1] is not None  # the second run did use worker processes
    for name, df in alone.items():
        pd.testing.assert_frame_equal(df, parallel[name])


def test_different_seed_gives_different_tables(shop):
    other = synthesize_shop(**{**SMALL, "seed": 8})
    for name in ("orders", "customers", "products", "sessions"):
        assert not shop[name].equals(other[name]), name


def test_every_table_follows_the_contract(shop):
    for name, df in shop.items():
        table = TABLES[name]
        assert list(df.columns) == table.column_names
        pd.testing.assert_frame_equal(conform(df, table), df)
    assert len(shop["customers"]) == SMALL["customers"]
    assert len(shop["products"]) == SMALL["products"]
    assert shop["customers"]["customer_id"].str.fullmatch(r"C\d{6}").all()
    assert shop["products"]["product_id"].str.fullmatch(r"P\d{5}").all()
    assert set(shop["sessions"]["event_type"]) == set(EVENT_TYPES)


def test_timestamps_are_utc_microseconds_inside_the_period(shop):
    for name, col in (("orders", "ordered_at"), ("customers", "first_seen"), ("sessions", "occurred_at")):
        ts = shop[name][col]
        assert str(ts.dtype) == "datetime64[us, UTC]"
        assert ts.min() >= START and ts.max() < END, name


def test_custom_period_and_sizes():
    tables = synthesize_shop(customers=50, products=5, seed=1, start="2023-03-15", end="2023-05-01")
    assert len(tables["customers"]) == 50 and len(tables["products"]) == 5
    lo, hi = pd.Timestamp("2023-03-15", tz="UTC"), pd.Timestamp("2023-05-01", tz="UTC")
    for name, col in (("orders", "ordered_at"), ("customers", "first_seen"), ("sessions", "occurred_at")):
        assert tables[name][col].between(lo, hi, inclusive="left").all(), name
    with pytest.raises(ValueError):
        synthesize_shop(customers=10, products=5, start="2023-01-01", end="2022-01-01")


def test_progress_reports_each_step():
    messages: list[str] = []
    synthesize_shop(customers=30, products=20, progress=messages.append, block_orders=80)
    text = " ".join(messages)
    for step in ("catalog", "customers", "orders", "returns", "sessions", "block 1/3", "block 3/3", "done"):
        assert step in text


def test_tables_are_streamed_in_time_ordered_chunks(monkeypatch):
    """generate_shop hands orders and sessions over in chunks of whole days, in time order, and the
    chunks add up to the in-memory shop."""
    monkeypatch.setattr(synthetic_tables, "_ROW_GROUP_ROWS", 5_000)
    chunks: dict[str, list[pa.Table]] = {name: [] for name in TABLES}
    counts = generate_shop(lambda name, table: chunks[name].append(table), **SMALL, block_orders=800)
    assert [len(chunks[n]) for n in ("customers", "products")] == [1, 1]
    assert len(chunks["orders"]) >= 2 and len(chunks["sessions"]) >= 10
    whole = synthesize_shop(**SMALL, block_orders=800)
    for name, col in (("orders", "ordered_at"), ("sessions", "occurred_at")):
        assert counts[name] == sum(t.num_rows for t in chunks[name]) == len(whole[name])
        assert all(t.num_rows <= 5_000 + 2_000 for t in chunks[name])  # about a target, whole days
        days = [t.column(col).to_pandas().dt.floor("D") for t in chunks[name]]
        for before, after in zip(days, days[1:]):
            assert before.max() < after.min()  # a day is never split between chunks
        streamed = conform(pa.concat_tables(chunks[name]).to_pandas(), TABLES[name])
        pd.testing.assert_frame_equal(streamed, whole[name])


# ------------------------------------------------------------------------------------------------------
# Orders, returns, customers, products
# ------------------------------------------------------------------------------------------------------


def test_order_lines_are_consistent(shop):
    orders = shop["orders"]
    sales = _sales(orders)
    assert (sales["quantity"] > 0).all() and (sales["unit_price"] > 0).all()
    assert np.allclose(orders["amount"], (orders["quantity"] * orders["unit_price"]).round(2))
    # an order id is one customer at one time; (order, product) is unique; several lines on average
    per_order = sales.groupby("order_id").agg(customers=("customer_id", "nunique"), times=("ordered_at", "nunique"))
    assert (per_order["customers"] <= 1).all() and (per_order["times"] == 1).all()
    assert not sales.duplicated(["order_id", "product_id"]).any()
    assert 2.5 < len(sales) / sales["order_id"].nunique() < 8
    assert set(sales["product_id"]) <= set(shop["products"]["product_id"])
    assert set(orders["customer_id"].dropna()) == set(shop["customers"]["customer_id"])  # everyone ordered
    guest_share = sales["customer_id"].isna().mean()
    assert 0 < guest_share < 0.05


def test_rows_are_in_time_order_and_ids_are_numbered_chronologically(shop):
    orders, sessions = shop["orders"], shop["sessions"]
    assert orders["ordered_at"].is_monotonic_increasing and sessions["occurred_at"].is_monotonic_increasing
    sale_ids = _sales(orders).groupby("order_id")["ordered_at"].first()
    assert sale_ids.index.str.fullmatch(r"\d{7}").all()
    assert sale_ids.sort_index().is_monotonic_increasing  # order ids follow the order times
    assert sorted(sale_ids.index.astype(int) - 1_000_000) == list(range(len(sale_ids)))
    assert orders.groupby("order_id")["product_id"].agg(lambda p: p.is_monotonic_increasing).all()
    first_event = sessions.groupby("session_id")["occurred_at"].min()
    assert first_event.index.str.fullmatch(r"S\d{8}").all()
    assert first_event.sort_index().is_monotonic_increasing  # sessions numbered by their first event
    assert list(first_event.sort_index().index) == [f"S{i:08d}" for i in range(1, len(first_event) + 1)]


def test_returns_reverse_an_earlier_sale_of_the_same_customer_and_product(shop):
    orders = shop["orders"]
    returns = orders[orders["is_return"]]
    assert len(returns) > 0
    assert (returns["quantity"] < 0).all() and (returns["amount"] < 0).all() and (returns["unit_price"] > 0).all()
    assert returns["order_id"].str.startswith("R").all() and returns["customer_id"].notna().all()
    sales = _sales(orders).assign(order_id=lambda d: "R" + d["order_id"])
    matched = returns.merge(sales, on=["order_id", "customer_id", "product_id"], suffixes=("", "_sale"),
                            how="left", validate="one_to_one")
    assert matched["ordered_at_sale"].notna().all()
    assert (matched["ordered_at"] > matched["ordered_at_sale"]).all()
    assert (-matched["quantity"] <= matched["quantity_sale"]).all()
    assert (matched["unit_price"] == matched["unit_price_sale"]).all()
    per_return = returns.groupby("order_id").agg(times=("ordered_at", "nunique"), lines=("product_id", "size"))
    assert (per_return["times"] == 1).all()  # the returned lines of an order go back together
    assert 0.005 < len(returns) / len(sales) < 0.15


def test_customers_first_seen_is_their_first_event(shop):
    customers = shop["customers"].set_index("customer_id")
    sessions = shop["sessions"].dropna(subset=["customer_id"])
    first_event = sessions.groupby("customer_id")["occurred_at"].min()
    first_order = _sales(shop["orders"]).groupby("customer_id")["ordered_at"].min()
    pd.testing.assert_series_equal(customers["first_seen"], first_event.reindex(customers.index),
                                   check_names=False)
    assert (customers["first_seen"] <= first_order.reindex(customers.index)).all()
    assert customers["country"].notna().all()
    assert customers["country"].value_counts(normalize=True).iloc[0] > 0.25  # skewed


def test_catalog_has_named_categories_and_skewed_popularity(medium):
    products = medium["products"]
    assert 10 <= products["category"].nunique() <= 20
    assert products["name"].notna().all() and products["name"].nunique() > 0.95 * len(products)
    assert (products["unit_price"] > 0).all()
    sold = _sales(medium["orders"])["product_id"].value_counts()
    top_tenth = sold.iloc[: len(products) // 10].sum() / sold.sum()
    assert top_tenth > 0.3  # Zipf-like: the top 10 % of products sell far more than 10 % of lines
    # prices differ by category
    medians = products.groupby("category")["unit_price"].median()
    assert medians.max() > 4 * medians.min()


# ------------------------------------------------------------------------------------------------------
# Sessions: the funnel is consistent with the orders
# ------------------------------------------------------------------------------------------------------


def test_one_purchase_event_per_order_at_the_order_time(shop):
    sessions, sales = shop["sessions"], _sales(shop["orders"])
    purchases = sessions[sessions["event_type"] == "purchase"]
    assert purchases["product_id"].isna().all()
    assert not purchases["session_id"].duplicated().any()
    order_rows = sales.drop_duplicates("order_id")
    assert len(purchases) == len(order_rows)
    assert purchases["customer_id"].notna().sum() == order_rows["customer_id"].notna().sum()
    # each registered order has a purchase event by its customer at exactly its time, and vice versa
    reg_orders = order_rows.dropna(subset=["customer_id"])[["customer_id", "ordered_at"]]
    reg_purchases = purchases.dropna(subset=["customer_id"])[["customer_id", "occurred_at"]]
    keys_o = set(zip(reg_orders["customer_id"], reg_orders["ordered_at"]))
    keys_p = set(zip(reg_purchases["customer_id"], reg_purchases["occurred_at"]))
    assert keys_o == keys_p and len(keys_o) == len(reg_orders)
    guest_times = order_rows.loc[order_rows["customer_id"].isna(), "ordered_at"].sort_values().to_numpy()
    guest_purchase_times = purchases.loc[purchases["customer_id"].isna(), "occurred_at"].sort_values().to_numpy()
    assert (guest_times == guest_purchase_times).all()


def test_every_purchased_product_was_viewed_and_carted_earlier_in_the_orders_session(shop):
    sessions, sales = shop["sessions"], _sales(shop["orders"])
    purchases = sessions[(sessions["event_type"] == "purchase") & sessions["customer_id"].notna()]
    lines = sales.dropna(subset=["customer_id"]).merge(
        purchases[["customer_id", "occurred_at", "session_id"]],
        left_on=["customer_id", "ordered_at"], right_on=["customer_id", "occurred_at"], how="left",
        validate="many_to_one")
    assert lines["session_id"].notna().all()
    for event in ("view", "add_to_cart"):
        ev = (sessions[sessions["event_type"] == event]
              .groupby(["session_id", "product_id"], as_index=False)["occurred_at"].min()
              .rename(columns={"occurred_at": "event_at"}))
        m = lines.merge(ev, on=["session_id", "product_id"], how="left")
        assert m["event_at"].notna().all(), event
        assert (m["event_at"] <= m["ordered_at"]).all(), event
        assert ((m["ordered_at"] - m["event_at"]) < pd.Timedelta(hours=12)).all(), event


def test_sessions_are_short_single_actor_and_varied(shop):
    sessions = shop["sessions"]
    g = sessions.groupby("session_id")
    assert (g["customer_id"].nunique(dropna=False) == 1).all()
    duration = g["occurred_at"].max() - g["occurred_at"].min()
    assert duration.median() < pd.Timedelta(minutes=30)
    assert sessions.loc[sessions["event_type"] == "search", "product_id"].isna().all()
    assert sessions.loc[sessions["event_type"].isin(["view", "add_to_cart"]), "product_id"].notna().all()
    kinds = g["event_type"].agg(lambda s: frozenset(s))
    converting = kinds.map(lambda k: "purchase" in k)
    abandoned = kinds.map(lambda k: "add_to_cart" in k and "purchase" not in k)
    assert (~converting).sum() > converting.sum() * 0.5  # plenty of sessions that do not convert
    assert abandoned.sum() > 0
    guest = g["customer_id"].first().isna()
    assert guest.sum() > 0 and (guest & ~converting).sum() > 0 and (guest & converting).sum() > 0
    # registered customers' events never precede their first_seen
    first_seen = shop["customers"].set_index("customer_id")["first_seen"]
    reg = sessions.dropna(subset=["customer_id"])
    assert (reg["occurred_at"].to_numpy() >= first_seen.reindex(reg["customer_id"]).to_numpy()).all()


# ------------------------------------------------------------------------------------------------------
# Behaviour the models learn from
# ------------------------------------------------------------------------------------------------------


def test_customers_are_heterogeneous_and_revenue_is_concentrated(medium):
    sales = _sales(medium["orders"]).dropna(subset=["customer_id"])
    revenue = sales.groupby("customer_id")["amount"].sum().sort_values(ascending=False)
    assert revenue.iloc[: len(revenue) // 5].sum() / revenue.sum() > 0.5
    n_orders = sales.groupby("customer_id")["order_id"].nunique()
    assert 0.1 < (n_orders == 1).mean() < 0.6  # many one-off buyers ...
    assert n_orders.quantile(0.99) >= 30  # ... and a core of heavy buyers
    lines_per_order = sales.groupby(["customer_id", "order_id"]).size().groupby("customer_id").mean()
    assert lines_per_order[n_orders >= 5].std() > 1  # basket sizes differ between customers


def test_customers_drop_out(medium):
    sales = _sales(medium["orders"]).dropna(subset=["customer_id"])
    first_seen = medium["customers"].set_index("customer_id")["first_seen"]
    early = first_seen[first_seen < START + (END - START) / 2].index
    last_order = sales.groupby("customer_id")["ordered_at"].max().reindex(early)
    lapsed = (last_order < END - pd.Timedelta(days=90)).mean()
    assert 0.35 < lapsed < 0.9
    # new customers arrive throughout the period, growing
    by_quarter = first_seen.dt.tz_localize(None).dt.to_period("Q").value_counts().sort_index()
    assert len(by_quarter) == 8 and (by_quarter.iloc[1:] > 0).all()
    assert by_quarter.iloc[4:].sum() > by_quarter.iloc[1:4].sum()  # 2023 acquires more than Q2-Q4 2022


def test_yearly_and_weekly_seasonality(medium):
    orders = _sales(medium["orders"]).drop_duplicates("order_id")
    when = orders["ordered_at"].dt.tz_localize(None)
    monthly = orders.groupby(when.dt.to_period("M")).size()
    for year in (2022, 2023):
        q4 = monthly[[pd.Period(f"{year}-{m:02d}", "M") for m in (11, 12)]].mean()
        summer = monthly[[pd.Period(f"{year}-{m:02d}", "M") for m in (6, 7, 8)]].mean()
        assert q4 > 1.3 * summer, year
    weekday = orders.groupby(when.dt.dayofweek).size()
    assert weekday[5] < 0.85 * weekday[[0, 1, 6]].mean()  # Saturday is the quietest day
    hour = orders.groupby(when.dt.hour).size()
    assert hour[[3, 4]].sum() * 5 < hour[[19, 20]].sum()  # nights are quiet


def test_consumables_are_repurchased_at_their_rhythm(medium):
    sales = _sales(medium["orders"]).dropna(subset=["customer_id"])
    cats = medium["products"].set_index("product_id")["category"]
    sales = sales.assign(category=sales["product_id"].map(cats)).sort_values("ordered_at")
    gap = sales.groupby(["customer_id", "product_id"])["ordered_at"].diff().dt.total_seconds() / 86_400
    repeat = sales.assign(gap=gap).dropna(subset=["gap"])
    coffee = repeat.loc[repeat["category"] == "Coffee & Tea", "gap"]
    assert len(coffee) > 100
    assert 20 < coffee.median() < 60  # about monthly
    # consumable items are re-bought far more often than durable ones
    share = sales.assign(rep=gap.notna()).groupby("category")["rep"].mean()
    assert share[["Coffee & Tea", "Pet Supplies"]].min() > 2 * share[["Shoes", "Home Decor"]].max()


def test_complementary_products_are_bought_together(medium):
    sales = _sales(medium["orders"])
    baskets = sales.groupby("order_id")["product_id"].agg(list)
    pairs = (baskets[baskets.map(len) > 1].explode().to_frame("a").join(baskets.explode().rename("b"))
             .query("a < b"))
    n_orders = len(baskets)
    pair_support = pairs.groupby(["a", "b"]).size()
    item_support = sales.drop_duplicates(["order_id", "product_id"])["product_id"].value_counts()
    top = pair_support[pair_support >= 10]
    lift = top / (item_support.reindex(top.index.get_level_values(0)).to_numpy()
                  * item_support.reindex(top.index.get_level_values(1)).to_numpy() / n_orders)
    assert len(lift) > 20 and (lift > 5).sum() > 10  # strong, repeatable co-purchase pairs


# ------------------------------------------------------------------------------------------------------
# How the shop is built: the vectorized building blocks
# ------------------------------------------------------------------------------------------------------


def test_first_order_statistics_match_sorting_all_the_uniforms():
    """The j-th smallest of n uniforms on [a, a + w], drawn without drawing the others, has the mean
    a + w j / (n + 1) and the variance w^2 j (n + 1 - j) / ((n + 1)^2 (n + 2)) of the sorted uniforms."""
    reps, n, keep = 40_000, 9, 3
    rng = np.random.default_rng(0)
    times = _first_order_statistics(np.full(reps, 5.0), np.full(reps, 2.0), np.full(reps, n),
                                    np.full(reps, keep), rng).reshape(reps, keep)
    assert (np.diff(times, axis=1) > 0).all() and (times > 5.0).all() and (times < 7.0).all()
    j = np.arange(1, keep + 1)
    mean = 5.0 + 2.0 * j / (n + 1)
    var = 4.0 * j * (n + 1 - j) / ((n + 1) ** 2 * (n + 2))
    assert np.allclose(times.mean(axis=0), mean, atol=4 * np.sqrt(var / reps))
    assert np.allclose(times.var(axis=0), var, rtol=0.05)
    none = _first_order_statistics(np.zeros(3), np.ones(3), np.array([0, 4, 2]), np.zeros(3, int), rng)
    assert len(none) == 0


@pytest.mark.parametrize("n", [0, 1, 7, 5_000])
def test_lex_order_is_a_stable_lexsort(n):
    rng = np.random.default_rng(n)
    small, signed, wide = rng.integers(0, 3, n), rng.integers(-5, 50, n), rng.integers(0, 2 ** 50, n)
    for keys in ([small], [small, signed], [signed, small, small], [wide, wide]):  # the last one does not pack
        assert np.array_equal(_lex_order(keys), np.lexsort(keys[::-1]))


def test_format_ids_zero_pads_and_widens():
    ids = _format_ids("S", np.array([1, 42, 12_345_678, 123_456_789]), 8)
    assert ids.to_pylist() == ["S000000001", "S000000042", "S012345678", "S123456789"]
    assert _format_ids("", np.array([1_000_000, 1_000_001]), 1).to_pylist() == ["1000000", "1000001"]
    assert _format_ids("P", np.array([3, 100_000]), 5).to_pylist() == ["P000003", "P100000"]  # one width
    assert _format_ids("C", np.zeros(0, int), 6).to_pylist() == []
    labels, index = _id_labels("R", np.array([7, 5, 5, 6]), 1)  # a dense range: formatted once
    assert labels.to_pylist() == ["R5", "R6", "R7"] and index.tolist() == [2, 0, 0, 1]
    labels, index = _id_labels("R", np.array([90, 15]), 1)  # sparse: one label per row
    assert labels.to_pylist() == ["R90", "R15"] and index.tolist() == [0, 1]
