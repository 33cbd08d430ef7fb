"""Removing customers from single files: exact rows go, everything else stays as written."""

from __future__ import annotations

import pandas as pd

from features.privacy.scrub import drop_csv_rows, drop_log_lines, drop_parquet_rows
from features.storage import write_parquet_atomic


def test_parquet_rows_go_by_customer_column_only(tmp_path):
    path = tmp_path / "t.parquet"
    df = pd.DataFrame({"customer_id": ["C1", "C10", None, "C2"], "product_id": ["C1", "P1", "P2", "P3"],
                       "x": [1.0, 2.0, 3.0, 4.0]})
    write_parquet_atomic(df, path)
    assert drop_parquet_rows(path, {"C1", "C2"}) == 2
    out = pd.read_parquet(path)
    assert out["customer_id"].tolist() == ["C10", None] and out["product_id"].tolist() == ["P1", "P2"]
    assert out["x"].tolist() == [2.0, 3.0]
    assert drop_parquet_rows(path, {"C1"}, column="no_such_column") == 0


def test_reject_ids_are_compared_as_loaded(tmp_path):
    path = tmp_path / "rejects.parquet"
    write_parquet_atomic(pd.DataFrame({"row": [2, 3, 4], "Customer ID": [" 12346.0", "123460", "12347"]}), path)
    assert drop_parquet_rows(path, {"12346"}, column="Customer ID") == 1
    assert pd.read_parquet(path)["row"].tolist() == [3, 4]


def test_csv_rows_go_and_other_cells_stay_verbatim(tmp_path):
    path = tmp_path / "at_risk.csv"
    path.write_text("customer_id,churn_probability,top_drivers\nC1,0.9000,\"a, b\"\nC2,0.1000,c\n")
    assert drop_csv_rows(path, {"C1"}) == 1
    assert path.read_text() == "customer_id,churn_probability,top_drivers\nC2,0.1000,c\n"


def test_log_lines_that_mention_a_customer_go(tmp_path):
    path = tmp_path / "server.log"
    path.write_text("GET /customers/C1 200\nGET /customers/C10 200\nGET /customers/C1?x=1 404\nready\n")
    assert drop_log_lines(path, {"C1"}) == 2
    assert path.read_text() == "GET /customers/C10 200\nready\n"
