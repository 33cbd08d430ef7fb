"""serving.scoring.next_purchase_dates: the expected next-purchase date of every customer at once, the day
a fractional number of days after the score date falls on."""

from __future__ import annotations

import numpy as np
import pandas as pd

from serving.scoring import next_purchase_dates


def test_dates_are_the_day_the_offset_falls_on():
    as_of = pd.Timestamp("2024-02-27 15:30", tz="UTC")  # the score day starts at midnight UTC
    days = np.array([0.0, 0.99, 1.0, 2.5, np.nan, 365.0, 30.25])
    got = next_purchase_dates(as_of, days)
    assert got == ["2024-02-27", "2024-02-27", "2024-02-28", "2024-02-29", None, "2025-02-26", "2024-03-28"]
    day0 = as_of.normalize()
    for d, want in zip(days, got):  # the per-customer definition it replaces
        if not np.isnan(d):
            assert (day0 + pd.Timedelta(days=float(d))).date().isoformat() == want


def test_a_score_date_in_another_zone_counts_from_its_utc_day():
    as_of = pd.Timestamp("2024-03-01 00:30", tz="Europe/Berlin")  # 2024-02-29 23:30 UTC
    assert next_purchase_dates(as_of, np.array([0.5, np.nan])) == ["2024-02-29", None]
    assert next_purchase_dates(as_of, np.array([])) == []
