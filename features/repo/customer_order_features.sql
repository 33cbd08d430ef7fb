-- Customer behaviour from orders, "as of" each cutoff: only order lines strictly before the cutoff.
-- Inputs (DuckDB relations): orders (canonical table), cutoffs(cutoff TIMESTAMPTZ),
--                            products (product_id, category) possibly empty.
-- One row per (customer, cutoff) for every customer with at least one sale line before the cutoff.
-- Money is net of returns; "orders" are distinct sale order ids; times are in days.
WITH lines AS (
    SELECT customer_id, order_id, product_id, quantity, unit_price, amount, ordered_at, is_return
    FROM orders
    WHERE customer_id IS NOT NULL
),
order_rows AS (             -- one row per (cutoff, sale order), from the order's lines before the cutoff
    SELECT c.cutoff, l.customer_id, l.order_id, min(l.ordered_at) AS ordered_at, sum(l.amount) AS order_value,
           sum(l.quantity) AS units, count(*) AS n_lines
    FROM cutoffs c JOIN lines l ON l.ordered_at < c.cutoff
    WHERE NOT l.is_return
    GROUP BY c.cutoff, l.customer_id, l.order_id
),
return_rows AS (            -- one row per (cutoff, return order) (negative money), lines before the cutoff
    SELECT c.cutoff, l.customer_id, l.order_id, min(l.ordered_at) AS ordered_at, sum(l.amount) AS return_value
    FROM cutoffs c JOIN lines l ON l.ordered_at < c.cutoff
    WHERE l.is_return
    GROUP BY c.cutoff, l.customer_id, l.order_id
),
oc AS (                     -- orders before each cutoff, with the gap since the previous order
    SELECT o.*,
           date_diff('second', o.ordered_at, o.cutoff) / 86400.0 AS age_days,
           date_diff('second', lag(o.ordered_at) OVER w, o.ordered_at) / 86400.0 AS gap_days,
           row_number() OVER (PARTITION BY o.cutoff, o.customer_id ORDER BY o.ordered_at DESC, o.order_id DESC) AS rn_desc
    FROM order_rows o
    WINDOW w AS (PARTITION BY o.cutoff, o.customer_id ORDER BY o.ordered_at, o.order_id)
),
order_agg AS (
    SELECT cutoff, customer_id,
        min(age_days) AS recency_days,
        max(age_days) AS tenure_days,
        count(*) FILTER (WHERE age_days <= 30)  AS frequency_30d,
        count(*) FILTER (WHERE age_days <= 90)  AS frequency_90d,
        count(*) FILTER (WHERE age_days <= 365) AS frequency_365d,
        count(*) AS frequency_lifetime,
        count(*) FILTER (WHERE age_days > 90 AND age_days <= 180) AS frequency_prev_90d,
        count(*) FILTER (WHERE age_days > 275 AND age_days <= 365) AS frequency_ly_next_90d,
        count(*) FILTER (WHERE age_days > 365 AND age_days <= 455) AS frequency_ly_90d,
        coalesce(sum(order_value) FILTER (WHERE age_days <= 30), 0)  AS sales_30d,
        coalesce(sum(order_value) FILTER (WHERE age_days <= 90), 0)  AS sales_90d,
        coalesce(sum(order_value) FILTER (WHERE age_days <= 365), 0) AS sales_365d,
        sum(order_value) AS sales_lifetime,
        coalesce(sum(order_value) FILTER (WHERE age_days > 90 AND age_days <= 180), 0) AS sales_prev_90d,
        coalesce(sum(order_value) FILTER (WHERE age_days > 275 AND age_days <= 365), 0) AS monetary_ly_next_90d,
        count(DISTINCT CAST(ordered_at AS DATE)) - 1 AS repeat_purchase_days,
        max(age_days) - min(age_days) AS active_span_days,
        avg(gap_days) AS ipi_mean_days,
        stddev_samp(gap_days) AS ipi_std_days,
        max(gap_days) FILTER (WHERE rn_desc = 1) AS last_gap_days,
        avg(units) AS avg_units_per_order,
        avg(n_lines) AS avg_lines_per_order,
        avg(order_value) FILTER (WHERE age_days <= 365) AS avg_order_value_365d,
        avg(order_value) AS avg_order_value_lifetime,
        max(order_value) AS max_order_value
    FROM oc GROUP BY cutoff, customer_id
),
return_agg AS (
    SELECT r.cutoff, r.customer_id,
        count(*) FILTER (WHERE date_diff('second', r.ordered_at, r.cutoff) <= 365 * 86400) AS returns_365d,
        coalesce(sum(-r.return_value) FILTER (WHERE date_diff('second', r.ordered_at, r.cutoff) <= 30 * 86400), 0) AS returned_30d,
        coalesce(sum(-r.return_value) FILTER (WHERE date_diff('second', r.ordered_at, r.cutoff) <= 90 * 86400), 0) AS returned_90d,
        coalesce(sum(-r.return_value) FILTER (WHERE date_diff('second', r.ordered_at, r.cutoff) <= 365 * 86400), 0) AS returned_365d,
        sum(-r.return_value) AS returned_lifetime
    FROM return_rows r
    GROUP BY r.cutoff, r.customer_id
),
line_window AS (            -- sale lines of the 365 days before each cutoff, with the product's reference price
    SELECT c.cutoff, l.customer_id, l.product_id, l.unit_price, p.category,
           median(l.unit_price) OVER (PARTITION BY c.cutoff, l.product_id) AS ref_price
    FROM cutoffs c
    JOIN lines l ON l.ordered_at < c.cutoff AND l.ordered_at >= c.cutoff - INTERVAL 365 DAY
    LEFT JOIN products p USING (product_id)
    WHERE NOT l.is_return AND l.product_id IS NOT NULL
),
line_agg AS (
    SELECT cutoff, customer_id,
        count(DISTINCT product_id) AS distinct_products_365d,
        count(DISTINCT category) AS distinct_categories_365d,
        avg(unit_price / ref_price) AS price_index_365d,
        avg(CASE WHEN unit_price < 0.95 * ref_price THEN 1.0 ELSE 0.0 END) AS discount_share_365d
    FROM line_window GROUP BY cutoff, customer_id
)
SELECT
    a.customer_id,
    a.cutoff AS event_timestamp,
    a.recency_days, a.tenure_days,
    a.frequency_30d, a.frequency_90d, a.frequency_365d, a.frequency_lifetime,
    a.sales_30d  - coalesce(r.returned_30d, 0)  AS monetary_30d,
    a.sales_90d  - coalesce(r.returned_90d, 0)  AS monetary_90d,
    a.sales_365d - coalesce(r.returned_365d, 0) AS monetary_365d,
    a.sales_lifetime - coalesce(r.returned_lifetime, 0) AS monetary_lifetime,
    a.repeat_purchase_days, a.active_span_days,
    a.ipi_mean_days, a.ipi_std_days, a.last_gap_days,
    a.recency_days / nullif(a.ipi_mean_days, 0) AS recency_ipi_ratio,
    a.frequency_prev_90d,
    (a.frequency_90d + 1.0) / (a.frequency_prev_90d + 1.0) AS frequency_trend_90d,
    (a.sales_90d + 1.0) / (a.sales_prev_90d + 1.0) AS monetary_trend_90d,
    a.frequency_ly_next_90d, a.monetary_ly_next_90d, a.frequency_ly_90d,
    a.frequency_lifetime * 30.0 / greatest(a.tenure_days, 30.0) AS orders_per_30d,
    a.avg_units_per_order, a.avg_lines_per_order,
    a.avg_order_value_365d, a.avg_order_value_lifetime, a.max_order_value,
    coalesce(l.distinct_products_365d, 0) AS distinct_products_365d,
    coalesce(l.distinct_categories_365d, 0) AS distinct_categories_365d,
    coalesce(r.returns_365d, 0) AS returns_365d,
    coalesce(r.returned_365d, 0) / nullif(a.sales_365d, 0) AS return_rate_365d,
    l.price_index_365d, l.discount_share_365d
FROM order_agg a
LEFT JOIN return_agg r USING (cutoff, customer_id)
LEFT JOIN line_agg l USING (cutoff, customer_id)
