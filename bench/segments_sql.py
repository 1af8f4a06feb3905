"""Hand-written SQL for the benchmarked segments (A1-A4 advanced, RFM top tier), DuckDB and ClickHouse.

Each query returns exactly the members the segment language gives for the segment of the same key in
`bench/segments.py` (the benchmark asserts the sets are equal), written the way a careful analyst would:
one pass with conditional counts where the conditions are per user, pre-aggregated per (user, product)
or (user, category) tables joined together for the correlated A2/A4. They read the store's typed
property columns (`p_product_id`, `p_category`, `p_revenue`: the demo taxonomy makes them columns).
Windows follow docs/segment-language.md: `in last d` is `now - d < ts <= now`, `at least d ago` is
`ts <= now - d`, a month is 30 days. Parameters: now, d3 (now - 3 days), w2 (now - 14 days),
m1 (now - 30 days), m3 (now - 90 days).
"""

from __future__ import annotations

from datetime import datetime, timedelta

DUCKDB: dict[str, str] = {
    "A1": """
        SELECT user_id FROM events
        WHERE event IN ('coupon_downloaded', 'app_opened', 'product_viewed', 'cart_added')
          AND ts <= $now AND user_id IS NOT NULL
          AND user_id IN (SELECT user_id FROM profiles)
        GROUP BY user_id
        HAVING count_if(event = 'coupon_downloaded') = 0
           AND count_if(event = 'app_opened' AND ts > $m1) >= 1
           AND count_if(event = 'product_viewed' AND ts > $m1) >= 2
           AND count_if(event = 'cart_added' AND ts > $m1) >= 1""",
    "A2": """
        WITH c AS (
          SELECT user_id, p_product_id AS pid, p_category AS cat, max(ts) AS cts FROM events
          WHERE event = 'cart_added' AND ts <= $d3 AND user_id IS NOT NULL GROUP BY ALL),
        b AS (
          SELECT user_id, p_product_id AS pid, max(ts) AS last_buy FROM events
          WHERE event = 'product_purchased' AND ts <= $now AND user_id IS NOT NULL AND p_product_id IS NOT NULL
          GROUP BY ALL),
        v AS (
          SELECT user_id, p_category AS cat FROM events
          WHERE event = 'product_viewed' AND ts <= $now AND user_id IS NOT NULL AND p_category IS NOT NULL
          GROUP BY ALL HAVING count(*) >= 2),
        r AS (
          SELECT DISTINCT user_id, p_product_id AS pid FROM events
          WHERE event = 'review_viewed' AND ts <= $now AND user_id IS NOT NULL AND p_product_id IS NOT NULL)
        SELECT DISTINCT c.user_id FROM c
        JOIN v ON v.user_id = c.user_id AND v.cat = c.cat
        LEFT JOIN b ON b.user_id = c.user_id AND b.pid = c.pid
        ANTI JOIN r ON r.user_id = c.user_id AND r.pid = c.pid
        SEMI JOIN profiles p ON p.user_id = c.user_id
        WHERE b.last_buy IS NULL OR b.last_buy <= c.cts""",
    "A3": """
        SELECT user_id FROM events
        WHERE event IN ('app_opened', 'order_completed', 'comment_event_joined')
          AND ts <= $now AND user_id IS NOT NULL
          AND user_id IN (SELECT user_id FROM profiles)
        GROUP BY user_id
        HAVING count_if(event = 'app_opened' AND ts > $m1) = 0
           AND count_if(event = 'order_completed' AND ts > $m1) = 0
           AND count_if(event = 'comment_event_joined') >= 1
           AND count_if(event = 'order_completed' AND ts > $m3) >= 1""",
    "A4": """
        WITH lo AS (
          SELECT user_id FROM events WHERE event = 'order_completed' AND ts <= $now AND user_id IS NOT NULL
          GROUP BY user_id HAVING max(ts) <= $m1),
        pp AS (
          SELECT user_id, p_product_id AS pid, p_category AS cat, count(*) AS n FROM events
          WHERE event = 'product_purchased' AND ts <= $now AND user_id IS NOT NULL AND p_product_id IS NOT NULL
          GROUP BY ALL),
        rep AS (SELECT user_id, pid, cat FROM pp QUALIFY sum(n) OVER (PARTITION BY user_id, pid) >= 2),
        recent AS (
          SELECT DISTINCT user_id, p_category AS cat FROM events
          WHERE event = 'product_viewed' AND ts > $w2 AND ts <= $now AND user_id IS NOT NULL)
        SELECT DISTINCT r.user_id FROM rep r
        SEMI JOIN lo ON lo.user_id = r.user_id
        ANTI JOIN recent v ON v.user_id = r.user_id AND v.cat = r.cat
        SEMI JOIN profiles p ON p.user_id = r.user_id""",
    "RFM": """
        SELECT user_id FROM events
        WHERE event = 'order_completed' AND ts <= $now AND user_id IS NOT NULL
          AND user_id IN (SELECT user_id FROM profiles)
        GROUP BY user_id
        HAVING max(ts) > $m1
           AND count_if(ts > $m3) >= 3
           AND coalesce(sum(p_revenue) FILTER (WHERE ts > $m3), 0) >= 300000""",
}

