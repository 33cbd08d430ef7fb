"""How a churn score becomes a risk band and reason texts: pure functions used by batch and HTTP."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

# feature (without view prefix) -> phrase template; {v} is the customer's value.
_DRIVER_TEXT: dict[str, str] = {
    "recency_days": "last order {v:.0f} days ago",
    "recency_ipi_ratio": "{v:.1f}x longer since the last order than their usual gap",
    "tenure_days": "customer for {v:.0f} days",
    "frequency_30d": "{v:.0f} orders in the last 30 days",
    "frequency_90d": "{v:.0f} orders in the last 90 days",
    "frequency_365d": "{v:.0f} orders in the last 365 days",
    "frequency_lifetime": "{v:.0f} orders in total",
    "frequency_prev_90d": "{v:.0f} orders 90-180 days ago",
    "frequency_trend_90d": "order rate trend {v:.2f} (recent vs previous quarter)",
    "monetary_trend_90d": "spend trend {v:.2f} (recent vs previous quarter)",
    "frequency_ly_next_90d": "{v:.0f} orders in the same season last year",
    "monetary_ly_next_90d": "spent {v:.0f} in the same season last year",
    "frequency_ly_90d": "{v:.0f} orders in the quarter before this season last year",
    "monetary_30d": "spent {v:.0f} in the last 30 days",
    "monetary_90d": "spent {v:.0f} in the last 90 days",
    "monetary_365d": "spent {v:.0f} in the last 365 days",
    "monetary_lifetime": "spent {v:.0f} in total",
    "repeat_purchase_days": "bought on {v:.0f} days after the first purchase",
    "active_span_days": "{v:.0f} days between first and last order",
    "ipi_mean_days": "usually orders every {v:.0f} days",
    "ipi_std_days": "irregular ordering rhythm (spread {v:.0f} days)",
    "last_gap_days": "{v:.0f} days between the last two orders",
    "orders_per_30d": "{v:.2f} orders per month over their tenure",
    "avg_units_per_order": "{v:.0f} units per order on average",
    "avg_lines_per_order": "{v:.0f} items per order on average",
    "avg_order_value_365d": "average order value {v:.0f} this year",
    "avg_order_value_lifetime": "average order value {v:.0f}",
    "max_order_value": "largest order {v:.0f}",
    "distinct_products_365d": "bought {v:.0f} different products this year",
    "distinct_categories_365d": "bought from {v:.0f} categories this year",
    "returns_365d": "{v:.0f} returns in the last 365 days",
    "return_rate_365d": "returned {v:.0%} of their spend this year",
    "price_index_365d": "pays {v:.0%} of typical prices (price sensitivity)",
    "discount_share_365d": "{v:.0%} of items bought at a discount",
    "sessions_30d": "{v:.0f} visits in the last 30 days",
    "sessions_90d": "{v:.0f} visits in the last 90 days",
    "views_30d": "{v:.0f} product views in the last 30 days",
    "views_90d": "{v:.0f} product views in the last 90 days",
    "add_to_cart_90d": "{v:.0f} add-to-carts in the last 90 days",
    "searches_90d": "{v:.0f} searches in the last 90 days",
    "cart_abandonment_90d": "abandoned {v:.0%} of carts in the last 90 days",
    "view_to_purchase_90d": "converts {v:.1%} of product views",
    "days_since_last_session": "last visit {v:.0f} days ago",
    "bgnbd_p_alive": "purchase pattern suggests a {v:.0%} chance they are still active",
    "bgnbd_expected_purchases": "purchase pattern predicts {v:.1f} orders in the horizon",
    "bgnbd_p_no_purchase": "purchase pattern alone gives {v:.0%} risk of no order",
    "season_sin": "time of year",
    "season_cos": "time of year",
}


def risk_band(probability: float, bands: Mapping[str, float]) -> str:
    """The band with the highest lower bound that ``probability`` reaches (bounds from config)."""
    best_name, best_bound = None, -1.0
    for name, bound in bands.items():
        if probability >= bound and bound > best_bound:
            best_name, best_bound = name, bound
    if best_name is None:
        raise ValueError(f"no risk band covers probability {probability}; check churn.risk_bands")
    return best_name


def driver_text(feature: str, value: float | None) -> str:
    """A retention-team sentence for one feature and the customer's value of it."""
    short = feature.split("__", 1)[-1]
    template = _DRIVER_TEXT.get(short)
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return f"no {short.replace('_', ' ')} history"
    if template is None:
        return f"{short.replace('_', ' ')} = {value:.3g}"
    return template.format(v=value)


def top_drivers(
    contributions: np.ndarray, values: np.ndarray, feature_names: list[str], k: int
) -> list[list[dict]]:
    """For each row, the ``k`` features that push the churn score up most, with their sentences.

    ``contributions`` and ``values`` are (n_rows, n_features); contributions are on the logit scale.
    Features with a non-positive contribution are never listed as risk drivers.
    """
    out: list[list[dict]] = []
    order = np.argsort(-contributions, axis=1, kind="stable")[:, :k]
    for i in range(contributions.shape[0]):
        row = []
        for j in order[i]:
            c = float(contributions[i, j])
            if c <= 0:
                break
            v = values[i, j]
            v = None if v is None or (isinstance(v, float) and np.isnan(v)) else float(v)
            row.append(
                {"feature": feature_names[j].split("__", 1)[-1], "value": v, "impact": round(c, 4),
                 "text": driver_text(feature_names[j], v)}
            )
        out.append(row)
    return out
