-- Customer behaviour from orders, "as of" each cutoff: only order lines strictly before the cutoff.
-- Inputs: orders (canonical table), cutoffs(cutoff TIMESTAMPTZ), products (product_id, category) possibly empty.
-- One row per (customer, cutoff) for every customer with at least one sale line before the cutoff.
-- Money is net of returns; "orders" are distinct sale order ids, timed by their first line; times are in days.
--
-- The work per cutoff is bounded by the longest window, not by the whole history: windowed features read
-- only orders started in the last 455 days (the longest window: "the 90 days before t one year earlier"),
-- and the lifetime features (first and last order, lifetime counts and money, gaps between orders, the
-- largest order) come from running totals computed once per customer, of which each cutoff takes the
-- latest state before it.
-- Windows: an order started at t is "in the last N days" when date_diff('second', t, cutoff) <= N * 86400
-- (whole seconds, days = seconds / 86400), i.e. when t >= the cutoff's whole second minus N days; those
-- boundaries are computed once per cutoff (cuts), so orders are only compared with them.
-- Each "-- step: NAME" query is materialized once as table NAME; "snapshot" runs for each batch of cutoffs
-- (features/snapshot_engines.py; DuckDB SQL, translated for Spark by sqlglot).
-- Lines marked "scope" at their end limit the customers to those of table customer_scope (the training sample
-- of a large shop); they are dropped when every customer is computed. The products' reference prices always
-- come from every customer's lines, so a customer's features do not depend on the scope.

-- step: line_parts
-- The lines of one order at one time, summed: an order's lines normally share one time, but if they do not,
-- a cutoff between them sees only the earlier ones. Sale and return lines of one order id are separate
-- orders, as the features count them apart.
SELECT customer_id, order_id, is_return, ordered_at,
       sum(amount) AS value, sum(quantity) AS units, count(*) AS n_lines
FROM orders
WHERE customer_id IS NOT NULL
  AND customer_id IN (SELECT customer_id FROM customer_scope)  -- scope
GROUP BY customer_id, order_id, is_return, ordered_at

-- step: order_parts
-- Each part knows its order's first and last time and full value. (A step of its own: DuckDB plans the
-- window over the grouped lines as joins that read the orders file once per join.)
SELECT customer_id, order_id, is_return, ordered_at, value, units, n_lines,
       min(ordered_at) OVER (PARTITION BY customer_id, order_id, is_return) AS order_start,
       max(ordered_at) OVER (PARTITION BY customer_id, order_id, is_return) AS order_end,
       sum(value) OVER (PARTITION BY customer_id, order_id, is_return) AS order_value
FROM line_parts

-- step: sale_orders
-- One row per sale order, in (time, order id) order per customer, with the customer's lifetime order
-- statistics up to and including it, and when their next order starts: the state a cutoff in
-- (order_start, next_start] sees.
SELECT customer_id, order_id, order_start,
       lead(order_start) OVER (PARTITION BY customer_id ORDER BY order_start, order_id) AS next_start,
       count(*) OVER so_far AS n_orders,
       min(order_start) OVER so_far AS first_start,
       sum(new_day) OVER so_far AS purchase_days,
       avg(gap_days) OVER so_far AS ipi_mean_days,
       stddev_samp(gap_days) OVER so_far AS ipi_std_days,
       gap_days AS last_gap_days
FROM (
    SELECT customer_id, order_id, order_start,
           date_diff('second', lag(order_start) OVER (PARTITION BY customer_id ORDER BY order_start, order_id),
                     order_start) / 86400.0 AS gap_days,
           CASE WHEN CAST(order_start AS DATE)
                     = lag(CAST(order_start AS DATE)) OVER (PARTITION BY customer_id ORDER BY order_start, order_id)
                THEN 0 ELSE 1 END AS new_day
    FROM order_parts
    WHERE NOT is_return AND ordered_at = order_start
) AS o
WINDOW so_far AS (PARTITION BY customer_id ORDER BY order_start, order_id
                  ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)

