"""The skeleton of the synthetic shop: its customers, the times of their orders, the guest orders, the
orders' numbering, and the cut of the shop into blocks. It is drawn for everyone at once because it is
small (a few numbers per customer and per order).

New customers arrive all the time (see :mod:`features.synthetic.clock`); a customer's first order is
their acquisition. Customers are heterogeneous, in the spirit of the BG/NBD model (Fader, Hardie & Lee
2005): while "alive", a customer buys as a Poisson process with a personal rate drawn from a Gamma
distribution; after every purchase they drop out for good with a personal probability drawn from a Beta
distribution (serial returners drop out a little more easily). About 5 % are loyal heavy buyers
(weekly-ish rate, very low drop-out). So there are many one-off buyers, a majority that lapses at some
point, and a core of regulars; nobody says when a customer has lapsed, they simply stop ordering. Only
the orders a customer actually places are drawn, as order statistics. A customer's orders are at least
an hour apart.

The ``customers`` requested are drawn at random from everyone who orders during the period: most were
acquired during it, the rest are the existing base, whose earlier history lies before ``start`` and is
not in the tables (as in a real export). Customer ids are numbered by acquisition (``C000001`` is the
oldest customer). A small share of orders (about 3 %) are guest checkouts without a customer id.
Order ids are invoice-like numbers in chronological order: every order's chronological rank is fixed
here.

The blocks are runs of consecutive customers with about ``block_orders`` orders together, each with
every n-th guest order, so that every block is about as big whatever the customers' ages.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np

from features.synthetic.arrays import _gamma, _group_starts, _lex_order
from features.synthetic.clock import _HOUR, _Clock

# --------------------------------------------------------------------------------------------------
# Knobs of the customers' purchase process
# --------------------------------------------------------------------------------------------------

_HEAVY_SHARE = 0.05  # loyal heavy buyers
_RATE_REGULAR = (0.9, 1 / 27)  # Gamma(shape, mean) purchase rate per shop-day, regular customers
_RATE_HEAVY = (4.0, 1 / 7)  # Gamma(shape, mean) purchase rate, heavy buyers
_DROPOUT_REGULAR = (1.3, 5.0)  # Beta(a, b) drop-out probability after each purchase
_DROPOUT_HEAVY = (1.0, 60.0)
_MAX_RATE = 0.4  # per shop-day
_MIN_ORDER_GAP = _HOUR  # seconds between two orders of one customer
_GUEST_ORDER_SHARE = 0.03
_CANDIDATE_CHUNK = 250_000  # candidate customers whose purchase times are drawn together


@dataclass
class _Candidates:
    """People acquired since the clock's origin, with the traits that decide whether and when they order."""

    first_sec: np.ndarray  # acquisition = first order, seconds since the clock's origin (sorted)
    rate: np.ndarray  # purchases per shop-day while alive
    dropout: np.ndarray  # drop-out probability after each purchase
    returner: np.ndarray  # return propensity multiplier (mean 1)

    def take(self, idx: np.ndarray | slice) -> _Candidates:
        """The candidates at ``idx``."""
        return _Candidates(**{f.name: getattr(self, f.name)[idx] for f in fields(self)})


def _make_candidates(n: int, clock: _Clock, rng: np.random.Generator) -> _Candidates:
    """``n`` people acquired since the origin (in acquisition order) with their purchase traits."""
    first_sec = clock.draw_seconds(rng, n, warmup=True)
    heavy = rng.random(n) < _HEAVY_SHARE
    rate = np.where(heavy, _gamma(rng, *_RATE_HEAVY, n), _gamma(rng, *_RATE_REGULAR, n))
    rate = np.clip(rate, 1e-4, _MAX_RATE)
    dropout = np.where(heavy, rng.beta(*_DROPOUT_HEAVY, n), rng.beta(*_DROPOUT_REGULAR, n))
    returner = rng.gamma(1.0, 1.0, n)
    dropout = np.clip(dropout * (0.75 + 0.25 * returner), 1e-4, 0.95)
    return _Candidates(first_sec, rate, dropout, returner)


