-- Product popularity, trend, repeat-purchase rate and price, "as of" each cutoff.
-- Inputs: orders (canonical table), cutoffs(cutoff TIMESTAMPTZ).
-- One row per (product, cutoff) for every product sold before the cutoff. Guest lines count.
-- The windowed features read only the sale lines of the last 365 days before each cutoff (the longest
-- window); the last sale needs the whole history, but only its latest line: each product's last sale
-- between consecutive cutoffs, carried forward to the later cutoffs.
-- Windows: a line at t is "in the last N days" when date_diff('second', t, cutoff) <= N * 86400 (whole
-- seconds, days = seconds / 86400), i.e. when t >= the cutoff's whole second minus N days; those
-- boundaries are computed once per cutoff (cuts), so lines are only compared with them.
-- DuckDB SQL, run per batch of cutoffs (features/snapshot_engines.py; translated for Spark by sqlglot).

-- step: snapshot
WITH sale_lines AS (
    SELECT product_id, customer_id, order_id, quantity, unit_price, ordered_at
    FROM orders
    WHERE NOT is_return AND product_id IS NOT NULL
),
cuts AS (
    SELECT cutoff,
           lag(cutoff) OVER (ORDER BY cutoff) AS prev_cutoff,
           date_trunc('second', cutoff) - INTERVAL 30 DAY AS since_30d,
           date_trunc('second', cutoff) - INTERVAL 60 DAY AS since_60d,
           date_trunc('second', cutoff) - INTERVAL 90 DAY AS since_90d,
           date_trunc('second', cutoff) - INTERVAL 365 DAY AS since_365d
    FROM cutoffs
),
last_in_interval AS (       -- each product's last sale in each [previous cutoff, cutoff) (the first: all before)
    SELECT b.cutoff, o.product_id, max(o.ordered_at) AS last_at
    FROM sale_lines o
    JOIN cuts b ON o.ordered_at < b.cutoff AND (b.prev_cutoff IS NULL OR o.ordered_at >= b.prev_cutoff)
    GROUP BY b.cutoff, o.product_id
),
last_sold AS (              -- per cutoff, the product's latest interval with a sale up to that cutoff
    SELECT c.cutoff, l.product_id, l.last_at
    FROM cutoffs c
    JOIN (SELECT product_id, last_at, cutoff AS since,
                 lead(cutoff) OVER (PARTITION BY product_id ORDER BY cutoff) AS until
          FROM last_in_interval) l
      ON c.cutoff >= l.since AND (l.until IS NULL OR c.cutoff < l.until)
),
sl AS (                     -- sale lines of the last 365 days, with the windows they fall in
    SELECT c.cutoff, o.product_id, o.customer_id, o.order_id, o.quantity, o.unit_price,
           o.ordered_at >= c.since_30d AS in_30d,
           o.ordered_at >= c.since_90d AS in_90d,
           o.ordered_at < c.since_30d AND o.ordered_at >= c.since_60d AS in_prev_30d
    FROM cuts c
    JOIN sale_lines o ON o.ordered_at < c.cutoff AND o.ordered_at >= c.since_365d
),
line_sets AS (              -- each (product, order, buyer) of those lines
    SELECT cutoff, product_id, order_id, customer_id,
           bool_or(in_30d) AS in_30d, bool_or(in_90d) AS in_90d, bool_or(in_prev_30d) AS in_prev_30d
    FROM sl GROUP BY cutoff, product_id, order_id, customer_id
),
product_orders AS (         -- each order with the product (whoever bought it)
    SELECT cutoff, product_id, order_id,
           bool_or(in_30d) AS in_30d, bool_or(in_90d) AS in_90d, bool_or(in_prev_30d) AS in_prev_30d
    FROM line_sets GROUP BY cutoff, product_id, order_id
),
buyers AS (                 -- each customer who bought the product, in how many orders, and if in 90 days
    SELECT cutoff, product_id, customer_id, count(*) AS n_orders, bool_or(in_90d) AS in_90d
    FROM line_sets WHERE customer_id IS NOT NULL
    GROUP BY cutoff, product_id, customer_id
),
order_agg AS (
    SELECT cutoff, product_id,
        count(*) FILTER (WHERE in_30d) AS orders_30d,
        count(*) FILTER (WHERE in_90d) AS orders_90d,
        count(*) FILTER (WHERE in_prev_30d) AS orders_prev_30d
    FROM product_orders GROUP BY cutoff, product_id
),
buyer_agg AS (
    SELECT cutoff, product_id,
        count(*) FILTER (WHERE in_90d) AS buyers_90d,
        count(*) AS buyers_365d,
        avg(CASE WHEN n_orders >= 2 THEN 1.0 ELSE 0.0 END) AS repeat_purchase_rate_365d
    FROM buyers GROUP BY cutoff, product_id
),
line_agg AS (
    SELECT cutoff, product_id,
        sum(quantity) FILTER (WHERE in_90d) AS units_90d,
        median(unit_price) AS price_median_365d
    FROM sl GROUP BY cutoff, product_id
)
SELECT l.product_id, l.cutoff AS event_timestamp,
    coalesce(o.orders_30d, 0) AS orders_30d,
    coalesce(o.orders_90d, 0) AS orders_90d,
    coalesce(o.orders_prev_30d, 0) AS orders_prev_30d,
    (coalesce(o.orders_30d, 0) + 1.0) / (coalesce(o.orders_prev_30d, 0) + 1.0) AS trend_30d,
    coalesce(a.units_90d, 0) AS units_90d,
    coalesce(b.buyers_90d, 0) AS buyers_90d,
    coalesce(b.buyers_365d, 0) AS buyers_365d,
    b.repeat_purchase_rate_365d,
    a.price_median_365d,
    date_diff('second', l.last_at, l.cutoff) / 86400.0 AS days_since_last_sold
FROM last_sold l
LEFT JOIN order_agg o ON o.cutoff = l.cutoff AND o.product_id = l.product_id
LEFT JOIN buyer_agg b ON b.cutoff = l.cutoff AND b.product_id = l.product_id
LEFT JOIN line_agg a ON a.cutoff = l.cutoff AND a.product_id = l.product_id
