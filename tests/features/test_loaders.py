"""Loaders: the Online Retail rules, a user's own order file with a column mapping, rejects, atomic save."""

from __future__ import annotations

import json

import pandas as pd
import pyarrow as pa
import pytest

from features.loaders import (
    DataFileError,
    clean_id,
    is_non_product_code,
    load_online_retail,
    load_orders,
    parse_mapping,
    product_type,
    save_load,
)
from features.schema import SchemaError
from features.storage import Workspace

OR_HEADER = ["Invoice", "StockCode", "Description", "Quantity", "InvoiceDate", "Price", "Customer ID", "Country"]


def _online_retail(tmp_path, rows, suffix="parquet"):
    df = pd.DataFrame(rows, columns=OR_HEADER)
    path = tmp_path / f"or.{suffix}"
    if suffix == "parquet":
        df["InvoiceDate"] = pd.to_datetime(df["InvoiceDate"])
        df.to_parquet(path)
    elif suffix == "csv":
        df.to_csv(path, index=False)
    else:
        df.to_excel(path, index=False)
    return path


OR_ROWS = [
    ["489434", "85048", "WHITE HANGING HEART T-LIGHT HOLDER", 12, "2010-07-01 10:00", 2.5, 13085.0, "United Kingdom"],
    ["489434", "79323P", "PINK CHERRY LIGHTS", 6, "2010-07-01 10:00", 6.75, 13085.0, "United Kingdom"],
    ["489434", "POST", "POSTAGE", 1, "2010-07-01 10:00", 18.0, 13085.0, "United Kingdom"],
    ["C489435", "85048", "WHITE HANGING HEART T-LIGHT HOLDER", -2, "2010-07-02 11:00", 2.5, 13085.0, "United Kingdom"],
    ["489436", "85048", "WHITE HANGING HEART T-LIGHT HOLDER", 3, "2010-01-05 09:30", 2.55, None, "France"],
    ["489437", "21733", "damaged", -96, "2010-07-03 10:00", 0.0, None, "United Kingdom"],
    ["A506401", "B", "Adjust bad debt", 1, "2010-07-04 10:00", -53594.36, None, "United Kingdom"],
    ["489438", "85048", "WHITE HANGING HEART T-LIGHT HOLDER", 1, "2010-07-05 12:00", 2.5, 12347.0, "Iceland"],
    ["489438", "85048", "WHITE HANGING HEART T-LIGHT HOLDER", 1, "2010-07-05 12:00", 2.5, 12347.0, "Iceland"],
    ["489439", "DCGS0076", "SUNJAR LED NIGHT NIGHT LIGHT", 1, "2010-07-06 12:00", 16.0, 12347.0, "Iceland"],
    ["489440", "BANK CHARGES", "Bank Charges", 1, "2010-07-06 13:00", 15.0, 12347.0, "Iceland"],
]


def test_online_retail_rules(tmp_path):
    res = load_online_retail(_online_retail(tmp_path, OR_ROWS))
    orders = res.tables["orders"]
    # kept: 2 sale lines + 1 return of 13085, 1 guest line, 1 of the duplicated lines, the DCGS item
    assert len(orders) == 6
    ret = orders[orders["is_return"]]
    assert ret["order_id"].tolist() == ["C489435"]
    assert ret["quantity"].tolist() == [-2.0] and ret["amount"].tolist() == [-5.0]
    assert orders["customer_id"].isna().sum() == 1  # the guest line is kept without a customer
    assert set(orders["customer_id"].dropna()) == {"13085", "12347"}  # no trailing ".0"
    assert "DCGS0076" in set(orders["product_id"]) and "POST" not in set(orders["product_id"])
    reasons = dict(zip(res.rejects["row"], res.rejects["reason"]))
    assert reasons == {
        3: "non-product code",
        6: "non-positive price",
        7: "adjustment invoice (bad debt)",
        9: "exact duplicate of an earlier row",
        11: "non-product code",
    }
    assert res.counts["rows read"] == 11 and res.counts["rows rejected"] == 5
    assert res.counts["rejected: non-product code"] == 2
    assert res.counts["guest lines (no customer id)"] == 1