_T = "DateTime64(6, 'UTC')"
CLICKHOUSE: dict[str, str] = {
    "A1": f"""
        SELECT user_id FROM events
        WHERE event IN ('coupon_downloaded', 'app_opened', 'product_viewed', 'cart_added')
          AND ts <= {{now:{_T}}} AND user_id IS NOT NULL
          AND user_id IN (SELECT user_id FROM profiles)
        GROUP BY user_id
        HAVING countIf(event = 'coupon_downloaded') = 0
           AND countIf(event = 'app_opened' AND ts > {{m1:{_T}}}) >= 1
           AND countIf(event = 'product_viewed' AND ts > {{m1:{_T}}}) >= 2
           AND countIf(event = 'cart_added' AND ts > {{m1:{_T}}}) >= 1""",
    "A2": f"""
        WITH c AS (
          SELECT user_id, p_product_id AS pid, p_category AS cat, max(ts) AS cts FROM events
          WHERE event = 'cart_added' AND ts <= {{d3:{_T}}} AND user_id IS NOT NULL GROUP BY user_id, pid, cat),
        b AS (
          SELECT user_id, p_product_id AS pid, max(ts) AS last_buy FROM events
          WHERE event = 'product_purchased' AND ts <= {{now:{_T}}} AND user_id IS NOT NULL
            AND p_product_id IS NOT NULL
          GROUP BY user_id, pid),
        v AS (
          SELECT user_id, p_category AS cat FROM events
          WHERE event = 'product_viewed' AND ts <= {{now:{_T}}} AND user_id IS NOT NULL AND p_category IS NOT NULL
          GROUP BY user_id, cat HAVING count() >= 2),
        r AS (
          SELECT DISTINCT user_id, p_product_id AS pid FROM events
          WHERE event = 'review_viewed' AND ts <= {{now:{_T}}} AND user_id IS NOT NULL
            AND p_product_id IS NOT NULL)
        SELECT DISTINCT c.user_id FROM c
        LEFT JOIN b ON b.user_id = c.user_id AND b.pid = c.pid
        WHERE (c.user_id, c.cat) IN (SELECT user_id, cat FROM v)
          AND (c.user_id, ifNull(c.pid, '')) NOT IN (SELECT user_id, pid FROM r)
          AND (b.last_buy IS NULL OR b.last_buy <= c.cts)
          AND c.user_id IN (SELECT user_id FROM profiles)
        SETTINGS join_use_nulls = 1""",
    "A3": f"""
        SELECT user_id FROM events
        WHERE event IN ('app_opened', 'order_completed', 'comment_event_joined')
          AND ts <= {{now:{_T}}} AND user_id IS NOT NULL
          AND user_id IN (SELECT user_id FROM profiles)
        GROUP BY user_id
        HAVING countIf(event = 'app_opened' AND ts > {{m1:{_T}}}) = 0
           AND countIf(event = 'order_completed' AND ts > {{m1:{_T}}}) = 0
           AND countIf(event = 'comment_event_joined') >= 1
           AND countIf(event = 'order_completed' AND ts > {{m3:{_T}}}) >= 1""",
    "A4": f"""
        WITH pp AS (
          SELECT user_id, p_product_id AS pid, p_category AS cat FROM events
          WHERE event = 'product_purchased' AND ts <= {{now:{_T}}} AND user_id IS NOT NULL
            AND p_product_id IS NOT NULL),
        rep AS (
          SELECT user_id, pid FROM pp GROUP BY user_id, pid HAVING count() >= 2),
        recent AS (
          SELECT DISTINCT user_id, p_category AS cat FROM events
          WHERE event = 'product_viewed' AND ts > {{w2:{_T}}} AND ts <= {{now:{_T}}} AND user_id IS NOT NULL
            AND p_category IS NOT NULL)
        SELECT DISTINCT user_id FROM pp
        WHERE (user_id, pid) IN (SELECT user_id, pid FROM rep)
          AND (user_id, ifNull(cat, '')) NOT IN (SELECT user_id, cat FROM recent)
          AND user_id IN (
            SELECT user_id FROM events WHERE event = 'order_completed' AND ts <= {{now:{_T}}}
              AND user_id IS NOT NULL GROUP BY user_id HAVING max(ts) <= {{m1:{_T}}})
          AND user_id IN (SELECT user_id FROM profiles)""",
    "RFM": f"""
        SELECT user_id FROM events
        WHERE event = 'order_completed' AND ts <= {{now:{_T}}} AND user_id IS NOT NULL
          AND user_id IN (SELECT user_id FROM profiles)
        GROUP BY user_id
        HAVING max(ts) > {{m1:{_T}}}
           AND countIf(ts > {{m3:{_T}}}) >= 3
           AND sumIf(ifNull(p_revenue, 0), ts > {{m3:{_T}}}) >= 300000""",
}


def params(now: datetime) -> dict[str, datetime]:
    """The bound parameters of the hand-written queries."""
    return {
        "now": now,
        "d3": now - timedelta(days=3),
        "w2": now - timedelta(days=14),
        "m1": now - timedelta(days=30),
        "m3": now - timedelta(days=90),
    }



def bound(sql: str, values: dict[str, datetime]) -> dict[str, datetime]:
    """The parameters a query uses ($name in DuckDB, {name:Type} in ClickHouse)."""
    return {k: v for k, v in values.items() if f"${k}" in sql or f"{{{k}:" in sql}
