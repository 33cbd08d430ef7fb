-- Customer browsing behaviour from sessions, "as of" each cutoff: only events strictly before it.
-- Inputs: sessions (canonical table), cutoffs(cutoff TIMESTAMPTZ).
-- One row per (customer, cutoff) for every customer with a session event before the cutoff.
-- The windowed counts read only the events of the last 91 days before each cutoff (the FILTERs keep the
-- exact 30/90-day windows); only the last-visit time reads the whole history, as a single max().
WITH last_seen AS (         -- every customer with an event before the cutoff, and their last one
    SELECT c.cutoff, s.customer_id, max(s.occurred_at) AS last_at
    FROM cutoffs c JOIN sessions s ON s.occurred_at < c.cutoff
    WHERE s.customer_id IS NOT NULL
    GROUP BY c.cutoff, s.customer_id
),
ev AS (
    SELECT c.cutoff, s.customer_id, s.session_id, s.event_type,
           date_diff('second', s.occurred_at, c.cutoff) / 86400.0 AS age_days
    FROM cutoffs c JOIN sessions s
      ON s.occurred_at < c.cutoff AND s.occurred_at >= c.cutoff - INTERVAL 91 DAY
    WHERE s.customer_id IS NOT NULL
),
per_session AS (            -- sessions of the last 90 days with their funnel flags
    SELECT cutoff, customer_id, session_id,
           bool_or(event_type = 'add_to_cart') AS carted,
           bool_or(event_type = 'purchase') AS purchased
    FROM ev WHERE age_days <= 90
    GROUP BY cutoff, customer_id, session_id
),
funnel AS (
    SELECT cutoff, customer_id,
           count(*) FILTER (WHERE carted) AS carted_sessions_90d,
           count(*) FILTER (WHERE carted AND NOT purchased) AS abandoned_sessions_90d
    FROM per_session GROUP BY cutoff, customer_id
),
agg AS (
    SELECT cutoff, customer_id,
        count(DISTINCT session_id) FILTER (WHERE age_days <= 30) AS sessions_30d,
        count(DISTINCT session_id) FILTER (WHERE age_days <= 90) AS sessions_90d,
        count(*) FILTER (WHERE event_type = 'view' AND age_days <= 30) AS views_30d,
        count(*) FILTER (WHERE event_type = 'view' AND age_days <= 90) AS views_90d,
        count(*) FILTER (WHERE event_type = 'add_to_cart' AND age_days <= 90) AS add_to_cart_90d,
        count(*) FILTER (WHERE event_type = 'purchase' AND age_days <= 90) AS purchases_90d,
        count(*) FILTER (WHERE event_type = 'search' AND age_days <= 90) AS searches_90d
    FROM ev GROUP BY cutoff, customer_id
)
SELECT l.customer_id, l.cutoff AS event_timestamp,
       coalesce(a.sessions_30d, 0) AS sessions_30d, coalesce(a.sessions_90d, 0) AS sessions_90d,
       coalesce(a.views_30d, 0) AS views_30d, coalesce(a.views_90d, 0) AS views_90d,
       coalesce(a.add_to_cart_90d, 0) AS add_to_cart_90d, coalesce(a.searches_90d, 0) AS searches_90d,
       f.abandoned_sessions_90d::DOUBLE / nullif(f.carted_sessions_90d, 0) AS cart_abandonment_90d,
       a.purchases_90d::DOUBLE / nullif(a.views_90d, 0) AS view_to_purchase_90d,
       date_diff('second', l.last_at, l.cutoff) / 86400.0 AS days_since_last_session
FROM last_seen l
LEFT JOIN agg a USING (cutoff, customer_id)
LEFT JOIN funnel f USING (cutoff, customer_id)