def test_online_retail_times_are_local_london_converted_to_utc(tmp_path):
    res = load_online_retail(_online_retail(tmp_path, OR_ROWS))
    first = res.tables["orders"].iloc[0]  # the January guest line: GMT, no shift
    assert first["ordered_at"] == pd.Timestamp("2010-01-05 09:30", tz="UTC")
    july = res.tables["orders"].set_index("product_id").loc["79323P", "ordered_at"]
    assert july == pd.Timestamp("2010-07-01 09:00", tz="UTC")  # BST = UTC+1
    assert str(res.tables["orders"]["ordered_at"].dtype) == "datetime64[us, UTC]"


def test_online_retail_customers_and_products(tmp_path):
    res = load_online_retail(_online_retail(tmp_path, OR_ROWS))
    customers = res.tables["customers"].set_index("customer_id")
    assert customers.loc["13085", "country"] == "United Kingdom"
    assert customers.loc["12347", "first_seen"] == pd.Timestamp("2010-07-05 11:00", tz="UTC")
    products = res.tables["products"].set_index("product_id")
    assert products.loc["85048", "name"] == "WHITE HANGING HEART T-LIGHT HOLDER"
    assert products.loc["85048", "category"] == "holder"
    assert products.loc["85048", "unit_price"] == 2.5  # median of sale prices 2.5, 2.55, 2.5


def test_online_retail_csv_and_xlsx_give_the_same_tables(tmp_path):
    a = load_online_retail(_online_retail(tmp_path, OR_ROWS, "csv"))
    b = load_online_retail(_online_retail(tmp_path, OR_ROWS, "xlsx"))
    pd.testing.assert_frame_equal(a.tables["orders"], b.tables["orders"])
    assert a.counts == b.counts


def test_online_retail_missing_column_names_file_and_column(tmp_path):
    path = tmp_path / "bad.csv"
    pd.DataFrame({"Invoice": ["1"], "StockCode": ["85048"]}).to_csv(path, index=False)
    with pytest.raises(DataFileError, match=r"bad\.csv: missing column 'Quantity'"):
        load_online_retail(path)


def test_non_product_codes_and_product_types():
    codes = pd.Series(["85123A", "POST", "DOT", "M", "m", "C2", "gift_0001_20", "DCGSSBOY", "CRUK", "ADJUST2", "TEST001", "NEWFEE"])
    assert is_non_product_code(codes).tolist() == [False, True, True, True, True, True, True, False, True, True, True, True]
    types = product_type(pd.Series(["RED MUG ", "SET OF 3 CAKE TINS", "12 PENCILS 2", None]))
    assert types.fillna("<none>").tolist() == ["mug", "tins", "pencils", "<none>"]


def test_clean_id_drops_trailing_zero_decimals():
    assert clean_id(pd.Series([13085.0, None])).tolist() == ["13085", pd.NA]
    assert clean_id(pd.Series(["13085.0", " A7 ", ""])).tolist() == ["13085", "A7", pd.NA]


ORDERS_CSV = """CustID,Invoice,When,Total,SKU,Email,Guest
c1,o1,2024-03-01 10:00,20.00,p1,a@example.com,no
c1,o1,2024-03-01 10:00,5.50,p2,a@example.com,no
c1,o2,2024-03-09 10:00,-5.50,p2,a@example.com,no
,o3,2024-03-10 10:00,9.00,p1,,yes
,o4,2024-03-10 11:00,9.00,p1,,no
c2,o5,not a date,9.00,p1,b@example.com,no
c2,o6,2024-03-11 12:00,0,p1,b@example.com,no
c2,o7,2024-03-12 12:00,abc,p1,b@example.com,no
c2,o8,2024-03-13 12:00,12.00,p3,b@example.com,no
"""
MAPPING = ["customer_id=CustID", "order_id=Invoice", "ordered_at=When", "amount=Total", "product_id=SKU", "is_guest=Guest"]


