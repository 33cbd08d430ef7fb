"""The blocks of the synthetic shop, generated and spilled.

Each block (consecutive customers with about as many orders as any other, and a share of the guest
orders; see :mod:`features.synthetic.skeleton`) gets its customers' baskets, taste, order lines,
returns and sessions from its own random stream, so blocks can be generated in parallel worker
processes and the shop does not depend on their number. Each block's rows are spilled to a scratch
folder (:mod:`features.synthetic.spill`); what the merge needs besides (first events, countries, and
the sessions' ranks by their first event) is kept in memory.
"""

from __future__ import annotations

import collections
import functools
import multiprocessing
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Executor, Future, ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import numpy as np

from features.synthetic.arrays import _lex_order
from features.synthetic.block_orders import _block_customers, _block_orders
from features.synthetic.block_sessions import _first_seen, _sessions
from features.synthetic.catalog import _Catalog
from features.synthetic.clock import _Clock
from features.synthetic.skeleton import _BlockInput, _Plan
from features.synthetic.spill import _spill_block, _SpilledTable

_T = TypeVar("_T")
_R = TypeVar("_R")


@dataclass
class _BlockOutput:
    """What a block leaves besides its spilled rows."""

    order_days: np.ndarray  # row offset of every day edge in the block's spilled order lines
    session_days: np.ndarray  # the same for its session events
    first_seen: np.ndarray  # per customer, seconds
    country: np.ndarray  # per customer, index into _COUNTRIES
    session_start: np.ndarray  # per session (block-local creation order), seconds
    message: str  # progress line


def _run_block(inp: _BlockInput, catalog: _Catalog, clock: _Clock, folder: Path) -> _BlockOutput:
    """Generate one block from its own random streams and spill its rows to ``folder``."""
    rng_customers, rng_orders, rng_sessions = (np.random.default_rng(s) for s in inp.seed.spawn(3))
    n = len(inp.cand.first_sec)
    cust = _block_customers(inp.cand, catalog, rng_customers)
    orders = _block_orders(inp, cust, catalog, clock, rng_orders)
    sessions = _sessions(cust, catalog, clock, orders, inp.drop_sec, rng_sessions)
    order_days = _spill_block(folder, "orders", inp.index, orders.rows, clock)
    session_customer = np.where(sessions.customer >= 0, sessions.customer + inp.c0, -1)
    session_days = _spill_block(folder, "sessions", inp.index, {
        "session": sessions.session, "customer": session_customer[sessions.session], "kind": sessions.kind,
        "product": sessions.product, "sec": sessions.sec}, clock)
    message = (f"customers {inp.c0 + 1:,}-{inp.c0 + n:,}: {len(orders.rows['sec']):,} order lines "
               f"({int(orders.rows['is_return'].sum()):,} returns), {len(sessions.sec):,} session events")
    return _BlockOutput(order_days, session_days, _first_seen(sessions, orders, n), cust.country,
                        sessions.start, message)


def _bounded_map(pool: Executor | None, fn: Callable[[_T], _R], items: Iterable[_T], ahead: int) -> Iterator[_R]:
    """``map(fn, items)`` in order, on ``pool`` (in this thread if None) with at most ``ahead`` items
    submitted and not yet consumed, so that memory stays bounded."""
    if pool is None:
        yield from map(fn, items)
        return
    pending: collections.deque[Future[_R]] = collections.deque()
    for item in items:
        pending.append(pool.submit(fn, item))
        if len(pending) >= ahead:
            yield pending.popleft().result()
    while pending:
        yield pending.popleft().result()


def _block_pool(workers: int, n_blocks: int) -> ProcessPoolExecutor | None:
    """Worker processes for the blocks, when they pay off: several workers allowed, at least two blocks
    per worker (starting a worker costs its imports), and this process may have children."""
    if workers < 2 or n_blocks < 2 * workers or multiprocessing.current_process().daemon:
        return None
    return ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"))


@dataclass
class _Generated:
    """What the blocks produced: the spilled orders and sessions, and the per-customer and per-session
    values the merge needs."""

    orders: _SpilledTable
    sessions: _SpilledTable
    first_seen: np.ndarray  # per customer, seconds
    country: np.ndarray  # per customer, index into _COUNTRIES
    session_rank: np.ndarray  # per session (blocks in order, each in creation order): rank by first event
    session_offset: np.ndarray  # per block: its first session in ``session_rank``


def _session_ranks(start: np.ndarray) -> np.ndarray:
    """Every session's rank by its first event (ties: creation order, i.e. block by block)."""
    dtype = np.int32 if len(start) < 2 ** 31 else np.int64
    rank = np.empty(len(start), dtype=dtype)
    rank[_lex_order([start])] = np.arange(len(start), dtype=dtype)
    return rank


def _generate_blocks(plan: _Plan, catalog: _Catalog, clock: _Clock, seeds: np.random.SeedSequence,
                     folder: Path, workers: int, say: Callable[[str], None]) -> _Generated:
    """Generate every block (in up to ``workers`` processes; the result does not depend on it) and spill
    its rows to ``folder``."""
    n_blocks = len(plan.blocks)
    inputs = (plan.block_input(b, seq) for b, seq in enumerate(seeds.spawn(n_blocks)))
    run = functools.partial(_run_block, catalog=catalog, clock=clock, folder=folder)
    outputs: list[_BlockOutput] = []
    pool = _block_pool(workers, n_blocks)
    try:
        for out in _bounded_map(pool, run, inputs, 2 * workers):
            outputs.append(out)
            say(f"block {len(outputs)}/{n_blocks}: {out.message}")
    finally:
        if pool is not None:
            pool.shutdown(cancel_futures=True)
    n_sessions = np.array([len(o.session_start) for o in outputs])
    say(f"sessions: numbering {int(n_sessions.sum()):,} sessions by their first event")
    return _Generated(
        _SpilledTable(folder, "orders", [o.order_days for o in outputs]),
        _SpilledTable(folder, "sessions", [o.session_days for o in outputs]),
        np.concatenate([o.first_seen for o in outputs]), np.concatenate([o.country for o in outputs]),
        _session_ranks(np.concatenate([o.session_start for o in outputs])),
        np.concatenate([[0], np.cumsum(n_sessions)[:-1]]).astype(np.int64))
