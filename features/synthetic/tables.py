"""The merge of the synthetic shop: its canonical tables, handed to a sink.

The sessions are numbered by their first event (see :mod:`features.synthetic.blocks`), then the
``orders`` and ``sessions`` tables are read back one time window at a time from all spilled blocks,
sorted and handed over as Arrow tables (one parquet row group each) with the schema pandas writes for
the conformed tables; ids and names become strings only here, every label formatted once.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa

from features.schema import EVENT_TYPES, TABLES, conform
from features.synthetic.arrays import _lex_order
from features.synthetic.block_orders import _COUNTRIES
from features.synthetic.blocks import _bounded_map, _Generated
from features.synthetic.catalog import _Catalog
from features.synthetic.clock import _Clock
from features.synthetic.spill import _SpilledTable

_ROW_GROUP_ROWS = 1_000_000  # rows per written chunk (parquet row group), about: whole days are kept together

TableSink = Callable[[str, pa.Table], None]
"""Receives the shop chunk by chunk: ``sink(table_name, arrow_table)``."""


# --------------------------------------------------------------------------------------------------
# Ids
# --------------------------------------------------------------------------------------------------


def _format_ids(prefix: str, numbers: np.ndarray, width: int) -> pa.StringArray:
    """``prefix`` + each non-negative number zero-padded to ``width`` digits (to the largest number's
    digits if it has more), as an Arrow string array built digit by digit in numpy: no Python string
    per row."""
    numbers = np.asarray(numbers, dtype=np.int64)
    if len(numbers):
        width = max(width, len(str(int(numbers.max()))))
    head = np.frombuffer(prefix.encode("ascii"), dtype=np.uint8)
    size = len(head) + width
    chars = np.empty((len(numbers), size), dtype=np.uint8)
    chars[:, :len(head)] = head
    rest = numbers.astype(np.uint32 if len(numbers) == 0 or numbers.max() < 2 ** 32 else np.uint64)
    for pos in range(size - 1, len(head) - 1, -1):  # one pass per digit position
        chars[:, pos] = rest % 10 + ord("0")
        rest //= 10
    offsets = np.arange(len(numbers) + 1, dtype=np.int32) * size
    return pa.StringArray.from_buffers(len(numbers), pa.py_buffer(offsets), pa.py_buffer(chars))


def _id_labels(prefix: str, numbers: np.ndarray, width: int) -> tuple[pa.StringArray, np.ndarray]:
    """Ids for ``numbers`` as (labels, position of each number's label): every number of their
    ``[min, max]`` range formatted once when that range is no longer than the column (ids of one time
    window are nearly consecutive), else one label per row."""
    if len(numbers) == 0:
        return _format_ids(prefix, numbers, width), np.zeros(0, dtype=np.int64)
    lo, hi = int(numbers.min()), int(numbers.max())
    if hi - lo + 1 <= len(numbers):
        return _format_ids(prefix, np.arange(lo, hi + 1), width), numbers - lo
    return _format_ids(prefix, numbers, width), np.arange(len(numbers))


def _id_column(prefix: str, numbers: np.ndarray, width: int) -> pa.Array:
    """The string id column ``prefix`` + zero-padded ``numbers``."""
    labels, index = _id_labels(prefix, numbers, width)
    return labels.take(pa.array(index))


def _lookup(labels: pa.Array, codes: np.ndarray) -> pa.Array:
    """``labels[codes]`` as an Arrow column, null where the code is -1."""
    return labels.take(pa.array(codes, mask=codes < 0))


# --------------------------------------------------------------------------------------------------
# The tables
# --------------------------------------------------------------------------------------------------


@functools.cache
def _schema(name: str) -> pa.Schema:
    """The Arrow schema pandas writes for the conformed canonical table ``name`` (string ids, float64,
    bool, ``timestamp[us, UTC]``, pandas metadata), so that the streamed tables read back exactly like
    the ones :func:`features.storage.write_tables` writes."""
    table = TABLES[name]
    empty = conform(pd.DataFrame({c: pd.Series([], dtype=object) for c in table.column_names}), table)
    return pa.Schema.from_pandas(empty, preserve_index=False)


@dataclass
class _Labels:
    """Ids and names that are looked up by index, formatted once."""

    customers: pa.StringArray  # "C000001", ... by acquisition
    products: pa.StringArray  # "P00001", ...
    countries: pa.StringArray
    event_types: pa.StringArray
    order_base: int  # an order's id is order_base + its chronological rank
    session_width: int  # digits of a session id


def _make_labels(n_customers: int, n_products: int, n_orders: int, n_sessions: int) -> _Labels:
    """The labels of a shop of this size."""
    return _Labels(
        customers=_format_ids("C", np.arange(1, n_customers + 1), 6),
        products=_format_ids("P", np.arange(1, n_products + 1), 5),
        countries=pa.array([c for c, _ in _COUNTRIES], pa.string()),
        event_types=pa.array(list(EVENT_TYPES), pa.string()),
        order_base=10 ** max(6, len(str(n_orders))),
        session_width=max(8, len(str(n_sessions))),
    )


def _order_ids(numbers: np.ndarray, is_return: np.ndarray) -> pa.Array:
    """Order ids: the number on a sale line, ``"R"`` + the number on a return line."""
    index = np.empty(len(numbers), dtype=np.int64)
    parts, offset = [], 0
    for prefix, mask in (("", ~is_return), ("R", is_return)):
        labels, idx = _id_labels(prefix, numbers[mask], 1)
        index[mask] = idx + offset
        parts.append(labels)
        offset += len(labels)
    return pa.concat_arrays(parts).take(pa.array(index))


def _orders_table(rows: dict[str, np.ndarray], labels: _Labels, clock: _Clock) -> pa.Table:
    """Order lines (columns of :data:`~features.synthetic.spill._ORDER_COLUMNS`) as the ``orders`` table:
    by time, sales before returns, then order and product (a block spills the lines of an order by
    product, and the sort keeps that order)."""
    srt = _lex_order([rows["sec"], rows["is_return"].view(np.int8), rows["rank"]])
    r = {c: v[srt] for c, v in rows.items()}
    return pa.Table.from_arrays([
        _order_ids(r["rank"] + labels.order_base, r["is_return"]),
        _lookup(labels.customers, r["customer"]),
        _lookup(labels.products, r["product"]),
        pa.array(r["quantity"]),
        pa.array(r["unit_price"]),
        pa.array(np.round(r["quantity"] * r["unit_price"], 2)),
        clock.timestamps(r["sec"]),
        pa.array(r["is_return"]),
    ], schema=_schema("orders"))


def _sessions_table(rows: dict[str, np.ndarray], block: np.ndarray, generated: _Generated, labels: _Labels,
                    clock: _Clock) -> pa.Table:
    """Session events (columns of :data:`~features.synthetic.spill._SESSION_COLUMNS`, from blocks
    ``block``) as the ``sessions`` table: by time, then session id; the events of a session in the same
    second keep their order."""
    rank = generated.session_rank[generated.session_offset[block] + rows["session"]].astype(np.int64)
    srt = _lex_order([rows["sec"], rank])
    return pa.Table.from_arrays([
        _id_column("S", rank[srt] + 1, labels.session_width),
        _lookup(labels.customers, rows["customer"][srt]),
        clock.timestamps(rows["sec"][srt]),
        labels.event_types.take(pa.array(rows["kind"][srt])),
        _lookup(labels.products, rows["product"][srt]),
    ], schema=_schema("sessions"))


def _customers_table(generated: _Generated, labels: _Labels, clock: _Clock) -> pa.Table:
    """The ``customers`` table: id, first event, country."""
    return pa.Table.from_arrays([
        labels.customers,
        clock.timestamps(generated.first_seen),
        labels.countries.take(pa.array(generated.country)),
    ], schema=_schema("customers"))


def _products_table(catalog: _Catalog, labels: _Labels) -> pa.Table:
    """The ``products`` table: id, name, category, list price."""
    categories = pa.array([c.name for c in catalog.cats], pa.string())
    return pa.Table.from_arrays([
        labels.products,
        pa.array(catalog.names, pa.string()),
        categories.take(pa.array(catalog.product_cat)),
        pa.array(catalog.price),
    ], schema=_schema("products"))


def _emit_windows(sink: TableSink, name: str, spilled: _SpilledTable,
                  build: Callable[[dict[str, np.ndarray], np.ndarray], pa.Table], workers: int,
                  say: Callable[[str], None]) -> int:
    """Read ``spilled`` back one time window at a time, build each window's table (in up to ``workers``
    threads, while this one hands the finished ones to ``sink`` in order)."""
    windows = spilled.windows(_ROW_GROUP_ROWS)
    say(f"{name}: writing {spilled.rows:,} rows in time order ({len(windows)} row group(s))")
    pool = ThreadPoolExecutor(max_workers=workers) if workers > 1 and len(windows) > 1 else None
    try:
        for table in _bounded_map(pool, lambda window: build(*spilled.read(*window)), windows, workers):
            sink(name, table)
    finally:
        if pool is not None:
            pool.shutdown(cancel_futures=True)
    return spilled.rows


def _hand_over(sink: TableSink, generated: _Generated, catalog: _Catalog, clock: _Clock, n_orders: int,
               workers: int, say: Callable[[str], None]) -> tuple[int, int]:
    """Hand the tables to ``sink``: products, orders and sessions window by window, customers. Returns
    the numbers of order lines and session events."""
    labels = _make_labels(len(generated.first_seen), len(catalog.price), n_orders, len(generated.session_rank))

    def orders(rows: dict[str, np.ndarray], _block: np.ndarray) -> pa.Table:
        return _orders_table(rows, labels, clock)

    def sessions(rows: dict[str, np.ndarray], block: np.ndarray) -> pa.Table:
        return _sessions_table(rows, block, generated, labels, clock)

    sink("products", _products_table(catalog, labels))
    n_lines = _emit_windows(sink, "orders", generated.orders, orders, workers, say)
    n_events = _emit_windows(sink, "sessions", generated.sessions, sessions, workers, say)
    sink("customers", _customers_table(generated, labels, clock))
    return n_lines, n_events
