"""The orders of one block of the synthetic shop: its customers' traits, their order lines, prices and
returns (and the block's share of the guest orders).

**Customers.** Besides the purchase traits of the skeleton, each customer has a country (a few,
skewed), a category taste (a Dirichlet mixture concentrated on a few categories) and a typical basket
size.

**Orders.** Each order has several lines:

* *staples*: every customer has a few favourite consumable products and re-buys each one when it is
  about due (its personal repurchase interval has passed), so item-level repeat purchases have a
  realistic rhythm;
* *discovery lines*: a Poisson number of products drawn from the customer's category taste and the
  products' popularity;
* *complements*: a discovery line often brings its complementary product into the basket.

Quantities are mostly one (consumables more often several). Prices are the list price, with
discounts during the sales and an occasional coupon. A customer rarely buys the same durable
product twice.

**Returns.** Each sale line of a registered customer may be returned (clothing and shoes most often,
groceries hardly ever; some customers return much more than others), fully or partly, a few days to
weeks later, as a separate line with ``is_return=True``, negative quantity and amount, the same unit
price, and order id ``"R"`` + the sale's order id; the returned lines of one order go back together.
Returns falling after the end of the period are not recorded. Guest orders are never returned.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from features.synthetic.arrays import _gamma, _group_starts, _lex_order, _sample_rows
from features.synthetic.catalog import _Catalog
from features.synthetic.clock import _DAY, _Clock
from features.synthetic.skeleton import _BlockInput, _Candidates

# --------------------------------------------------------------------------------------------------
# Knobs of the customers' traits, baskets and returns
# --------------------------------------------------------------------------------------------------

_BASKET = (2.0, 3.2)  # Gamma(shape, mean) of the per-customer mean number of discovery lines
_TASTE_CONCENTRATION = 2.5  # Dirichlet concentration of a customer's category taste (smaller = pickier)
_TASTE_GLOBAL_SHARE = 0.15  # share of a customer's taste that is the shop-wide category mix
_BROWSE_PER_ORDER = (2.0, 0.6)  # Gamma(shape, scale): non-converting sessions per expected order
_STAPLES_PER_CONSUMABLE_TASTE = 3.0  # mean staples = this x the taste's consumable share
_STAPLE_SKIP = 0.1  # chance a due staple is not in the order (bought elsewhere)
_COMPLEMENT_PROB = 0.35  # chance a discovery line brings its complement
_DURABLE_REPEAT = 0.1  # chance a customer's repeat purchase of a durable product is let through
_PROMO_TAKE_UP = 0.45  # share of lines discounted during sales
_COUPON_PROB = 0.04
_RETURN_DELAY = (2.0, 5.0)  # Gamma(shape, scale) days, plus 1.5 days

_COUNTRIES = (
    ("United Kingdom", 0.42), ("Germany", 0.16), ("France", 0.11), ("Netherlands", 0.07), ("Spain", 0.06),
    ("Italy", 0.05), ("Ireland", 0.04), ("Belgium", 0.03), ("Sweden", 0.03), ("Poland", 0.03),
)


# --------------------------------------------------------------------------------------------------
# A block's customers: baskets, taste, country
# --------------------------------------------------------------------------------------------------


@dataclass
class _Customers:
    """The customers of one block: purchase traits from the skeleton, the rest drawn with the block."""

    first_sec: np.ndarray  # acquisition, seconds since the clock's origin
    rate: np.ndarray  # purchases per shop-day while alive
    returner: np.ndarray  # return propensity multiplier (mean 1)
    basket: np.ndarray  # mean discovery lines per order
    browse: np.ndarray  # non-converting sessions per expected order
    taste: np.ndarray  # (N, C) category taste
    taste_cum: np.ndarray  # (N, C) cumulative category taste
    country: np.ndarray  # index into _COUNTRIES


def _block_customers(cand: _Candidates, catalog: _Catalog, rng: np.random.Generator) -> _Customers:
    """Basket size, browsing, category taste (a Dirichlet mixed with the shop-wide mix) and country of
    the candidates ``cand``."""
    n = len(cand.first_sec)
    basket = _gamma(rng, *_BASKET, n)
    browse = rng.gamma(*_BROWSE_PER_ORDER, n)
    n_cat = len(catalog.cats)
    dirichlet = rng.gamma(_TASTE_CONCENTRATION * catalog.cat_weight, 1.0, (n, n_cat)) + 1e-12
    dirichlet /= dirichlet.sum(axis=1, keepdims=True)
    taste = _TASTE_GLOBAL_SHARE * catalog.cat_weight + (1 - _TASTE_GLOBAL_SHARE) * dirichlet
    taste_cum = np.cumsum(taste, axis=1)
    taste_cum /= taste_cum[:, -1:]
    probs = np.array([w for _, w in _COUNTRIES])
    country = rng.choice(len(_COUNTRIES), n, p=probs / probs.sum()).astype(np.int8)
    return _Customers(cand.first_sec, cand.rate, cand.returner, basket, browse, taste, taste_cum, country)


# --------------------------------------------------------------------------------------------------
# Order lines, prices, returns
# --------------------------------------------------------------------------------------------------


def _staple_lines(cust: _Customers, catalog: _Catalog, o_cust: np.ndarray, o_sec: np.ndarray,
                  rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(order index, product) of staple re-purchases: each staple is re-bought once it is due."""
    n = len(cust.first_sec)
    consumable = np.array([c.repurchase_days > 0 for c in catalog.cats])
    if not consumable.any() or len(o_cust) == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    cons_taste = cust.taste * consumable
    share = cons_taste.sum(axis=1)
    n_staples = np.minimum(rng.poisson(_STAPLES_PER_CONSUMABLE_TASTE * share), 6)
    pair_cust = np.repeat(np.arange(n), n_staples)
    cons_cum = np.cumsum(cons_taste, axis=1)
    cons_cum /= cons_cum[:, -1:]
    pair_prod = catalog.sample(rng, _sample_rows(rng, cons_cum, pair_cust))
    key = np.unique(pair_cust.astype(np.int64) * len(catalog.price) + pair_prod)
    pair_cust, pair_prod = key // len(catalog.price), key % len(catalog.price)
    days = np.array([c.repurchase_days for c in catalog.cats])[catalog.product_cat[pair_prod]]
    interval = days * _DAY * rng.lognormal(0.0, 0.25, len(pair_prod))

    n_orders = np.bincount(o_cust, minlength=n)
    o_start = _group_starts(o_cust, n)
    srt = np.argsort(-n_orders[pair_cust], kind="stable")  # pairs of the busiest customers first
    pair_cust, pair_prod, interval = pair_cust[srt], pair_prod[srt], interval[srt]
    neg_count = -n_orders[pair_cust]
    first = o_start[pair_cust]
    last = o_sec[first] - interval * rng.uniform(0.0, 1.6, len(pair_cust))
    out_order, out_prod = [np.zeros(0, np.int64)], [np.zeros(0, np.int64)]
    for k in range(int(-neg_count[0]) if len(neg_count) else 0):
        m = int(np.searchsorted(neg_count, -k, side="left"))  # pairs whose customer has > k orders
        oi = first[:m] + k
        t = o_sec[oi]
        due = (t - last[:m]) >= interval[:m] * rng.uniform(0.7, 1.05, m)
        due &= rng.random(m) >= _STAPLE_SKIP
        last[:m] = np.where(due, t, last[:m])
        out_order.append(oi[due])
        out_prod.append(pair_prod[:m][due])
    return np.concatenate(out_order), np.concatenate(out_prod)