def _first_order_statistics(start: np.ndarray, window: np.ndarray, n_uniform: np.ndarray, keep: np.ndarray,
                            rng: np.random.Generator) -> np.ndarray:
    """The ``keep[i]`` smallest of ``n_uniform[i]`` uniform times on ``[start[i], start[i] + window[i]]``,
    for every ``i`` (``keep <= n_uniform``), in order of ``i`` and time, drawing only those: the sorted
    uniforms are the running sums of ``n + 1`` exponential spacings divided by their total, and the
    spacings after the kept ones add up to a Gamma(n - keep + 1) variable."""
    idx = np.repeat(np.arange(len(start)), keep)
    running = np.concatenate([[0.0], np.cumsum(rng.standard_exponential(len(idx)))])
    bounds = np.concatenate([[0], np.cumsum(keep)])
    before = running[bounds[:-1]]
    total = running[bounds[1:]] - before + rng.gamma(n_uniform - keep + 1.0)
    frac = (running[1:] - before[idx]) / total[idx]
    return start[idx] + frac * window[idx]


def _spread_orders(o_cust: np.ndarray, o_sec: np.ndarray, first: np.ndarray, clock: _Clock) -> np.ndarray:
    """Order times moved so that a customer's orders are at least ``_MIN_ORDER_GAP`` apart (rows sorted by
    customer and time; ``first[c]``: row of customer ``c``'s first order):
    ``t'_k = k * gap + max_{j <= k} (t_j - j * gap)``, one running maximum over all customers."""
    rank = np.arange(len(o_cust)) - first[o_cust]
    big = np.int64(clock.last_sec + (int(rank.max(initial=0)) + 1) * _MIN_ORDER_GAP + 1)
    shifted = o_sec - rank * _MIN_ORDER_GAP + o_cust * big
    return np.maximum.accumulate(shifted) - o_cust * big + rank * _MIN_ORDER_GAP