def test_own_orders_with_mapping(tmp_path):
    path = tmp_path / "shop.csv"
    path.write_text(ORDERS_CSV)
    res = load_orders(path, mapping=parse_mapping(MAPPING))
    orders = res.tables["orders"]
    assert orders["order_id"].tolist() == ["o1", "o1", "o2", "o3", "o8"]
    assert orders["is_return"].tolist() == [False, False, True, False, False]
    assert orders["amount"].tolist() == [20.0, 5.5, -5.5, 9.0, 12.0]
    assert orders["quantity"].tolist() == [1.0, 1.0, -1.0, 1.0, 1.0]  # amount only: one unit per line
    assert orders["customer_id"].isna().tolist() == [False, False, False, True, False]
    reasons = dict(zip(res.rejects["row"], res.rejects["reason"]))
    assert reasons == {
        5: "missing customer_id on a non-guest row",
        6: "unparseable ordered_at",
        7: "non-positive amount on a sale line",
        8: "amount is not a number",
    }
    # columns outside the data contract (e-mails) never reach the tables
    assert all("Email" not in t.columns and "email" not in t.columns for t in res.tables.values())
    assert res.tables["products"]["product_id"].tolist() == ["p1", "p2", "p3"]
    assert res.tables["customers"]["customer_id"].tolist() == ["c1", "c2"]


def test_own_orders_quantity_and_price_without_guest_column(tmp_path):
    path = tmp_path / "lines.csv"
    path.write_text(
        "customer_id,order_id,ordered_at,quantity,unit_price,is_return\n"
        "1,A,2024-01-01T10:00:00+01:00,2,3.5,false\n"
        "1,B,2024-01-02T10:00:00+01:00,2,3.5,true\n"
        ",C,2024-01-03T10:00:00Z,1,1.0,false\n"
        "2,D,2024-01-04T10:00:00Z,-1,1.0,false\n"
        "2,E,2024-01-05T10:00:00Z,1,-1.0,false\n"
        "2,F,2024-01-06T10:00:00Z,1,1.0,maybe\n"
    )
    res = load_orders(path)
    orders = res.tables["orders"]
    assert orders["order_id"].tolist() == ["A", "B"]
    assert orders["ordered_at"].tolist() == [pd.Timestamp("2024-01-01 09:00", tz="UTC"), pd.Timestamp("2024-01-02 09:00", tz="UTC")]
    assert orders["amount"].tolist() == [7.0, -7.0] and orders["quantity"].tolist() == [2.0, -2.0]
    assert "products" not in res.tables  # no product ids: no products table, everything else works
    assert res.rejects["reason"].tolist() == [
        "missing customer_id (map an is_guest column to keep guest orders)",
        "negative quantity or amount on a sale line",
        "non-positive unit_price",
        "is_return is not true/false",
    ]


@pytest.mark.parametrize(
    ("content", "mapping", "message"),
    [
        ("order_id,ordered_at,amount\n1,2024-01-01,3\n", [], r"x\.csv: missing required column 'customer_id' \(rename with --map"),
        ("customer_id,order_id,ordered_at\n1,1,2024-01-01\n", [], r"x\.csv: needs column 'amount'"),
        ("customer_id,order_id,ordered_at,amount\n1,1,2024-01-01,3\n", ["order_id=Nope"], r"mapped column 'Nope' \(for order_id\) is not in the file"),
    ],
)
def test_own_orders_bad_files_name_file_and_column(tmp_path, content, mapping, message):
    path = tmp_path / "x.csv"
    path.write_text(content)
    with pytest.raises(DataFileError, match=message):
        load_orders(path, mapping=parse_mapping(mapping))


