"""How a churn score becomes a risk band and reason texts: pure functions used by batch and HTTP."""

from __future__ import annotations

import functools
import json
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
}


# feature -> sentence when the customer has no value (the quantity is undefined for them).
_MISSING_TEXT: dict[str, str] = {
    "ipi_mean_days": "only one order so far: no buying rhythm yet",
    "ipi_std_days": "too few orders to judge how regular they are",
    "last_gap_days": "only one order so far",
    "recency_ipi_ratio": "only one order so far: no usual gap to compare with",
    "frequency_trend_90d": "no orders in the last two quarters to compare",
    "monetary_trend_90d": "no spend in the last two quarters to compare",
    "avg_order_value_365d": "no orders in the last 365 days",
    "return_rate_365d": "no spend in the last 365 days",
    "price_index_365d": "no purchases this year to judge price sensitivity",
    "discount_share_365d": "no purchases this year to judge price sensitivity",
    "cart_abandonment_90d": "no carts in the last 90 days",
    "view_to_purchase_90d": "no product views in the last 90 days",
    "days_since_last_session": "never visited the site while logged in",
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
        return _MISSING_TEXT.get(short, f"no data on {short.replace('_', ' ')}")
    if template is None:
        return f"{short.replace('_', ' ')} = {value:.3g}"
    return template.format(v=value)


RHYTHM = "purchase_rhythm"


# every value the purchase-rhythm driver reads (top_drivers passes only these): keep in step with
# _rhythm_text below and the driver's "value"
_RHYTHM_INPUTS = ("customer_orders__recency_days", "customer_orders__frequency_lifetime", "bgnbd_p_alive",
                  "bgnbd_p_no_purchase")


def _rhythm_text(row: Mapping[str, float]) -> str:
    """The BG/NBD purchase-rhythm driver in words, from the customer's own history."""
    return _rhythm_words(row.get("customer_orders__recency_days"), row.get("customer_orders__frequency_lifetime"),
                         row.get("bgnbd_p_alive"))


def _rhythm_words(rec: float | None, n: float | None, alive: float | None) -> str:
    """:func:`_rhythm_text` from the three values it reads (None: not among the model's columns)."""
    if rec is None or n is None or np.isnan(rec) or np.isnan(n):
        return "purchase rhythm suggests they have lapsed"
    text = f"no order for {rec:.0f} days after {n:.0f} order{'s' if n != 1 else ''}"
    if alive is not None and not np.isnan(alive) and alive < 0.995:  # one-order customers: P(alive) is 1 by definition
        text += f": {alive:.0%} chance they are still an active buyer"
    return text


def top_drivers(
    contributions: np.ndarray, values: np.ndarray, feature_names: list[str], k: int
) -> list[list[dict]]:
    """For each row, the ``k`` features that push the churn score up most, with their sentences.

    ``contributions`` and ``values`` are (n_rows, n_features); contributions are on the logit scale.
    The BG/NBD outputs are one driver, ``purchase_rhythm``. Features with a non-positive contribution
    are never listed as risk drivers.
    """
    other_cols, rhythm_cols, labels, index = _driver_layout(tuple(feature_names))
    contrib = contributions[:, other_cols]
    if len(rhythm_cols):
        contrib = np.column_stack([contrib, contributions[:, rhythm_cols].sum(axis=1)])
    out: list[list[dict]] = []
    order = np.argsort(-contrib, axis=1, kind="stable")[:, :k]
    for i in range(contrib.shape[0]):
        row = []
        for j in order[i]:
            c = float(contrib[i, j])
            if c <= 0:
                break
            if labels[j] == RHYTHM:
                row_values = {n: float(values[i, index[n]]) for n in _RHYTHM_INPUTS if n in index}
                v = row_values.get("bgnbd_p_no_purchase")
                row.append({"feature": RHYTHM, "value": None if v is None or np.isnan(v) else round(v, 4),
                            "impact": round(c, 4), "text": _rhythm_text(row_values)})
                continue
            v = float(values[i, other_cols[j]])
            v = None if np.isnan(v) else v
            row.append({"feature": labels[j].split("__", 1)[-1], "value": v, "impact": round(c, 4),
                        "text": driver_text(labels[j], v)})
        out.append(row)
    return out


def driver_columns(contributions: np.ndarray, values: np.ndarray, feature_names: list[str], k: int
                   ) -> tuple[list[str], list[str]]:
    """:func:`top_drivers` of every row in the two forms the batch outputs store: ``json.dumps`` of the
    row's list of drivers, and their sentences joined by "; ". The same strings, built driver by driver
    across the rows instead of a dict per driver (720,000 customers: about 25 s less)."""
    other_cols, rhythm_cols, labels, index = _driver_layout(tuple(feature_names))
    contrib = contributions[:, other_cols]
    if len(rhythm_cols):
        contrib = np.column_stack([contrib, contributions[:, rhythm_cols].sum(axis=1)])
    n = contrib.shape[0]
    order = np.argsort(-contrib, axis=1, kind="stable")[:, :k]
    top = np.take_along_axis(contrib, order, axis=1)
    # a row's drivers stop at its first non-positive contribution (sorted: all after it are too)
    listed = np.cumprod(top > 0, axis=1).astype(bool)
    rhythm_values = {name: values[:, index[name]] for name in _RHYTHM_INPUTS if name in index}
    slots_json, slots_text = [], []
    for j in range(order.shape[1]):
        frag = np.full(n, "", dtype=object)
        text = np.full(n, "", dtype=object)
        for label in np.unique(order[listed[:, j], j]).tolist():
            rows = np.flatnonzero(listed[:, j] & (order[:, j] == label))
            impacts = [_json_number(round(c, 4)) for c in top[rows, j].tolist()]
            if labels[label] == RHYTHM:
                col = lambda name: (rhythm_values[name][rows].tolist() if name in rhythm_values  # noqa: E731
                                    else [None] * len(rows))
                texts = [_rhythm_words(*v) for v in zip(col("customer_orders__recency_days"),
                                                        col("customer_orders__frequency_lifetime"),
                                                        col("bgnbd_p_alive"))]
                shown = [None if v is None or np.isnan(v) else round(v, 4) for v in col("bgnbd_p_no_purchase")]
                feature = RHYTHM
            else:
                vals = values[rows, other_cols[label]].tolist()
                shown = [None if np.isnan(v) else v for v in vals]
                texts = [driver_text(labels[label], v) for v in shown]
                feature = labels[label].split("__", 1)[-1]
            head = '{"feature": ' + json.dumps(feature) + ', "value": '
            frag[rows] = [f'{head}{_json_number(v)}, "impact": {c}, "text": {json.dumps(t)}}}'
                          for v, c, t in zip(shown, impacts, texts)]
            text[rows] = texts
        slots_json.append(frag.tolist())
        slots_text.append(text.tolist())
    as_json = ["[" + ", ".join(f for f in fs if f) + "]" for fs in zip(*slots_json)] if k > 0 else ["[]"] * n
    as_text = ["; ".join(t for t in ts if t) for ts in zip(*slots_text)] if k > 0 else [""] * n
    return as_json, as_text


def _json_number(v: float | None) -> str:
    """``json.dumps(v)`` of a float or None (``repr`` for the finite ones: the same text, faster)."""
    return "null" if v is None else repr(v) if np.isfinite(v) else json.dumps(v)


def risk_bands(probability: np.ndarray, bands: Mapping[str, float]) -> np.ndarray:
    """:func:`risk_band` of every probability (an object array of band names)."""
    probability = np.asarray(probability, dtype=float)
    out = np.full(len(probability), None, dtype=object)
    best = np.full(len(probability), -1.0)
    for name, bound in bands.items():
        hit = (probability >= bound) & (bound > best)
        out[hit] = name
        best[hit] = bound
    if len(probability) and (out == None).any():  # noqa: E711 - elementwise
        bad = float(probability[out == None][0])  # noqa: E711
        raise ValueError(f"no risk band covers probability {bad}; check churn.risk_bands")
    return out


@functools.lru_cache(maxsize=32)
def _driver_layout(names: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray, tuple[str, ...], dict[str, int]]:
    """For a model's column names: the columns that are drivers of their own, the BG/NBD columns summed
    into ``purchase_rhythm``, the drivers' labels and each name's column (computed once per model)."""
    rhythm = [j for j, f in enumerate(names) if f.startswith("bgnbd_")]
    other = [j for j in range(len(names)) if j not in rhythm]
    labels = tuple(names[j] for j in other) + ((RHYTHM,) if rhythm else ())  # shared by every call: immutable
    return (np.array(other, dtype=np.intp), np.array(rhythm, dtype=np.intp), labels,
            {n: j for j, n in enumerate(names)})
