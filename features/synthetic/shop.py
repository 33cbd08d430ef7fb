"""The synthetic shop put together: :func:`generate_shop` streams it to a sink, :func:`synthesize_shop`
returns it in memory (see :mod:`features.synthetic` for the story and the parts)."""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from features.schema import TABLES, conform
from features.synthetic.blocks import _generate_blocks
from features.synthetic.catalog import _make_catalog
from features.synthetic.clock import _Clock
from features.synthetic.skeleton import _make_plan
from features.synthetic.tables import TableSink, _hand_over

_BLOCK_ORDERS = 150_000  # orders of the customers generated together; the shop depends on it


def _utc(value: str) -> pd.Timestamp:
    """A timestamp in UTC (naive means UTC)."""
    ts = pd.Timestamp(value)
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


def _period(customers: int, products: int, start: str, end: str, block_orders: int
            ) -> tuple[pd.Timestamp, pd.Timestamp]:
    """Check the arguments; the period's bounds in UTC."""
    if customers <= 0 or products <= 0:
        raise ValueError(f"customers ({customers}) and products ({products}) must be positive")
    if block_orders <= 0:
        raise ValueError(f"block_orders ({block_orders}) must be positive")
    t0, t1 = _utc(start), _utc(end)
    if t1 - t0 < pd.Timedelta(days=1):
        raise ValueError(f"the period [{start}, {end}) must span at least one day")
    return t0, t1


def generate_shop(sink: TableSink, customers: int = 20_000, products: int = 1_000, seed: int = 42,
                  start: str = "2022-01-01", end: str = "2024-01-01",
                  progress: Callable[[str], None] | None = None, *, scratch_dir: Path | None = None,
                  workers: int = 1, block_orders: int = _BLOCK_ORDERS) -> dict[str, int]:
    """Generate the synthetic shop and hand it to ``sink(name, table)`` in Arrow tables: ``products``,
    then ``orders`` and ``sessions`` in time order (one table per time window of about
    :data:`~features.synthetic.tables._ROW_GROUP_ROWS` rows), then ``customers``. Returns the row count
    of every table.

    Deterministic for given arguments, whatever ``workers`` (processes for the blocks and threads for
    the merge; 1 = this thread only); ``block_orders`` is part of the shop's definition (keep the
    default). ``start``/``end`` are parsed by pandas (naive means UTC); all timestamps fall in
    ``[start, end)``. The blocks are spilled to a temporary folder in ``scratch_dir`` (default: the
    system's) and removed at the end: 41 bytes per order line and 21 per session event, about 4.5 GB
    for a million customers. ``progress`` receives a short message per step and per block.
    """
    t0, t1 = _period(customers, products, start, end, block_orders)
    say = progress or (lambda _msg: None)
    workers = max(1, int(workers))
    catalog_seq, base_seq, block_seq = np.random.SeedSequence([int(seed < 0), abs(int(seed))]).spawn(3)
    clock = _Clock(t0, t1)

    say(f"catalog: {products:,} products")
    catalog = _make_catalog(products, np.random.default_rng(catalog_seq))
    say(f"customers: {customers:,} and their purchase process")
    plan = _make_plan(customers, clock, block_orders, np.random.default_rng(base_seq))
    say(f"orders: {len(plan.order_rank):,} orders; baskets, returns and sessions in {len(plan.blocks)} "
        f"block(s) of about {block_orders:,} orders")
    with tempfile.TemporaryDirectory(prefix=".synthetic-", dir=scratch_dir) as folder:
        generated = _generate_blocks(plan, catalog, clock, block_seq, Path(folder), workers, say)
        n_orders = len(plan.order_rank)
        del plan  # the skeleton is not needed any more
        n_lines, n_events = _hand_over(sink, generated, catalog, clock, n_orders, workers, say)
    say(f"done: {n_lines:,} order lines, {n_events:,} session events")
    return {"orders": n_lines, "customers": customers, "products": products, "sessions": n_events}


def synthesize_shop(customers: int = 20_000, products: int = 1_000, seed: int = 42,
                    start: str = "2022-01-01", end: str = "2024-01-01",
                    progress: Callable[[str], None] | None = None, *, workers: int = 1,
                    block_orders: int = _BLOCK_ORDERS) -> dict[str, pd.DataFrame]:
    """Generate the synthetic shop in memory: ``{"orders", "customers", "products", "sessions"}``
    canonical tables, the same rows :func:`generate_shop` streams (for small shops: tests, notebooks;
    ``ecrm data synthesize`` streams them to parquet instead).

    Deterministic for given arguments. ``start``/``end`` are parsed by pandas (naive means UTC); all
    timestamps fall in ``[start, end)``. ``progress`` receives a short message per step.
    """
    chunks: dict[str, list[pa.Table]] = {name: [] for name in ("orders", "customers", "products", "sessions")}
    generate_shop(lambda name, table: chunks[name].append(table), customers, products, seed, start, end,
                  progress, workers=workers, block_orders=block_orders)
    return {name: conform(pa.concat_tables(parts).to_pandas(), TABLES[name], source="synthetic shop")
            for name, parts in chunks.items()}
