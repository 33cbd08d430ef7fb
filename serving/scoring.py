"""Scoring logic shared by the HTTP service and the batch ``ecrm score``: features in, results out."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import numpy as np
import pandas as pd

from training.churn_model import ChurnModel
from training.explain import driver_columns, risk_band, risk_bands, top_drivers
from training.next_purchase_model import NextPurchaseModel, median_days_to_next_order


SCORE_PART_ROWS = 100_000  # rows per model call in a large batch (6-16 s each in the 1M bench, 2 cores)


class ChurnScorer:
    """Turns feature rows into churn probability, risk band and top drivers with one model."""

    def __init__(self, model: ChurnModel, feature_refs: Sequence[str], bands: Mapping[str, float], k: int = 3) -> None:
        self.model = model
        by_column = {r.replace(":", "__"): r for r in feature_refs}
        missing = [c for c in model.feature_names_in_ if c not in by_column]
        if missing:
            raise ValueError(f"the churn model needs features {missing} that its registered feature_refs lack")
        self.columns = list(model.feature_names_in_)  # the model's column order: arrays need no reordering
        self.refs = [by_column[c] for c in self.columns]
        self.bands = dict(bands)
        self.k = k

    def score_frame(self, ids: Sequence[str], features: pd.DataFrame, known: np.ndarray | None = None,
                    threads: int = 1, progress: Callable[[str], None] | None = None) -> list[dict]:
        """Score rows of ``features`` (``view__feature`` columns) for ``ids``; ``known`` False = unknown id;
        ``threads`` and ``progress`` as in :meth:`score_array`."""
        return self.score_array(ids, features[self.columns].to_numpy(dtype="float64"), known, threads, progress)

    def _explained_parts(self, A: np.ndarray, rows: np.ndarray, threads: int,
                         progress: Callable[[str], None] | None):
        """``(part, probabilities, contributions, values, names)`` of ``A[rows]``, explained in parts of
        :data:`SCORE_PART_ROWS` rows on ``threads``; each part reported to ``progress`` once the caller is
        done with it when there are several."""
        for lo in range(0, len(rows), SCORE_PART_ROWS):
            part = rows[lo:lo + SCORE_PART_ROWS]
            yield (part, *self.model.explain(A[part], threads))
            if progress is not None and len(rows) > SCORE_PART_ROWS:
                progress(f"churn: {lo + len(part):,}/{len(rows):,} customers scored and explained")

    def score_array(self, ids: Sequence[str], A: np.ndarray, known: np.ndarray | None = None,
                    threads: int = 1, progress: Callable[[str], None] | None = None) -> list[dict]:
        """Score rows of ``A`` (columns in :attr:`columns` order) for ``ids``; ``known`` False = unknown id.
        Large batches go in parts of :data:`SCORE_PART_ROWS` rows, each reported to ``progress``."""
        known = np.ones(len(ids), dtype=bool) if known is None else np.asarray(known, dtype=bool)
        results: list[dict] = [{"customer_id": str(c), "status": "unknown_customer", "churn_probability": None,
                                "risk_band": None, "top_drivers": []} for c in ids]
        for part, p, contrib, values, names in self._explained_parts(A, np.flatnonzero(known), threads, progress):
            drivers = top_drivers(contrib, values, names, self.k)
            for row, i in enumerate(part):
                prob = float(p[row])
                results[i].update(status="ok", churn_probability=round(prob, 6),
                                  risk_band=risk_band(prob, self.bands), top_drivers=drivers[row])
        return results

    def score_table(self, ids: Sequence[str], A: np.ndarray, threads: int = 1,
                    progress: Callable[[str], None] | None = None) -> pd.DataFrame:
        """:meth:`score_array` of known customers as a table, for the batch outputs (``ecrm score``):
        customer_id, status, churn_probability, risk_band, top_drivers (the drivers as JSON text) and
        top_drivers_text (their sentences joined by "; "). The same values, without a dict per customer and
        driver."""
        parts = []
        for _, p, contrib, values, names in self._explained_parts(A, np.arange(len(ids)), threads, progress):
            as_json, as_text = driver_columns(contrib, values, names, self.k)
            prob = np.asarray(p, dtype=float)
            parts.append(pd.DataFrame({"churn_probability": [round(x, 6) for x in prob.tolist()],  # as score_array
                                       "risk_band": risk_bands(prob, self.bands),
                                       "top_drivers": as_json, "top_drivers_text": as_text}))
        table = (pd.concat(parts, ignore_index=True) if parts else
                 pd.DataFrame({"churn_probability": np.zeros(0), "risk_band": np.zeros(0, dtype=object),
                               "top_drivers": np.zeros(0, dtype=object), "top_drivers_text": np.zeros(0, dtype=object)}))
        table.insert(0, "customer_id", [str(c) for c in ids])
        table.insert(1, "status", "ok")
        return table


class NextPurchaseScorer:
    """Turns feature rows into next-purchase and value forecasts with one model."""

    def __init__(self, model: NextPurchaseModel, feature_refs: Sequence[str]) -> None:
        self.model = model
        self.refs = list(feature_refs)
        self.columns = [r.replace(":", "__") for r in self.refs]

    def score_frame(self, ids: Sequence[str], features: pd.DataFrame, as_of: pd.Timestamp,
                    p_horizon: Sequence[float | None], known: np.ndarray | None = None) -> list[dict]:
        """Forecasts for ``ids``; ``p_horizon`` is 1 - the churn probability (one source for that number)."""
        known = np.ones(len(ids), dtype=bool) if known is None else np.asarray(known, dtype=bool)
        results: list[dict] = [{"customer_id": str(c), "status": "unknown_customer", "p_purchase_30d": None,
                                "p_purchase_horizon": None, "expected_purchases": None, "expected_spend": None,
                                "expected_next_purchase_date": None, "clv_12m": None} for c in ids]
        idx = np.flatnonzero(known)
        if len(idx) == 0:
            return results
        X = features.iloc[idx][self.columns].reset_index(drop=True).astype("float64")
        f = self.model.predict_frame(X)
        ph = np.array([np.nan if p_horizon[i] is None else p_horizon[i] for i in idx], dtype=float)
        ph = np.where(np.isnan(ph), 1.0 - np.exp(-f["expected_purchases"].to_numpy()), ph)
        # two models answer the two windows; an order within 30 days is an order within H, so cap the former
        p_short = np.minimum(f["p_purchase_short"].to_numpy(), ph)
        days = median_days_to_next_order(p_short, ph, self.model.short_days, self.model.horizon_days)
        dates = next_purchase_dates(as_of, days)
        purchases, spend, clv = (f[c].to_numpy(dtype="float64") for c in ("expected_purchases", "expected_spend", "clv_12m"))
        for row, i in enumerate(idx):
            results[i].update(status="ok", p_purchase_30d=round(float(p_short[row]), 6),
                              p_purchase_horizon=round(float(ph[row]), 6),
                              expected_purchases=round(float(purchases[row]), 4),
                              expected_spend=round(float(spend[row]), 2),
                              expected_next_purchase_date=dates[row], clv_12m=round(float(clv[row]), 2))
        return results


def next_purchase_dates(as_of: pd.Timestamp, days: np.ndarray) -> list[str | None]:
    """ISO dates ``days`` (>= 0, fractional; NaN = none) after the UTC day of ``as_of``: the day the
    fractional offset falls on, i.e. that day plus the whole days."""
    day0 = np.datetime64(pd.Timestamp(as_of).tz_convert("UTC").date(), "D")
    days = np.asarray(days, dtype="float64")
    known = ~np.isnan(days)
    out: list[str | None] = [None] * len(days)
    stamps = (day0 + np.floor(days[known]).astype("timedelta64[D]")).astype(str)
    for i, stamp in zip(np.flatnonzero(known), stamps):
        out[i] = str(stamp)
    return out