def _purchase_times(cand: _Candidates, clock: _Clock, rng: np.random.Generator
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Order times of candidates: (candidate index, seconds) sorted by candidate and time, plus each
    candidate's drop-out second (-1 while still alive at the end).

    From the acquisition order on, a candidate would buy as a Poisson process until the end; they stop
    for good after a geometric number of repeat purchases. Only the purchases made are drawn."""
    n = len(cand.first_sec)
    a = clock.to_shop_time(cand.first_sec)
    window = np.maximum(clock.cum[-1] - a, 0.0)
    n_poisson = rng.poisson(cand.rate * window)  # purchases if they stayed alive
    allowed = rng.geometric(cand.dropout) - 1  # repeat purchases before dropping out
    dropped = allowed <= n_poisson
    keep = np.minimum(allowed, n_poisson)
    repeat_time = _first_order_statistics(a, window, n_poisson, keep, rng)
    o_cust = np.repeat(np.arange(n), keep + 1)
    first = np.concatenate([[0], np.cumsum(keep + 1)])
    repeat = np.ones(len(o_cust), dtype=bool)
    repeat[first[:-1]] = False
    o_sec = np.empty(len(o_cust), dtype=np.int64)
    o_sec[first[:-1]] = cand.first_sec
    o_sec[repeat] = clock.to_seconds(repeat_time)
    o_sec = _spread_orders(o_cust, o_sec, first, clock)
    inside = o_sec <= clock.last_sec
    o_cust, o_sec = o_cust[inside], o_sec[inside]
    last = o_sec[_group_starts(o_cust, n)[1:] - 1]  # every candidate keeps at least the first order
    return o_cust, o_sec, np.where(dropped, last, -1)


def _orders_in_period(cand: _Candidates, clock: _Clock, rng: np.random.Generator
                      ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`_purchase_times` of the candidates in chunks (bounded memory), keeping the orders placed in
    the period: (candidate index, seconds) sorted by candidate and time, and every drop-out second."""
    custs, secs, drops = [], [], []
    for lo in range(0, len(cand.first_sec), _CANDIDATE_CHUNK):
        o_cust, o_sec, drop_sec = _purchase_times(cand.take(slice(lo, lo + _CANDIDATE_CHUNK)), clock, rng)
        inside = o_sec >= clock.first_sec
        custs.append(o_cust[inside] + lo)
        secs.append(o_sec[inside])
        drops.append(drop_sec)
    return np.concatenate(custs), np.concatenate(secs), np.concatenate(drops)


@dataclass
class _Base:
    """The shop's customers (numbered by acquisition) and the times of their orders in the period."""

    cand: _Candidates
    o_cust: np.ndarray  # customer of each order, sorted by customer and time
    o_sec: np.ndarray
    o_start: np.ndarray  # row of each customer's first order in ``o_cust`` (length n + 1)
    drop_sec: np.ndarray  # drop-out second, -1 while still alive at the end


def _customer_base(n: int, clock: _Clock, rng: np.random.Generator) -> _Base:
    """``n`` customers with an order in the period, drawn at random from everyone acquired since the
    origin, with their orders in the period."""
    n_cand = 2 * n
    while True:
        cand = _make_candidates(n_cand, clock, rng)
        o_cust, o_sec, drop_sec = _orders_in_period(cand, clock, rng)
        eligible = np.flatnonzero(np.bincount(o_cust, minlength=n_cand) > 0)
        if len(eligible) >= n:
            break
        n_cand = int(n_cand * 1.2 * n / max(len(eligible), 1)) + 1
    chosen = np.sort(rng.choice(eligible, n, replace=False))
    new_index = np.full(n_cand, -1, dtype=np.int64)
    new_index[chosen] = np.arange(n)
    keep = new_index[o_cust] >= 0
    o_cust = new_index[o_cust[keep]]
    return _Base(cand.take(chosen), o_cust, o_sec[keep], _group_starts(o_cust, n), drop_sec[chosen])


@dataclass
class _BlockInput:
    """Everything one block needs from the skeleton (small enough to send to a worker process)."""

    index: int
    c0: int  # global index of the block's first customer
    cand: _Candidates  # the block's customers
    o_cust: np.ndarray  # block-local customer of each registered order, sorted by customer and time
    o_sec: np.ndarray
    drop_sec: np.ndarray  # per customer, -1 while still alive at the end
    g_sec: np.ndarray  # the block's guest orders
    order_rank: np.ndarray  # chronological rank of each order of the block: registered ones, then guests
    seed: np.random.SeedSequence


@dataclass
class _Plan:
    """The skeleton of the shop: its customers and all order times, and how the rest is cut in blocks."""

    base: _Base
    g_sec: np.ndarray  # guest order times, sorted
    order_rank: np.ndarray  # chronological rank of every order: the registered ones (as in ``base``), then guests
    blocks: list[tuple[int, int]]  # customer ranges [c0, c1)

    def block_input(self, block: int, seed: np.random.SeedSequence) -> _BlockInput:
        """The skeleton of ``block``: its customers, their orders and every n-th guest order."""
        c0, c1 = self.blocks[block]
        o0, o1 = self.base.o_start[c0], self.base.o_start[c1]
        guests = np.arange(block, len(self.g_sec), len(self.blocks))
        rank = self.order_rank[np.concatenate([np.arange(o0, o1), len(self.base.o_cust) + guests])]
        return _BlockInput(block, c0, self.base.cand.take(slice(c0, c1)), self.base.o_cust[o0:o1] - c0,
                           self.base.o_sec[o0:o1], self.base.drop_sec[c0:c1], self.g_sec[guests], rank, seed)


def _make_plan(n: int, clock: _Clock, block_orders: int, rng: np.random.Generator) -> _Plan:
    """Customers, order times, guest order times and each order's chronological rank (ties: registered
    orders by customer, then guests), and blocks of consecutive customers with about ``block_orders``
    orders each."""
    base = _customer_base(n, clock, rng)
    g_sec = clock.draw_seconds(rng, int(round(_GUEST_ORDER_SHARE * len(base.o_cust))))
    all_sec = np.concatenate([base.o_sec, g_sec])
    order_rank = np.empty(len(all_sec), dtype=np.int64)
    order_rank[_lex_order([all_sec])] = np.arange(len(all_sec))
    cuts = np.searchsorted(base.o_start, np.arange(block_orders, len(base.o_cust), block_orders))
    bounds = np.unique(np.concatenate([[0], cuts, [n]])).tolist()
    blocks = list(zip(bounds[:-1], bounds[1:]))
    return _Plan(base, g_sec, order_rank, blocks)
