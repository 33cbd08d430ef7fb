"""The at-risk list's CSV text (``ecrm score``'s at_risk.csv and ``GET /at_risk.csv``)."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd

from serving.at_risk import at_risk_csv


def _rows() -> pd.DataFrame:
    return pd.DataFrame({
        "customer_id": pd.Series(["C1", "C2", "C3"], dtype="string"),
        "churn_probability": [0.999949, 0.41235, 0.1],
        "risk_band": ["high", "medium", "low"],
        "value_at_risk": [1234.56789, np.nan, 0.0],
        "lifecycle_stage": pd.Series(["churned", None, "new"], dtype="string"),
        "frequency_365d": [23.0, 1.0, 2.0],
        "top_drivers": ['no order for 300 days; said "bye", left', "", "last visit 2 days ago"],
    })


def test_csv_rounds_numbers_quotes_text_and_leaves_missing_values_empty():
    text = at_risk_csv(_rows()).decode()
    assert text.splitlines() == [
        '"customer_id","churn_probability","risk_band","value_at_risk","lifecycle_stage","frequency_365d",'
        '"top_drivers"',
        '"C1",0.9999,"high",1234.5679,"churned",23,"no order for 300 days; said ""bye"", left"',
        '"C2",0.4124,"medium",,,1,""',
        '"C3",0.1,"low",0,"new",2,"last visit 2 days ago"',
    ]


def test_csv_reads_back_as_the_rows_rounded_to_4_decimals():
    rows = _rows()
    back = pd.read_csv(io.BytesIO(at_risk_csv(rows)), keep_default_na=False, na_values=[""])
    assert list(back.columns) == list(rows.columns)
    np.testing.assert_array_equal(back["churn_probability"], rows["churn_probability"].round(4))
    np.testing.assert_array_equal(back["value_at_risk"], rows["value_at_risk"].round(4))
    assert back["customer_id"].tolist() == ["C1", "C2", "C3"]
    assert back["top_drivers"].fillna("").tolist() == rows["top_drivers"].tolist()


def test_csv_of_no_rows_is_the_header():
    assert at_risk_csv(_rows().iloc[:0]).decode().splitlines() == [
        '"customer_id","churn_probability","risk_band","value_at_risk","lifecycle_stage","frequency_365d",'
        '"top_drivers"']