def test_bad_mapping_and_missing_or_unknown_files(tmp_path):
    with pytest.raises(DataFileError, match="expected canonical=source"):
        parse_mapping(["customer_id"])
    with pytest.raises(DataFileError, match="unknown canonical column 'email'"):
        parse_mapping(["email=Email"])
    with pytest.raises(DataFileError, match=r"nothere\.csv: file not found"):
        load_orders(tmp_path / "nothere.csv")
    (tmp_path / "data.json").write_text("{}")
    with pytest.raises(DataFileError, match="unsupported file type '.json'"):
        load_orders(tmp_path / "data.json")


def test_all_rows_rejected_is_an_error(tmp_path):
    path = tmp_path / "x.csv"
    path.write_text("customer_id,order_id,ordered_at,amount\n1,1,never,3\n")
    with pytest.raises(DataFileError, match="no valid order lines.*unparseable ordered_at"):
        load_orders(path)


def test_save_load_writes_tables_rejects_and_manifest(tmp_path):
    ws = Workspace(tmp_path / "ws")
    path = tmp_path / "shop.csv"
    path.write_text(ORDERS_CSV)
    res = load_orders(path, mapping=parse_mapping(MAPPING))
    save_load(ws, res)
    assert len(ws.read_table("orders")) == 5
    assert len(pd.read_parquet(ws.rejects_dir / "rejects.parquet")) == 4
    manifest = json.loads((ws.data_dir / "manifest.json").read_text())
    assert manifest["source"] == "orders:shop.csv" and manifest["counts"]["rows rejected"] == 4


def test_read_table_reads_only_the_columns_asked_for(tmp_path):
    from training.labels import ORDER_LINE_COLUMNS, customer_orders

    ws = Workspace(tmp_path / "ws")
    path = tmp_path / "shop.csv"
    path.write_text(ORDERS_CSV)
    save_load(ws, load_orders(path, mapping=parse_mapping(MAPPING)))
    whole = ws.read_table("orders")
    some = ws.read_table("orders", ["is_return", "customer_id"])
    assert list(some.columns) == ["is_return", "customer_id"]  # in the order asked for, dtypes of the contract
    pd.testing.assert_frame_equal(some, whole[["is_return", "customer_id"]])
    # the pipelines' per-order rows from the columns they read equal those from the whole table
    pd.testing.assert_frame_equal(customer_orders(ws.read_table("orders", ORDER_LINE_COLUMNS)), customer_orders(whole))
    # as Arrow (what the pipelines read): the same values and the same per-order rows
    table = ws.read_arrow("orders", ORDER_LINE_COLUMNS)
    assert table.column_names == list(ORDER_LINE_COLUMNS)
    pd.testing.assert_frame_equal(table.to_pandas(types_mapper={pa.string(): pd.StringDtype()}.get),
                                  whole[list(ORDER_LINE_COLUMNS)])
    pd.testing.assert_frame_equal(customer_orders(table), customer_orders(whole))
    for read in (ws.read_table, ws.read_arrow):
        with pytest.raises(ValueError, match=r"table 'orders' has no column\(s\) \['email'\]; its columns are"):
            read("orders", ["customer_id", "email"])
    with pytest.raises(FileNotFoundError, match="no 'sessions' table"):
        ws.read_arrow("sessions", ["customer_id"])


def test_failed_save_keeps_the_previous_tables(tmp_path):
    ws = Workspace(tmp_path / "ws")
    path = tmp_path / "shop.csv"
    path.write_text(ORDERS_CSV)
    good = load_orders(path, mapping=parse_mapping(MAPPING))
    save_load(ws, good)
    before = ws.read_table("orders")
    bad = load_orders(path, mapping=parse_mapping(MAPPING))
    bad.tables["orders"] = bad.tables["orders"].assign(ordered_at=None)  # breaks the contract
    with pytest.raises(SchemaError, match="ordered_at"):
        save_load(ws, bad)
    pd.testing.assert_frame_equal(ws.read_table("orders"), before)
    assert (ws.data_dir / "manifest.json").is_file()
