"""The retention team's at-risk list over HTTP (``POST /at_risk``, ``GET /at_risk.csv``).

``ecrm score`` keeps its scored table in the workspace (``state/at_risk.parquet``); the service reads
it (again whenever a new scoring run replaced it) and answers filtered, paginated queries: customers at
or above a churn probability, ordered by value at risk (churn probability × predicted 12-month value,
or × last year's spend without a next-purchase model).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from features.storage import Workspace

COLUMNS = ["customer_id", "churn_probability", "risk_band", "value_at_risk", "clv_12m", "monetary_365d",
           "rfm_segment", "lifecycle_stage", "value_tier", "country", "recency_days", "frequency_365d",
           "top_drivers_text"]
FILTERS = {"segments": "rfm_segment", "value_tiers": "value_tier", "lifecycle_stages": "lifecycle_stage",
           "countries": "country"}


def at_risk_path(ws: Workspace) -> Path:
    """Where ``ecrm score`` keeps the scored table the service queries."""
    return ws.state_dir / "at_risk.parquet"


def at_risk_csv(rows: pd.DataFrame) -> bytes:
    """``rows`` as CSV text (UTF-8): a header, then one line per row; numbers rounded to 4 decimals and
    written without trailing zeros, text quoted, missing values empty. Written by Arrow: the 720,000
    customers of a 1M shop in about 1.5 s (pandas' ``to_csv`` with a float format took 8 s)."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    cols = {c: rows[c].round(4) if pd.api.types.is_float_dtype(rows[c].dtype) else rows[c] for c in rows.columns}
    table = pa.Table.from_pandas(pd.DataFrame(cols, index=rows.index), preserve_index=False)
    sink = pa.BufferOutputStream()
    pacsv.write_csv(table, sink)
    return sink.getvalue().to_pybytes()


def at_risk_table(table: pd.DataFrame, customers: pd.DataFrame | None) -> pd.DataFrame:
    """The scored table (``churn.parquet`` rows) with the customer's country, ordered by value at risk."""
    out = table.copy()
    if customers is not None and "country" in customers:
        country = customers.drop_duplicates("customer_id").set_index("customer_id")["country"]
        out["country"] = out["customer_id"].map(country).astype("string")
    cols = [c for c in COLUMNS if c in out]
    return out[cols].sort_values(["value_at_risk", "churn_probability", "customer_id"],
                                 ascending=[False, False, True]).reset_index(drop=True)


class AtRiskList:
    """The latest scored table of a workspace, re-read when ``ecrm score`` replaces it."""

    def __init__(self, ws: Workspace) -> None:
        self.path = at_risk_path(ws)
        self._mtime = -1.0
        self._table: pd.DataFrame | None = None

    def table(self) -> pd.DataFrame:
        """The current table; LookupError when no scoring run has been recorded."""
        try:
            mtime = self.path.stat().st_mtime
        except FileNotFoundError as exc:
            raise LookupError("no scoring run has been recorded: run `ecrm score`") from exc
        if mtime != self._mtime:
            self._table, self._mtime = pd.read_parquet(self.path), mtime
        return self._table

    def select(self, min_probability: float = 0.5, **filters: Sequence[str] | None) -> pd.DataFrame:
        """Rows at or above ``min_probability`` matching every given filter (``segments``, ``value_tiers``,
        ``lifecycle_stages``, ``countries``), in value-at-risk order. ValueError for a filter on a column the
        table lacks (e.g. segments without a segment model)."""
        t = self.table()
        mask = t["churn_probability"] >= min_probability
        for name, values in filters.items():
            if values is None:
                continue
            col = FILTERS[name]
            if col not in t:
                raise ValueError(f"cannot filter by {name}: the scoring run has no {col} column")
            mask &= t[col].isin(list(values))
        return t[mask]

    def page(self, page: int = 1, page_size: int = 100, min_probability: float = 0.5, **filters) -> dict:
        """One page of :meth:`select` with the total count."""
        rows = self.select(min_probability, **filters)
        start = (page - 1) * page_size
        chunk = rows.iloc[start:start + page_size]
        items = [{k: (None if pd.isna(v) else v) for k, v in rec.items()}
                 for rec in chunk.astype(object).to_dict(orient="records")]
        return {"total": int(len(rows)), "page": page, "page_size": page_size,
                "pages": (len(rows) + page_size - 1) // page_size, "items": items}
