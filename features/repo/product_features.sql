-- Product popularity, trend, repeat-purchase rate and price, "as of" each cutoff.
-- Inputs: orders (canonical table), cutoffs(cutoff TIMESTAMPTZ).
-- One row per (product, cutoff) for every product sold before the cutoff. Guest lines count.
WITH sl AS (
    SELECT c.cutoff, o.product_id, o.customer_id, o.order_id, o.quantity, o.unit_price,
           date_diff('second', o.ordered_at, c.cutoff) / 86400.0 AS age_days
    FROM cutoffs c JOIN orders o ON o.ordered_at < c.cutoff
    WHERE NOT o.is_return AND o.product_id IS NOT NULL
),
buyers AS (                 -- buyers of the last 365 days and how many orders each placed with the product
    SELECT cutoff, product_id, customer_id, count(DISTINCT order_id) AS n_orders
    FROM sl WHERE customer_id IS NOT NULL AND age_days <= 365
    GROUP BY cutoff, product_id, customer_id
),
rep AS (
    SELECT cutoff, product_id, count(*) AS buyers_365d,
           avg(CASE WHEN n_orders >= 2 THEN 1.0 ELSE 0.0 END) AS repeat_purchase_rate_365d
    FROM buyers GROUP BY cutoff, product_id
)
SELECT s.product_id, s.cutoff AS event_timestamp,
    count(DISTINCT s.order_id) FILTER (WHERE age_days <= 30) AS orders_30d,
    count(DISTINCT s.order_id) FILTER (WHERE age_days <= 90) AS orders_90d,
    count(DISTINCT s.order_id) FILTER (WHERE age_days > 30 AND age_days <= 60) AS orders_prev_30d,
    (count(DISTINCT s.order_id) FILTER (WHERE age_days <= 30) + 1.0)
        / (count(DISTINCT s.order_id) FILTER (WHERE age_days > 30 AND age_days <= 60) + 1.0) AS trend_30d,
    coalesce(sum(s.quantity) FILTER (WHERE age_days <= 90), 0) AS units_90d,
    count(DISTINCT s.customer_id) FILTER (WHERE age_days <= 90) AS buyers_90d,
    coalesce(any_value(r.buyers_365d), 0) AS buyers_365d,
    any_value(r.repeat_purchase_rate_365d) AS repeat_purchase_rate_365d,
    median(s.unit_price) FILTER (WHERE age_days <= 365) AS price_median_365d,
    min(age_days) AS days_since_last_sold
FROM sl s LEFT JOIN rep r USING (cutoff, product_id)
GROUP BY s.cutoff, s.product_id
