"""The expected next-purchase date: the median of a piecewise-exponential time to the next order."""

from __future__ import annotations

import numpy as np
import pytest

from training.next_purchase_model import median_days_to_next_order


def test_median_inside_the_short_window():
    # P(order in 30 d) = 0.75 -> constant hazard ln(4)/30; median where the cumulative hazard is ln 2: 15 days
    days = median_days_to_next_order(np.array([0.75]), np.array([0.9]), 30, 90)
    assert days[0] == pytest.approx(15.0)


def test_median_in_the_second_segment_and_beyond_the_horizon():
    # P30 = 0.2, P90 = 0.6: h2 = (ln 0.8 - ln 0.4) / 60 = ln 2 / 60
    days = median_days_to_next_order(np.array([0.2, 0.1]), np.array([0.6, 0.3]), 30, 90)
    h1 = -np.log(0.8) / 30
    assert days[0] == pytest.approx(30 + (np.log(2) - h1 * 30) / (np.log(2) / 60))
    assert 90 < days[1] <= 365  # continues with the second hazard after the horizon


def test_unlikely_buyers_get_no_date_and_inconsistent_inputs_are_safe():
    days = median_days_to_next_order(np.array([0.01, 0.3]), np.array([0.02, 0.1]), 30, 90)
    assert np.isnan(days[0])  # the median is years away
    # P90 < P30 (two separate models) is read as P90 = P30: no more risk after day 30, so no median
    assert np.isnan(days[1])