def _repeated_durables(cust_of_line: np.ndarray, prod: np.ndarray, live: np.ndarray, durable: np.ndarray,
                       n_prod: int) -> np.ndarray:
    """Mask of live lines of durable products the same customer already has on an earlier live line
    (lines are in chronological order)."""
    idx = np.flatnonzero(live & durable[prod])
    _, first = np.unique(cust_of_line[idx] * n_prod + prod[idx], return_index=True)
    repeated = np.ones(len(idx), bool)
    repeated[first] = False
    out = np.zeros(len(prod), bool)
    out[idx[repeated]] = True
    return out


def _order_lines(cust: _Customers, catalog: _Catalog, o_cust: np.ndarray, o_sec: np.ndarray,
                 g_sec: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Deduplicated lines (order index, product, quantity); guest orders follow registered ones."""
    n_reg, n_prod = len(o_cust), len(catalog.price)
    consumable_cat = np.array([c.repurchase_days > 0 for c in catalog.cats])
    durable = ~consumable_cat[catalog.product_cat]
    st_order, st_prod = _staple_lines(cust, catalog, o_cust, o_sec, rng)
    n_st = np.bincount(st_order, minlength=n_reg)
    n_disc = rng.poisson(cust.basket[o_cust])
    n_disc = np.where(n_disc + n_st == 0, 1, n_disc)
    d_order = np.repeat(np.arange(n_reg), n_disc)
    d_prod = catalog.sample(rng, _sample_rows(rng, cust.taste_cum, o_cust[d_order]))
    comp = rng.random(len(d_prod)) < _COMPLEMENT_PROB
    order = np.concatenate([d_order, d_order[comp]])
    prod = np.concatenate([d_prod, catalog.complement[d_prod[comp]]])
    is_comp = np.concatenate([np.zeros(len(d_prod), bool), np.ones(int(comp.sum()), bool)])
    srt = _lex_order([order])  # chronological within each customer
    order, prod, is_comp = order[srt], prod[srt], is_comp[srt]
    # A customer rarely buys the same durable product twice: redraw such discovery lines (same
    # category), drop such complements; a few repeats survive.
    live = np.ones(len(prod), bool)
    for attempt in range(4):
        again = _repeated_durables(o_cust[order], prod, live, durable, n_prod)
        if attempt < 3:
            redraw = again & ~is_comp
            prod[redraw] = catalog.sample(rng, catalog.product_cat[prod[redraw]])
            live &= ~(again & is_comp)
        else:
            live &= ~(again & (rng.random(len(prod)) >= _DURABLE_REPEAT))
    empty = np.bincount(order[live], minlength=n_reg) + n_st == 0
    live |= empty[order] & ~is_comp
    order, prod = order[live], prod[live]
    # guest orders: 1 + Poisson(0.8) lines by the shop-wide category mix, and their complements
    n_g = 1 + rng.poisson(0.8, len(g_sec))
    g_order = n_reg + np.repeat(np.arange(len(g_sec)), n_g)
    g_prod = catalog.sample(rng, rng.choice(len(catalog.cats), len(g_order), p=catalog.cat_weight))
    g_comp = rng.random(len(g_prod)) < _COMPLEMENT_PROB
    order = np.concatenate([st_order, order, g_order, g_order[g_comp]])
    prod = np.concatenate([st_prod, prod, g_prod, catalog.complement[g_prod[g_comp]]])
    key, counts = np.unique(order * n_prod + prod, return_counts=True)
    order, prod = key // n_prod, key % n_prod
    qty = counts + rng.poisson(np.where(durable[prod], 0.12, 0.5))
    return order, prod, qty.astype(float)


def _line_prices(catalog: _Catalog, clock: _Clock, l_sec: np.ndarray, prod: np.ndarray,
                 rng: np.random.Generator) -> np.ndarray:
    """Unit prices of sale lines: the list price, discounted for part of the lines during the sales and
    now and then by a coupon."""
    promo = clock.is_promo(l_sec)
    u = rng.random(len(prod))
    discount = np.where(promo & (u < _PROMO_TAKE_UP), rng.choice([0.15, 0.2, 0.25, 0.3], len(u)),
                        np.where(u > 1 - _COUPON_PROB, 0.1, 0.0))
    return np.round(catalog.price[prod] * (1 - discount), 2)


def _returns(cust: _Customers, catalog: _Catalog, clock: _Clock, line_order: np.ndarray, l_cust: np.ndarray,
             l_sec: np.ndarray, prod: np.ndarray, qty: np.ndarray, n_orders: int, rng: np.random.Generator
             ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Returned sale lines as (line index, second, returned quantity): by the category's return rate and
    the customer's propensity, one parcel per order, partly for some multi-unit lines; guest lines are
    never returned and returns after the end of the period are not recorded."""
    rate = np.array([c.return_rate for c in catalog.cats])[catalog.product_cat[prod]]
    p_ret = np.where(l_cust >= 0, np.minimum(rate * cust.returner[np.maximum(l_cust, 0)], 0.8), 0.0)
    ret = np.flatnonzero(rng.random(len(line_order)) < p_ret)
    delay = np.round((1.5 + rng.gamma(*_RETURN_DELAY, n_orders)) * _DAY).astype(np.int64)  # one parcel per order
    r_sec = l_sec[ret] + delay[line_order[ret]]
    r_qty = qty[ret].copy()
    partial = (r_qty > 1) & (rng.random(len(ret)) < 0.3)
    r_qty[partial] = rng.integers(1, r_qty[partial].astype(np.int64))
    inside = r_sec <= clock.last_sec
    return ret[inside], r_sec[inside], r_qty[inside]


@dataclass
class _BlockOrders:
    """The orders of one block: the order of every block-local order index and its lines."""

    o_cust: np.ndarray  # block-local customer of each registered order (sorted), guests follow
    o_sec: np.ndarray  # time of each registered order
    g_sec: np.ndarray  # time of each guest order of the block
    line_order: np.ndarray  # block-local order index of each sale line (registered orders, then guests)
    line_prod: np.ndarray
    rows: dict[str, np.ndarray]  # order lines and returns, columns of spill._ORDER_COLUMNS


def _block_orders(inp: _BlockInput, cust: _Customers, catalog: _Catalog, clock: _Clock,
                  rng: np.random.Generator) -> _BlockOrders:
    """Baskets, prices and returns of the block's orders (its customers' and its share of the guest
    orders), with global customer indices and order ranks; the lines of an order by product."""
    o_cust, o_sec, g_sec = inp.o_cust, inp.o_sec, inp.g_sec
    line_order, line_prod, qty = _order_lines(cust, catalog, o_cust, o_sec, g_sec, rng)
    order_cust = np.concatenate([o_cust, np.full(len(g_sec), -1, dtype=np.int64)])
    l_sec = np.concatenate([o_sec, g_sec])[line_order]
    l_cust = order_cust[line_order]
    price = _line_prices(catalog, clock, l_sec, line_prod, rng)
    ret, r_sec, r_qty = _returns(cust, catalog, clock, line_order, l_cust, l_sec, line_prod, qty,
                                 len(order_cust), rng)
    rows = {
        "rank": inp.order_rank[np.concatenate([line_order, line_order[ret]])],
        "customer": np.where(l_cust >= 0, l_cust + inp.c0, -1)[np.concatenate([np.arange(len(l_cust)), ret])],
        "product": np.concatenate([line_prod, line_prod[ret]]),
        "quantity": np.concatenate([qty, -r_qty]),
        "unit_price": np.concatenate([price, price[ret]]),
        "sec": np.concatenate([l_sec, r_sec]),
        "is_return": np.concatenate([np.zeros(len(qty), dtype=bool), np.ones(len(ret), dtype=bool)]),
    }
    return _BlockOrders(o_cust, o_sec, g_sec, line_order, line_prod, rows)
