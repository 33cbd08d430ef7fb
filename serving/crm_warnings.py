"""Warning thresholds on key CRM indicators, evaluated on a scoring run (``ecrm score``, ``GET /warnings``).

Indicators, each against a threshold from ``warnings:`` in the config:

* ``top_tier_high_risk_share``: share of the top value tier (customer value pyramid) in the high churn
  risk band; warns above ``top_tier_high_risk_share_max``;
* ``churned_customer_rate``: share of the scored customers whose lifecycle stage is ``churned``; warns
  above ``churned_rate_max``;
* ``repeat_purchase_rate``: share of the last complete quarter's active customers with two or more
  orders in it (:mod:`evaluation.kpis`); warns below ``repeat_purchase_rate_min``;
* ``new_customers_change``: relative change of new customers, last complete quarter vs the one before;
  warns below ``-new_customers_drop_max``.

An indicator that cannot be computed (no segment model, too little history) is reported with status
``unavailable`` and the reason, never silently left out.
"""

from __future__ import annotations

import pandas as pd
import pyarrow as pa

from configs.settings import WarningSettings
from evaluation.kpis import crm_kpis
from features.snapshots import order_line_time


def _row(indicator: str, value: float | None, threshold: float, kind: str, text: str, why: str = "") -> dict:
    if value is None or pd.isna(value):
        return {"indicator": indicator, "value": None, "threshold": threshold, "kind": kind,
                "status": "unavailable", "message": why}
    bad = value > threshold if kind == "max" else value < threshold
    return {"indicator": indicator, "value": round(float(value), 4), "threshold": threshold, "kind": kind,
            "status": "warning" if bad else "ok", "message": text.format(v=value, t=threshold)}


def quarterly_kpis(orders: pd.DataFrame | pa.Table, as_of: pd.Timestamp,
                   order_rows: pd.DataFrame | None = None) -> pd.DataFrame:
    """The CRM KPIs of every complete quarter from the first order line to ``as_of`` (what the order-based
    indicators read; empty without one). ``order_rows``: the orders of ``orders``
    (:func:`~training.labels.customer_orders`) when the caller has them already."""
    start = order_line_time(orders, "min").normalize()
    return crm_kpis(orders, start=start, end=as_of, freq="QS", order_rows=order_rows) if start < as_of else pd.DataFrame()


def evaluate_warnings(scores: pd.DataFrame, orders: pd.DataFrame | pa.Table | None, as_of: pd.Timestamp,
                      cfg: WarningSettings, kpis: pd.DataFrame | None = None) -> list[dict]:
    """Every indicator with its value, threshold and status for the customers scored as of ``as_of``.

    ``scores`` is the ``churn.parquet`` table (``risk_band`` and, with the segment model,
    ``value_tier`` and ``lifecycle_stage``). ``kpis``: :func:`quarterly_kpis` of ``orders`` at ``as_of``
    when computed already (``ecrm score`` computes them while it holds the order rows, then lets the
    orders go: ``orders`` may then be None)."""
    if kpis is None and orders is None:
        raise ValueError("evaluate_warnings needs the orders or their quarterly KPIs")
    out = []
    if "value_tier" in scores:
        top = scores[scores["value_tier"] == "top"]
        share = (top["risk_band"] == "high").mean() if len(top) else None
        out.append(_row("top_tier_high_risk_share", share, cfg.top_tier_high_risk_share_max, "max",
                        "{v:.1%} of top-tier customers are at high churn risk (threshold {t:.0%})",
                        "no customer in the top value tier"))
    else:
        out.append(_row("top_tier_high_risk_share", None, cfg.top_tier_high_risk_share_max, "max", "",
                        "no segment model: value tiers unknown"))
    if "lifecycle_stage" in scores and len(scores):
        rate = (scores["lifecycle_stage"] == "churned").mean()
        out.append(_row("churned_customer_rate", rate, cfg.churned_rate_max, "max",
                        "{v:.1%} of active-in-the-last-year customers are churned (threshold {t:.0%})"))
    else:
        out.append(_row("churned_customer_rate", None, cfg.churned_rate_max, "max", "",
                        "no segment model: lifecycle stages unknown"))
    kpis = quarterly_kpis(orders, as_of) if kpis is None else kpis
    last = kpis.iloc[-1] if len(kpis) else None
    quarter = f" in the quarter from {last['period_start'].date()}" if last is not None else ""
    out.append(_row("repeat_purchase_rate", None if last is None else last["repeat_purchase_rate"],
                    cfg.repeat_purchase_rate_min, "min",
                    "{v:.1%} of active customers ordered twice or more" + quarter + " (threshold {t:.0%})",
                    "no complete quarter before the score date"))
    change = None
    if len(kpis) >= 2 and kpis.iloc[-2]["new_customers"] > 0:
        change = kpis.iloc[-1]["new_customers"] / kpis.iloc[-2]["new_customers"] - 1.0
    out.append(_row("new_customers_change", change, -cfg.new_customers_drop_max, "min",
                    "new customers changed by {v:+.1%}" + quarter + " vs the quarter before (threshold {t:+.0%})",
                    "fewer than two complete quarters, or none with new customers, before the score date"))
    return out
