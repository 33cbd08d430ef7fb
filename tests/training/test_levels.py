"""Per-cutoff level offsets (training.levels) and the level contract of the churn and next-purchase models."""

from __future__ import annotations

import numpy as np
import pytest

from training.levels import group_offsets, log_offset, logit_offset


def test_log_offset_matches_totals():
    init = np.log([1.0, 2.0, 1.0])
    c = log_offset(np.array([2.0, 4.0, 2.0]), init)
    assert c == pytest.approx(np.log(2.0))
    assert np.exp(init + c).sum() == pytest.approx(8.0)


def test_log_offset_is_zero_without_a_positive_total():
    assert log_offset(np.zeros(3), np.zeros(3)) == 0.0


def test_logit_offset_matches_mean_probability():
    init = np.array([-1.0, 0.0, 2.0, 0.5])
    y = np.array([0, 0, 1, 1])
    c = logit_offset(y, init)
    assert np.mean(1 / (1 + np.exp(-(init + c)))) == pytest.approx(0.5, abs=1e-9)
    # probabilities as targets work too
    c2 = logit_offset(np.array([0.2, 0.2, 0.2, 0.2]), init)
    assert np.mean(1 / (1 + np.exp(-(init + c2)))) == pytest.approx(0.2, abs=1e-9)


@pytest.mark.parametrize("y", [np.zeros(4), np.ones(4)])
def test_logit_offset_is_zero_for_one_class(y):
    assert logit_offset(y, np.zeros(4)) == 0.0


def test_group_offsets_are_per_group():
    groups = np.array(["a", "a", "b", "b"])
    init = np.zeros(4)  # exp(0) = 1 per row
    y = np.array([1.0, 3.0, 0.5, 0.5])
    off = group_offsets(groups, y, init, "log")
    np.testing.assert_allclose(off, [np.log(2.0), np.log(2.0), np.log(0.5), np.log(0.5)])
    with pytest.raises(KeyError):
        group_offsets(groups, y, init, "identity")
