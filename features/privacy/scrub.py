"""Remove customers from single files: parquet tables, CSV lists, text logs and pickled recommenders.

Every function rewrites its file atomically (a temporary file in the same folder, then a rename) and only
when something was removed, and returns how many rows (or customers) it removed. Files are rewritten
whole, so nothing of the removed rows stays behind in the file.
"""

from __future__ import annotations

import os
import pickle
import re
import tempfile
from collections.abc import Collection
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from features.storage import write_bytes_atomic, write_text_atomic

CUSTOMER_COLUMN = "customer_id"
# per-customer rows of a fitted recommender (training/recommend/recommender.py): ``{name}_ptr_`` indexes
# the arrays ``{name}_items_`` etc. by the customer's row in ``cust_ids_``
_RECOMMENDER_CUSTOMER_LISTS = ("all", "discovery", "bought")


def _normalized(values: pa.ChunkedArray) -> pa.ChunkedArray:
    """Ids as a loader stores them: text, trimmed, without a trailing ``.0`` (``12346.0`` -> ``12346``)."""
    text = pc.utf8_trim_whitespace(pc.cast(values, pa.string()))
    return pc.replace_substring_regex(text, pattern=r"^(-?\d+)\.0+$", replacement=r"\1")


def _write_parquet_table_atomic(table: pa.Table, path: Path) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        pq.write_table(table, tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def drop_parquet_rows(path: Path, ids: Collection[str], column: str = CUSTOMER_COLUMN) -> int:
    """Remove the rows whose ``column`` holds one of ``ids`` (compared as loaders store ids); 0 if no such column."""
    schema = pq.read_schema(path)
    if column not in schema.names or not ids:
        return 0
    table = pq.read_table(path)
    hit = pc.fill_null(pc.is_in(_normalized(table[column]), value_set=pa.array(sorted(ids), pa.string())), False)
    removed = int(pc.sum(hit).as_py() or 0)
    if removed:
        _write_parquet_table_atomic(table.filter(pc.invert(hit)), path)
    return removed


def drop_csv_rows(path: Path, ids: Collection[str], column: str = CUSTOMER_COLUMN) -> int:
    """Remove the rows of a CSV file whose ``column`` holds one of ``ids``; other cells are kept as written."""
    df = pd.read_csv(path, dtype=str, keep_default_na=False)
    if column not in df.columns or not ids:
        return 0
    hit = df[column].str.strip().isin(set(ids))
    removed = int(hit.sum())
    if removed:
        write_text_atomic(df.loc[~hit].to_csv(index=False), path)
    return removed


def drop_log_lines(path: Path, ids: Collection[str]) -> int:
    """Remove the lines of a text file that mention one of ``ids`` (as a whole word, e.g. in a request path)."""
    if not ids:
        return 0
    pattern = re.compile(r"(?<![\w-])(?:" + "|".join(re.escape(i) for i in sorted(ids, key=len, reverse=True))
                         + r")(?![\w-])")
    lines = path.read_bytes().decode("utf-8", errors="surrogateescape").splitlines(keepends=True)
    kept = [line for line in lines if not pattern.search(line)]
    if len(kept) != len(lines):
        write_bytes_atomic("".join(kept).encode("utf-8", errors="surrogateescape"), path)
    return len(lines) - len(kept)


def forget_in_recommender(model: object, ids: Collection[str]) -> int:
    """Remove customers from a fitted recommender in place; returns how many it knew.

    Their id leaves ``cust_ids_`` / ``cust_index_`` (they become unknown customers, who get trending
    items) and their precomputed lists and purchase history are emptied. Raises ValueError when the
    object does not have the layout this function knows.
    """
    index = getattr(model, "cust_index_")
    rows = sorted(index[c] for c in ids if c in index)
    if not rows:
        return 0
    cust_ids = np.array(model.cust_ids_, dtype=object, copy=True)
    n = len(cust_ids)
    for name in _RECOMMENDER_CUSTOMER_LISTS:
        ptr = getattr(model, f"{name}_ptr_", None)
        if ptr is None or len(ptr) != n + 1:
            raise ValueError(f"recommender list '{name}' is not indexed by customer as expected")
        drop = np.zeros(int(ptr[-1]), dtype=bool)
        for r in rows:
            drop[ptr[r]:ptr[r + 1]] = True
        lengths = np.diff(ptr)
        lengths[rows] = 0
        for attr in [a for a in vars(model) if a.startswith(f"{name}_") and a != f"{name}_ptr_"]:
            values = getattr(model, attr)
            if isinstance(values, np.ndarray) and len(values) == len(drop):
                setattr(model, attr, values[~drop])
        setattr(model, f"{name}_ptr_", np.r_[0, np.cumsum(lengths)].astype(ptr.dtype))
    for c in ids:
        index.pop(c, None)
    cust_ids[rows] = ""
    model.cust_ids_ = cust_ids
    return len(rows)


def _recommenders(obj: object) -> list[object]:
    """Fitted recommenders in a pickled object: the object itself or the values of a dict."""
    found = [obj] if hasattr(obj, "cust_index_") else []
    if isinstance(obj, dict):
        found += [v for v in obj.values() if hasattr(v, "cust_index_")]
    return found


def scrub_pickle(path: Path, ids: Collection[str]) -> int:
    """Remove customers from the recommenders pickled in ``path`` (an MLflow model or the refreshed lists).

    Returns how many customers were removed; pickles without a recommender are left alone (0).
    """
    data = path.read_bytes()
    if not any(i.encode(enc) in data for i in ids for enc in ("utf-8", "utf-32-le")):
        return 0  # no id in the file at all (as a str or a numpy unicode array): nothing to unpickle
    obj = pickle.loads(data)
    models = _recommenders(obj)
    try:
        removed = sum(forget_in_recommender(m, ids) for m in models)
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}; retrain with `ecrm train --model recommender --force`, then forget again"
                         ) from exc
    if removed:
        write_bytes_atomic(pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL), path)
    return removed
