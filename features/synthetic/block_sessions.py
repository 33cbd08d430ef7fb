"""The browsing sessions of one block of the synthetic shop: events (view, add_to_cart, search,
purchase) consistent with the block's orders.

* every order is preceded by its own session: views of every purchased product each followed by an
  add_to_cart, some extra product views (and now and then a cart that is abandoned), some searches
  (``product_id`` null), and one ``purchase`` event (``product_id`` null) at exactly the order's
  ``ordered_at``; events are seconds to minutes apart;
* customers also have sessions that do not convert (views, searches, some abandoned carts), at a rate
  tied to their purchase rate, from their acquisition (or ``start``) until the end of the period, or,
  for customers who dropped out, until a few weeks after their last order (interest fades);
* guests (``customer_id`` null) browse too, and guest orders have guest sessions.

So: the number of ``purchase`` events equals the number of sale orders (guest ones included), and
``customers.first_seen`` is each customer's first event in the tables (their first session, which
precedes their first order in the period).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from features.synthetic.arrays import _group_starts, _lex_order, _sample_rows
from features.synthetic.block_orders import _BlockOrders, _Customers
from features.synthetic.catalog import _Catalog
from features.synthetic.clock import _DAY, _Clock

# --------------------------------------------------------------------------------------------------
# Knobs of the browsing
# --------------------------------------------------------------------------------------------------

_BROWSE_BASE_RATE = 1 / 120  # extra non-converting sessions per shop-day for every live customer
_BROWSE_TAIL_DAYS = 45.0  # mean browsing tail after a customer's last order, if they dropped out
_GUEST_SESSION_SHARE = 0.3  # guest non-converting sessions per registered session
_EVENT_GAP = (3, 40.0, 900)  # min seconds, mean extra (exponential), max seconds between events


def _session_events(anchor: np.ndarray, converting: np.ndarray, p_sess: np.ndarray, p_prod: np.ndarray,
                    p_cart: np.ndarray, s_sess: np.ndarray, clock: _Clock, rng: np.random.Generator
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Lay out the events of every session in time.

    ``p_*``: product rows (session, product, carted); ``s_sess``: search rows. A converting session
    ends with its purchase event at ``anchor``; other sessions start at ``anchor``. Inside a session the
    events come in random order, each add_to_cart right after its view, the purchase last.
    Returns (session, event kind 0 view / 1 add_to_cart / 2 purchase / 3 search, product or -1, second),
    sorted by session and time.
    """
    n_p, n_s = len(p_sess), len(s_sess)
    conv_idx = np.flatnonzero(converting)
    cart = np.flatnonzero(p_cart)
    sess = np.concatenate([p_sess, p_sess[cart], s_sess, conv_idx])
    kind = np.concatenate([np.zeros(n_p, np.int8), np.ones(len(cart), np.int8),
                           np.full(n_s, 3, np.int8), np.full(len(conv_idx), 2, np.int8)])
    prod = np.concatenate([p_prod, p_prod[cart], np.full(n_s + len(conv_idx), -1, np.int64)])
    # random keys (as many bits as fit beside the session and row numbers in one int64), doubled so
    # that a cart is its view's key + 1; the purchase gets the largest key
    bits = max(8, min(30, 61 - len(anchor).bit_length() - len(sess).bit_length()))
    p_key = rng.integers(0, 1 << bits, n_p) << 1
    key = np.concatenate([p_key, p_key[cart] + 1, rng.integers(0, 1 << bits, n_s) << 1,
                          np.full(len(conv_idx), 1 << (bits + 1))])
    srt = _lex_order([sess, key])
    sess, kind, prod = sess[srt], kind[srt], prod[srt]
    lo, mean, hi = _EVENT_GAP
    gaps = np.minimum(lo + np.round(rng.exponential(mean, len(sess))), hi).astype(np.int64)
    n_sess = len(anchor)
    starts = _group_starts(sess, n_sess)
    gaps[starts[:-1][starts[:-1] < len(sess)]] = 0  # first event of each session
    cs = np.cumsum(gaps)
    offset = cs - cs[starts[:-1][sess]]
    last_offset = offset[np.maximum(starts[1:] - 1, 0)]
    sec = anchor[sess] + offset - np.where(converting, last_offset, 0)[sess]
    return sess, kind, prod, np.clip(sec, clock.first_sec, clock.last_sec)


