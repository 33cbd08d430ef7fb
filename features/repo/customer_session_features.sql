-- Customer browsing behaviour from sessions, "as of" each cutoff: only events strictly before it.
-- Inputs: sessions (canonical table), cutoffs(cutoff TIMESTAMPTZ).
-- One row per (customer, cutoff) for every customer with a session event before the cutoff.
-- The windowed counts read only the events of the last 90 days before each cutoff; the last visit needs the
-- whole history, but only its latest event: each customer's last event between consecutive cutoffs,
-- carried forward to the later cutoffs.
-- Windows: an event at t is "in the last N days" when date_diff('second', t, cutoff) <= N * 86400 (whole
-- seconds, days = seconds / 86400), i.e. when t >= the cutoff's whole second minus N days; those
-- boundaries are computed once per cutoff (cuts), so events are only compared with them.
-- DuckDB SQL, run per batch of cutoffs (features/snapshot_engines.py; translated for Spark by sqlglot).
-- Lines marked "scope" at their end limit the customers to those of table customer_scope (the training sample
-- of a large shop); they are dropped when every customer is computed.

-- step: customer_events when scoped
-- The events of identified customers. Stored once for a sample of customers, so that each batch of cutoffs
-- reads only theirs; for every customer a view of the sessions table (each batch reads it in place).
SELECT customer_id, session_id, occurred_at, event_type
FROM sessions
WHERE customer_id IS NOT NULL
  AND customer_id IN (SELECT customer_id FROM customer_scope)  -- scope

-- step: snapshot
WITH cuts AS (
    SELECT cutoff,
           lag(cutoff) OVER (ORDER BY cutoff) AS prev_cutoff,
           date_trunc('second', cutoff) - INTERVAL 30 DAY AS since_30d,
           date_trunc('second', cutoff) - INTERVAL 90 DAY AS since_90d
    FROM cutoffs
),
last_in_interval AS (       -- each customer's last event in each [previous cutoff, cutoff) (the first: all before)
    SELECT b.cutoff, s.customer_id, max(s.occurred_at) AS last_at
    FROM customer_events s
    JOIN cuts b ON s.occurred_at < b.cutoff AND (b.prev_cutoff IS NULL OR s.occurred_at >= b.prev_cutoff)
    GROUP BY b.cutoff, s.customer_id
),
last_seen AS (              -- per cutoff, the customer's latest interval with an event up to that cutoff
    SELECT c.cutoff, l.customer_id, l.last_at
    FROM cutoffs c
    JOIN (SELECT customer_id, last_at, cutoff AS since,
                 lead(cutoff) OVER (PARTITION BY customer_id ORDER BY cutoff) AS until
          FROM last_in_interval) l
      ON c.cutoff >= l.since AND (l.until IS NULL OR c.cutoff < l.until)
),
per_session AS (            -- sessions of the last 90 days: their events per window
    SELECT c.cutoff, s.customer_id, s.session_id,
           bool_or(s.occurred_at >= c.since_30d) AS in_30d,
           count(*) FILTER (WHERE s.event_type = 'view' AND s.occurred_at >= c.since_30d) AS views_30d,
           count(*) FILTER (WHERE s.event_type = 'view') AS views_90d,
           count(*) FILTER (WHERE s.event_type = 'add_to_cart') AS add_to_cart_90d,
           count(*) FILTER (WHERE s.event_type = 'purchase') AS purchases_90d,
           count(*) FILTER (WHERE s.event_type = 'search') AS searches_90d
    FROM cuts c
    JOIN customer_events s ON s.occurred_at < c.cutoff AND s.occurred_at >= c.since_90d
    GROUP BY c.cutoff, s.customer_id, s.session_id
),
agg AS (
    SELECT cutoff, customer_id,
        count(*) FILTER (WHERE in_30d) AS sessions_30d,
        count(*) AS sessions_90d,
        sum(views_30d) AS views_30d, sum(views_90d) AS views_90d,
        sum(add_to_cart_90d) AS add_to_cart_90d, sum(purchases_90d) AS purchases_90d,
        sum(searches_90d) AS searches_90d,
        count(*) FILTER (WHERE add_to_cart_90d > 0) AS carted_sessions_90d,
        count(*) FILTER (WHERE add_to_cart_90d > 0 AND purchases_90d = 0) AS abandoned_sessions_90d
    FROM per_session GROUP BY cutoff, customer_id
)
SELECT l.customer_id, l.cutoff AS event_timestamp,
       coalesce(a.sessions_30d, 0) AS sessions_30d, coalesce(a.sessions_90d, 0) AS sessions_90d,
       coalesce(a.views_30d, 0) AS views_30d, coalesce(a.views_90d, 0) AS views_90d,
       coalesce(a.add_to_cart_90d, 0) AS add_to_cart_90d, coalesce(a.searches_90d, 0) AS searches_90d,
       CAST(a.abandoned_sessions_90d AS DOUBLE) / nullif(a.carted_sessions_90d, 0) AS cart_abandonment_90d,
       CAST(a.purchases_90d AS DOUBLE) / nullif(a.views_90d, 0) AS view_to_purchase_90d,
       date_diff('second', l.last_at, l.cutoff) / 86400.0 AS days_since_last_session
FROM last_seen l
LEFT JOIN agg a ON a.cutoff = l.cutoff AND a.customer_id = l.customer_id