-- step: money
-- One row per customer and time with an order line: running totals of the sale lines (value, units, lines)
-- and of the returned value, and the largest sale order completed so far (its last line at or before that
-- time); the state a cutoff in (t, next_t] sees.
SELECT customer_id, t,
       lead(t) OVER (PARTITION BY customer_id ORDER BY t) AS next_t,
       sum(sale_value) OVER so_far AS sales,
       sum(sale_units) OVER so_far AS units,
       sum(sale_lines) OVER so_far AS n_lines,
       sum(returned) OVER so_far AS returned,
       max(completed_order_value) OVER so_far AS max_completed_order_value
FROM (
    SELECT customer_id, ordered_at AS t,
           sum(CASE WHEN NOT is_return THEN value END) AS sale_value,
           sum(CASE WHEN NOT is_return THEN units END) AS sale_units,
           sum(CASE WHEN NOT is_return THEN n_lines END) AS sale_lines,
           sum(CASE WHEN is_return THEN -value END) AS returned,
           max(CASE WHEN NOT is_return AND ordered_at = order_end THEN order_value END) AS completed_order_value
    FROM order_parts
    GROUP BY customer_id, ordered_at
) AS m
WINDOW so_far AS (PARTITION BY customer_id ORDER BY t ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)

-- step: snapshot
WITH cuts AS (              -- where each window starts (see "Windows" above)
    SELECT cutoff,
           date_trunc('second', cutoff) - INTERVAL 30 DAY AS since_30d,
           date_trunc('second', cutoff) - INTERVAL 90 DAY AS since_90d,
           date_trunc('second', cutoff) - INTERVAL 180 DAY AS since_180d,
           date_trunc('second', cutoff) - INTERVAL 275 DAY AS since_275d,
           date_trunc('second', cutoff) - INTERVAL 365 DAY AS since_365d,
           date_trunc('second', cutoff) - INTERVAL 455 DAY AS since_455d,
           cutoff - INTERVAL 365 DAY AS lines_since   -- the price features' window: exactly 365 days
    FROM cutoffs
),
state AS (                  -- each customer's latest sale order before the cutoff, with the statistics so far
    SELECT c.cutoff, s.customer_id, s.n_orders, s.purchase_days, s.ipi_mean_days, s.ipi_std_days,
           s.last_gap_days,
           date_diff('second', s.order_start, c.cutoff) / 86400.0 AS recency_days,
           date_diff('second', s.first_start, c.cutoff) / 86400.0 AS tenure_days
    FROM cutoffs c
    JOIN sale_orders s ON s.order_start < c.cutoff AND (s.next_start IS NULL OR c.cutoff <= s.next_start)
),
totals AS (                 -- the running money totals of the customer's latest line time before the cutoff
    SELECT c.cutoff, m.customer_id, m.sales, m.units, m.n_lines, m.returned, m.max_completed_order_value
    FROM cutoffs c
    JOIN money m ON m.t < c.cutoff AND (m.next_t IS NULL OR c.cutoff <= m.next_t)
),
open_orders AS (            -- sale orders with lines on both sides of the cutoff: their value so far
    SELECT c.cutoff, p.customer_id, p.order_id, sum(p.value) AS value
    FROM cutoffs c
    JOIN order_parts p ON p.ordered_at < c.cutoff AND c.cutoff <= p.order_end
    WHERE NOT p.is_return AND p.order_start < p.order_end
    GROUP BY c.cutoff, p.customer_id, p.order_id
),
open_max AS (
    SELECT cutoff, customer_id, max(value) AS max_open_order_value
    FROM open_orders GROUP BY cutoff, customer_id
),
recent AS (                 -- the parts before the cutoff of the orders started in the last 455 days
    SELECT c.cutoff, p.customer_id, p.order_start, c.since_30d, c.since_90d, c.since_180d, c.since_275d,
           c.since_365d,
           NOT p.is_return AND p.ordered_at = p.order_start AS sale_start,
           p.is_return AND p.ordered_at = p.order_start AS return_start,
           CASE WHEN NOT p.is_return THEN p.value END AS sale_value,
           CASE WHEN p.is_return THEN -p.value END AS returned
    FROM cuts c
    JOIN order_parts p ON p.ordered_at < c.cutoff AND p.order_start >= c.since_455d
),
windows AS (                -- by the order's start: in the last 30/90/365 days, 90-180, 275-365, 365-455 days ago
    SELECT cutoff, customer_id,
        count(*) FILTER (WHERE sale_start AND order_start >= since_30d) AS frequency_30d,
        count(*) FILTER (WHERE sale_start AND order_start >= since_90d) AS frequency_90d,
        count(*) FILTER (WHERE sale_start AND order_start >= since_365d) AS frequency_365d,
        count(*) FILTER (WHERE sale_start AND order_start < since_90d AND order_start >= since_180d)
            AS frequency_prev_90d,
        count(*) FILTER (WHERE sale_start AND order_start < since_275d AND order_start >= since_365d)
            AS frequency_ly_next_90d,
        count(*) FILTER (WHERE sale_start AND order_start < since_365d) AS frequency_ly_90d,
        sum(sale_value) FILTER (WHERE order_start >= since_30d) AS sales_30d,
        sum(sale_value) FILTER (WHERE order_start >= since_90d) AS sales_90d,
        sum(sale_value) FILTER (WHERE order_start >= since_365d) AS sales_365d,
        sum(sale_value) FILTER (WHERE order_start < since_90d AND order_start >= since_180d) AS sales_prev_90d,
        sum(sale_value) FILTER (WHERE order_start < since_275d AND order_start >= since_365d)
            AS monetary_ly_next_90d,
        count(*) FILTER (WHERE return_start AND order_start >= since_365d) AS returns_365d,
        sum(returned) FILTER (WHERE order_start >= since_30d) AS returned_30d,
        sum(returned) FILTER (WHERE order_start >= since_90d) AS returned_90d,
        sum(returned) FILTER (WHERE order_start >= since_365d) AS returned_365d
    FROM recent GROUP BY cutoff, customer_id
),
line_window AS (            -- sale lines of the 365 days before each cutoff
    SELECT c.cutoff, l.customer_id, l.product_id, l.unit_price
    FROM cuts c
    JOIN orders l ON l.ordered_at < c.cutoff AND l.ordered_at >= c.lines_since
    WHERE l.customer_id IS NOT NULL AND NOT l.is_return AND l.product_id IS NOT NULL
      AND l.customer_id IN (SELECT customer_id FROM customer_scope)  -- scope
),
-- Each product's reference price: the median price of everyone's sale lines in those 365 days. The lines
-- are counted per product and price in the intervals between consecutive window edges of the batch's
-- cutoffs (one pass over the lines, however many cutoffs overlap), each window sums its intervals, and
-- the median is read from the cumulative counts of the prices in order (as DuckDB's median interpolates:
-- the mean of the two middle prices when the count is even).
edges AS (
    SELECT lines_since AS edge FROM cuts
    UNION
    SELECT cutoff AS edge FROM cuts
),
intervals AS (
    SELECT edge AS since, lead(edge) OVER (ORDER BY edge) AS until FROM edges
),
interval_prices AS (
    SELECT i.since, l.product_id, l.unit_price, count(*) AS n
    FROM intervals i
    JOIN orders l ON l.ordered_at >= i.since AND l.ordered_at < i.until
    WHERE l.customer_id IS NOT NULL AND NOT l.is_return AND l.product_id IS NOT NULL
    GROUP BY i.since, l.product_id, l.unit_price
),
window_prices AS (
    SELECT c.cutoff, p.product_id, p.unit_price, sum(p.n) AS n
    FROM cuts c
    JOIN interval_prices p ON p.since >= c.lines_since AND p.since < c.cutoff
    GROUP BY c.cutoff, p.product_id, p.unit_price
),
price_ranks AS (            -- lines at or below each price, and in all
    SELECT cutoff, product_id, unit_price,
           sum(n) OVER (PARTITION BY cutoff, product_id ORDER BY unit_price
                        ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS upto,
           sum(n) OVER (PARTITION BY cutoff, product_id) AS total
    FROM window_prices
),
middle AS (                 -- the prices at the two middle positions (0-based), the same one for an odd count
    SELECT cutoff, product_id,
           min(unit_price) FILTER (WHERE upto > floor((total - 1) / 2.0)) AS lower_price,
           min(unit_price) FILTER (WHERE upto > ceil((total - 1) / 2.0)) AS upper_price,
           (total - 1) / 2.0 - floor((total - 1) / 2.0) AS fraction
    FROM price_ranks GROUP BY cutoff, product_id, total
),
ref_price AS (
    SELECT cutoff, product_id, lower_price + (upper_price - lower_price) * fraction AS ref_price
    FROM middle
),
line_agg AS (
    SELECT l.cutoff, l.customer_id,
        count(DISTINCT l.product_id) AS distinct_products_365d,
        count(DISTINCT p.category) AS distinct_categories_365d,
        avg(l.unit_price / r.ref_price) AS price_index_365d,
        avg(CASE WHEN l.unit_price < 0.95 * r.ref_price THEN 1.0 ELSE 0.0 END) AS discount_share_365d
    FROM line_window l
    JOIN ref_price r ON r.cutoff = l.cutoff AND r.product_id = l.product_id
    LEFT JOIN products p ON p.product_id = l.product_id
    GROUP BY l.cutoff, l.customer_id
)
SELECT
    s.customer_id,
    s.cutoff AS event_timestamp,
    s.recency_days, s.tenure_days,
    coalesce(w.frequency_30d, 0) AS frequency_30d,
    coalesce(w.frequency_90d, 0) AS frequency_90d,
    coalesce(w.frequency_365d, 0) AS frequency_365d,
    s.n_orders AS frequency_lifetime,
    coalesce(w.sales_30d, 0) - coalesce(w.returned_30d, 0) AS monetary_30d,
    coalesce(w.sales_90d, 0) - coalesce(w.returned_90d, 0) AS monetary_90d,
    coalesce(w.sales_365d, 0) - coalesce(w.returned_365d, 0) AS monetary_365d,
    t.sales - coalesce(t.returned, 0) AS monetary_lifetime,
    s.purchase_days - 1 AS repeat_purchase_days,
    s.tenure_days - s.recency_days AS active_span_days,
    s.ipi_mean_days, s.ipi_std_days, s.last_gap_days,
    s.recency_days / nullif(s.ipi_mean_days, 0) AS recency_ipi_ratio,
    coalesce(w.frequency_prev_90d, 0) AS frequency_prev_90d,
    (coalesce(w.frequency_90d, 0) + 1.0) / (coalesce(w.frequency_prev_90d, 0) + 1.0) AS frequency_trend_90d,
    (coalesce(w.sales_90d, 0) + 1.0) / (coalesce(w.sales_prev_90d, 0) + 1.0) AS monetary_trend_90d,
    coalesce(w.frequency_ly_next_90d, 0) AS frequency_ly_next_90d,
    coalesce(w.monetary_ly_next_90d, 0) AS monetary_ly_next_90d,
    coalesce(w.frequency_ly_90d, 0) AS frequency_ly_90d,
    s.n_orders * 30.0 / greatest(s.tenure_days, 30.0) AS orders_per_30d,
    t.units / s.n_orders AS avg_units_per_order,
    t.n_lines / s.n_orders AS avg_lines_per_order,
    coalesce(w.sales_365d, 0) / nullif(w.frequency_365d, 0) AS avg_order_value_365d,
    t.sales / s.n_orders AS avg_order_value_lifetime,
    greatest(t.max_completed_order_value, o.max_open_order_value) AS max_order_value,
    coalesce(l.distinct_products_365d, 0) AS distinct_products_365d,
    coalesce(l.distinct_categories_365d, 0) AS distinct_categories_365d,
    coalesce(w.returns_365d, 0) AS returns_365d,
    coalesce(w.returned_365d, 0) / nullif(coalesce(w.sales_365d, 0), 0) AS return_rate_365d,
    l.price_index_365d, l.discount_share_365d
FROM state s
JOIN totals t ON t.cutoff = s.cutoff AND t.customer_id = s.customer_id
LEFT JOIN open_max o ON o.cutoff = s.cutoff AND o.customer_id = s.customer_id
LEFT JOIN windows w ON w.cutoff = s.cutoff AND w.customer_id = s.customer_id
LEFT JOIN line_agg l ON l.cutoff = s.cutoff AND l.customer_id = s.customer_id
