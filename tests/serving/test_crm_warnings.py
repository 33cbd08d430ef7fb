"""Warning indicators on a hand-made scored table and the tiny shop's orders (tests/conftest.py)."""

from __future__ import annotations

import pandas as pd
import pytest

from configs.settings import WarningSettings
from serving.crm_warnings import evaluate_warnings, quarterly_kpis


def test_indicators_thresholds_and_unavailable(tiny_shop):
    scores = pd.DataFrame({
        "customer_id": ["a", "b", "c", "d"],
        "risk_band": ["high", "low", "high", "medium"],
        "value_tier": ["top", "top", "small", "big"],
        "lifecycle_stage": ["churned", "loyal", "churned", "churned"],
    })
    cfg = WarningSettings(top_tier_high_risk_share_max=0.4, churned_rate_max=0.8)
    got = {w["indicator"]: w for w in evaluate_warnings(scores, tiny_shop["orders"], pd.Timestamp("2024-04-01", tz="UTC"), cfg)}
    assert got["top_tier_high_risk_share"]["value"] == 0.5 and got["top_tier_high_risk_share"]["status"] == "warning"
    assert got["churned_customer_rate"]["value"] == 0.75 and got["churned_customer_rate"]["status"] == "ok"
    # the tiny shop's last complete quarter [2024-01-01, 2024-04-01): C1 (O3) and C3 (O7), one order each
    assert got["repeat_purchase_rate"]["value"] == 0.0 and got["repeat_purchase_rate"]["status"] == "warning"
    # new customers: C3 in Q1 2024, C2 (first order 2023-11-01) in Q4 2023: no change
    assert got["new_customers_change"]["value"] == 0.0 and got["new_customers_change"]["status"] == "ok"
    early = evaluate_warnings(scores, tiny_shop["orders"], pd.Timestamp("2023-07-01", tz="UTC"), cfg)
    assert early[3]["status"] == "unavailable"  # only one complete quarter (Q2 2023) before the date
    no_segments = evaluate_warnings(scores[["customer_id", "risk_band"]], tiny_shop["orders"],
                                    pd.Timestamp("2024-04-01", tz="UTC"), cfg)
    assert [w["status"] for w in no_segments[:2]] == ["unavailable", "unavailable"]
    assert "no segment model" in no_segments[0]["message"]


def test_kpis_computed_beforehand_give_the_same_indicators(tiny_shop):
    from training.labels import customer_orders

    scores = pd.DataFrame({"customer_id": ["a"], "risk_band": ["high"]})
    as_of = pd.Timestamp("2024-04-01", tz="UTC")
    cfg = WarningSettings()
    kpis = quarterly_kpis(tiny_shop["orders"], as_of, customer_orders(tiny_shop["orders"]))
    assert kpis["period_start"].tolist() == [pd.Timestamp(d, tz="UTC") for d in ("2023-04-01", "2023-07-01",
                                                                               "2023-10-01", "2024-01-01")]
    pd.testing.assert_frame_equal(kpis, quarterly_kpis(tiny_shop["orders"], as_of))
    assert (evaluate_warnings(scores, None, as_of, cfg, kpis=kpis)
            == evaluate_warnings(scores, tiny_shop["orders"], as_of, cfg))
    with pytest.raises(ValueError, match="needs the orders or their quarterly KPIs"):
        evaluate_warnings(scores, None, as_of, cfg)
    assert quarterly_kpis(tiny_shop["orders"], pd.Timestamp("2020-01-01", tz="UTC")).empty  # before any order