@dataclass
class _BlockSessions:
    """The browsing events of one block, by session (numbered in creation order) and time."""

    session: np.ndarray  # block-local session of each event
    kind: np.ndarray  # 0 view, 1 add_to_cart, 2 purchase, 3 search
    product: np.ndarray  # product or -1
    sec: np.ndarray
    customer: np.ndarray  # block-local customer of each session, -1 for guests
    start: np.ndarray  # first event second of each session


def _sessions(cust: _Customers, catalog: _Catalog, clock: _Clock, orders: _BlockOrders, drop_sec: np.ndarray,
              rng: np.random.Generator) -> _BlockSessions:
    """All browsing events of a block's customers and guests: one converting session per order (in
    order index), then non-converting customer sessions, then guest sessions."""
    n = len(cust.first_sec)
    n_cat = len(catalog.cats)
    o_cust, o_sec, g_sec = orders.o_cust, orders.o_sec, orders.g_sec
    n_orders = len(o_cust) + len(g_sec)
    order_cust = np.concatenate([o_cust, np.full(len(g_sec), -1, np.int64)])

    # Non-converting customer sessions, from acquisition to the end (or a fading tail after dropping out).
    a = clock.to_shop_time(np.maximum(cust.first_sec, clock.first_sec))
    tail = np.round(rng.exponential(_BROWSE_TAIL_DAYS * _DAY, n)).astype(np.int64)
    end_sec = np.where(drop_sec >= 0, np.minimum(drop_sec + tail, clock.last_sec), clock.last_sec)
    b = clock.to_shop_time(end_sec)
    n_browse = rng.poisson((cust.rate * cust.browse + _BROWSE_BASE_RATE) * np.maximum(b - a, 0.0))
    bc = np.repeat(np.arange(n), n_browse)
    b_sec = clock.to_seconds(a[bc] + rng.random(len(bc)) * (b - a)[bc])
    # Guest sessions.
    n_guest = int(round(_GUEST_SESSION_SHARE * (len(o_cust) + len(bc))))
    gs_sec = clock.draw_seconds(rng, n_guest)

    n_nc = len(bc) + n_guest
    nc_cust = np.concatenate([bc, np.full(n_guest, -1, np.int64)])
    anchor = np.concatenate([o_sec, g_sec, b_sec, gs_sec]).astype(np.int64)
    s_cust = np.concatenate([order_cust, nc_cust])
    converting = np.arange(n_orders + n_nc) < n_orders

    # Product rows: purchased lines (carted), extra views in converting sessions, views in browsing ones.
    n_extra = np.concatenate([rng.poisson(1.0, n_orders), 1 + rng.poisson(2.0, n_nc)])
    x_sess = np.repeat(np.arange(n_orders + n_nc), n_extra)
    x_cust = s_cust[x_sess]
    x_cat = np.empty(len(x_sess), dtype=np.int64)
    reg = x_cust >= 0
    x_cat[reg] = _sample_rows(rng, cust.taste_cum, x_cust[reg])
    x_cat[~reg] = rng.choice(n_cat, int((~reg).sum()), p=catalog.cat_weight)
    x_prod = catalog.sample(rng, x_cat)
    x_cart = rng.random(len(x_sess)) < np.where(converting[x_sess], 0.05, 0.12)  # abandoned carts
    p_sess = np.concatenate([orders.line_order, x_sess])
    p_prod = np.concatenate([orders.line_prod, x_prod])
    p_cart = np.concatenate([np.ones(len(orders.line_order), bool), x_cart])
    n_search = rng.poisson(np.where(converting, 0.6, 0.8))
    s_sess = np.repeat(np.arange(len(anchor)), n_search)

    sess, kind, prod, sec = _session_events(anchor, converting, p_sess, p_prod, p_cart, s_sess, clock, rng)
    start = sec[_group_starts(sess, len(anchor))[:-1]]  # every session has at least one event
    return _BlockSessions(sess, kind, prod, sec, s_cust, start)


def _first_seen(sessions: _BlockSessions, orders: _BlockOrders, n: int) -> np.ndarray:
    """Each block customer's first event: the start of their first session (the session of the first
    order starts no later than that order)."""
    first = np.full(n, np.iinfo(np.int64).max)
    reg = sessions.customer >= 0
    np.minimum.at(first, sessions.customer[reg], sessions.start[reg])
    return np.minimum(first, orders.o_sec[_group_starts(orders.o_cust, n)[:-1]])
