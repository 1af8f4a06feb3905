"""One bulk SQL query per trait family (DuckDB or ClickHouse, see traits.sql): each returns an Arrow table of
user_id plus that family's traits."""

from __future__ import annotations

from datetime import timedelta

import pyarrow as pa

from segmint.traits.config import TraitConfig
from segmint.traits.sql import Query, rule_case

RFM_FIELDS = {"rfm_recency_days", "rfm_frequency", "rfm_monetary", "rfm_r_score", "rfm_f_score", "rfm_m_score",
              "rfm_score"}
LIFECYCLE_FIELDS = {"days_since_last_activity", "days_since_first_seen", "purchases", "days_since_reactivation"}


def _rank_score(col: str, descending: bool = False) -> str:
    """Quintile score 1-5 from percent_rank: ties share the lowest rank, so equal values get equal scores."""
    order = f"{col} DESC" if descending else col
    return f"CAST(least(5, 1 + floor(5 * percent_rank() OVER (ORDER BY {order}))) AS INTEGER)"


def _threshold_score(q: Query, col: str, cuts: list[float], op: str) -> str:
    """Score 1 + number of cut-offs the value passes (`op` is <= for recency, >= otherwise)."""
    return "CAST(1" + "".join(f" + CAST({col} {op} {q.bind(c)} AS INTEGER)" for c in cuts) + " AS INTEGER)"


def rfm(q: Query, cfg: TraitConfig) -> pa.Table:
    """Recency (days since last purchase), frequency (purchases), monetary (revenue); scores, segment, tier."""
    rev = q.prop(cfg.purchase.revenue_property, "DOUBLE")
    r = cfg.rfm
    if r.method == "rank":
        rs, fs, ms = (_rank_score("rfm_recency_days", descending=True), _rank_score("rfm_frequency"),
                      _rank_score("rfm_monetary"))
    else:
        rs = _threshold_score(q, "rfm_recency_days", r.thresholds.recency_days, "<=")
        fs = _threshold_score(q, "rfm_frequency", r.thresholds.frequency, ">=")
        ms = _threshold_score(q, "rfm_monetary", r.thresholds.monetary, ">=")
    tier = rule_case(q, r.tiers, r.default_tier, RFM_FIELDS, "rfm.tiers")
    return q.run(f"""
        WITH o AS (SELECT user_id, ts, {rev} AS revenue FROM events WHERE {q.events([cfg.purchase.event])}),
        b AS (SELECT user_id, {q.days_since('max(ts)')} AS rfm_recency_days, count(*) AS rfm_frequency,
                     coalesce(sum(revenue), 0) AS rfm_monetary FROM o GROUP BY user_id),
        s AS (SELECT *, {rs} AS rfm_r_score, {fs} AS rfm_f_score, {ms} AS rfm_m_score FROM b),
        t AS (SELECT *, CAST(rfm_r_score + rfm_f_score + rfm_m_score AS INTEGER) AS rfm_score,
                     concat(rfm_r_score, rfm_f_score, rfm_m_score) AS rfm_segment FROM s)
        SELECT user_id, rfm_recency_days, rfm_frequency, rfm_monetary, rfm_r_score, rfm_f_score, rfm_m_score,
               rfm_score, rfm_segment, {tier} AS rfm_tier
        FROM t ORDER BY user_id""")


def lifecycle(q: Query, cfg: TraitConfig) -> pa.Table:
    """Lifecycle stage from activity (all events but the excluded ones), purchases and reactivation.

    Activity is first folded into hour buckets (min and max time): a gap longer than an hour only falls
    between buckets, so reactivation gaps stay exact while the window sorts far fewer rows."""
    lc = cfg.lifecycle
    excl = cfg.activity.exclude_events
    not_excl = f"AND event NOT IN {q.names(excl)}" if excl else ""
    stage = rule_case(q, lc.stages, lc.default_stage, LIFECYCLE_FIELDS, "lifecycle.stages")
    return q.run(f"""
        WITH h AS (SELECT user_id, min(ts) AS lo, max(ts) AS hi FROM events
                   WHERE user_id IS NOT NULL AND ts <= $as_of {not_excl}
                   GROUP BY user_id, date_trunc('hour', ts)),
        a AS (SELECT user_id, lo, hi, {q.lag('hi', 'PARTITION BY user_id ORDER BY lo')} AS prev FROM h),
        g AS (SELECT user_id, min(lo) AS first_ts, max(hi) AS last_ts,
                     max(CASE WHEN date_diff('second', prev, lo) / 86400.0 > {q.bind(lc.reactivation_gap_days)}
                         THEN lo END) AS reactivated_at
              FROM a GROUP BY user_id),
        p AS (SELECT user_id, count(*) AS purchases FROM events WHERE {q.events([cfg.purchase.event])}
              GROUP BY user_id),
        m AS (SELECT g.user_id, g.last_ts, g.reactivated_at, {q.days_since('g.last_ts')} AS days_since_last_activity,
                     {q.days_since('g.first_ts')} AS days_since_first_seen, coalesce(p.purchases, 0) AS purchases,
                     {q.days_since('g.reactivated_at')} AS days_since_reactivation
              FROM g LEFT JOIN p USING (user_id))
        SELECT user_id, {stage} AS lifecycle_stage, days_since_last_activity, last_ts AS last_active_at,
               reactivated_at
        FROM m ORDER BY user_id""")


def purchase_cycle(q: Query, cfg: TraitConfig) -> pa.Table:
    """Median days between purchases, their coefficient of variation, regularity, next expected, overdue; and the
    same cycle for the user's most re-bought category (consumables: seed A4), counted in purchase days."""
    c = cfg.purchase_cycle
    group = q.prop(c.group_property, "VARCHAR")
    return q.run(f"""
        WITH o AS (SELECT user_id, ts, date_diff('second', {q.lag('ts', 'PARTITION BY user_id ORDER BY ts')}, ts)
                          / 86400.0 AS gap
                   FROM events WHERE {q.events([cfg.purchase.event])}),
        g AS (SELECT user_id, count(*) AS n, max(ts) AS last_ts, {q.median('gap')} AS med,
                     CASE WHEN avg(gap) > 0 THEN stddev_pop(gap) / avg(gap) END AS cv
              FROM o GROUP BY user_id),
        pd AS (SELECT DISTINCT user_id, {group} AS grp, date_trunc('day', ts) AS d
               FROM events WHERE {q.events([c.item_event])} AND {group} IS NOT NULL),
        pg AS (SELECT user_id, grp, d,
                      date_diff('day', {q.lag('d', 'PARTITION BY user_id, grp ORDER BY d')}, d) AS gap FROM pd),
        gg AS (SELECT user_id, grp, count(*) AS n, max(d) AS last_d, {q.median('gap')} AS med FROM pg
               GROUP BY user_id, grp HAVING count(*) >= {q.bind(c.min_group_purchases)}),
        best AS (SELECT *, row_number() OVER (PARTITION BY user_id ORDER BY n DESC, last_d DESC, grp) AS rk FROM gg),
        cat AS (SELECT * FROM best WHERE rk = 1)
        SELECT coalesce(g.user_id, cat.user_id) AS user_id, g.med AS purchase_median_gap_days,
               CASE WHEN g.n >= {q.bind(c.min_purchases)} THEN g.cv END AS purchase_gap_cv,
               CASE WHEN g.n < {q.bind(c.min_purchases)} OR g.cv IS NULL THEN NULL
                    WHEN g.cv <= {q.bind(c.regular_max_cv)} THEN 'regular' ELSE 'irregular' END AS purchase_regularity,
               {q.plus_days('g.last_ts', 'g.med')} AS next_purchase_expected_at,
               {q.boolean(f"CASE WHEN g.med IS NULL THEN NULL ELSE {q.days_since('g.last_ts')} > g.med * "
                          f"{q.bind(c.overdue_factor)} END")} AS purchase_overdue,
               cat.grp AS cycle_category, CAST(cat.med AS DOUBLE) AS cycle_category_gap_days,
               {q.plus_days('cat.last_d', 'cat.med')} AS cycle_category_next_expected_at,
               {q.boolean(f"CASE WHEN cat.med IS NULL THEN NULL ELSE {q.days_since('cat.last_d')} > cat.med * "
                          f"{q.bind(c.overdue_factor)} END")} AS cycle_category_overdue
        FROM g FULL OUTER JOIN cat ON g.user_id = cat.user_id ORDER BY user_id""")


def churn(q: Query, cfg: TraitConfig) -> pa.Table:
    """Days since last visit relative to the user's median visit gap, visit trend, and a risk level."""
    ch = cfg.churn
    as_of = q.params["as_of"]
    w1, w2 = q.bind(as_of - timedelta(days=ch.window_days)), q.bind(as_of - timedelta(days=2 * ch.window_days))
    return q.run(f"""
        WITH v AS (SELECT user_id, ts, date_diff('second', {q.lag('ts', 'PARTITION BY user_id ORDER BY ts')}, ts)
                          / 86400.0 AS gap
                   FROM events WHERE {q.events([cfg.visit.event])}),
        g AS (SELECT user_id, {q.median('gap')} AS med, {q.days_since('max(ts)')} AS since,
                     count(*) FILTER (WHERE ts > {w1}) AS last_n,
                     count(*) FILTER (WHERE ts <= {w1} AND ts > {w2}) AS prev_n
              FROM v GROUP BY user_id),
        r AS (SELECT *, since / coalesce(nullif(med, 0), {q.bind(float(ch.window_days))}) AS ratio,
                     CASE WHEN prev_n > 0 THEN (last_n - prev_n) / prev_n END AS trend FROM g)
        SELECT user_id, med AS visit_median_gap_days, since AS days_since_last_visit,
               ratio AS visit_gap_ratio, last_n AS visits_last_window, prev_n AS visits_prev_window,
               trend AS activity_trend,
               CASE WHEN ratio >= {q.bind(ch.high_ratio)} OR (last_n = 0 AND prev_n > 0) THEN 'high'
                    WHEN ratio >= {q.bind(ch.medium_ratio)} OR trend <= {q.bind(ch.declining_trend)} THEN 'medium'
                    ELSE 'low' END AS churn_risk
        FROM r ORDER BY user_id""")


def channels(q: Query, cfg: TraitConfig) -> pa.Table:
    """Preferred channel: best (opens + clicks) / sent among channels with enough messages sent."""
    c = cfg.channels
    chan = q.prop(c.channel_property, "VARCHAR")
    sent = q.bind(c.sent_event)
    return q.run(f"""
        WITH m AS (SELECT user_id, event, {chan} AS channel FROM events
                   WHERE {q.events([c.sent_event, *c.engaged_events])}),
        c AS (SELECT user_id, channel, count(*) FILTER (WHERE event = {sent}) AS sent,
                     count(*) FILTER (WHERE event <> {sent}) AS engaged
              FROM m WHERE channel IS NOT NULL GROUP BY user_id, channel)
        SELECT user_id, channel AS preferred_channel, engaged / sent AS preferred_channel_rate
        FROM c WHERE sent >= {q.bind(c.min_sent)} AND engaged > 0
        QUALIFY row_number() OVER (PARTITION BY user_id ORDER BY engaged / sent DESC, sent DESC, channel) = 1
        ORDER BY user_id""")


def categories(q: Query, cfg: TraitConfig) -> pa.Table:
    """Category affinity: weighted count of views and purchases per category; the top ones."""
    c = cfg.categories
    cat = q.prop(c.property, "VARCHAR")
    weight = "CASE event " + " ".join(f"WHEN {q.bind(e)} THEN {q.bind(float(w))}" for e, w in c.weights.items()) \
        + " END"
    top, first = q.top_list("category", "score", q.bind(c.top))
    return q.run(f"""
        WITH e AS (SELECT user_id, {cat} AS category, {weight} AS w FROM events
                   WHERE {q.events(list(c.weights))}),
        s AS (SELECT user_id, category, sum(w) AS score FROM e WHERE category IS NOT NULL
              GROUP BY user_id, category)
        SELECT user_id, {top} AS top_categories, {first} AS top_category
        FROM s GROUP BY user_id ORDER BY user_id""")


def sentiment(q: Query, cfg: TraitConfig) -> pa.Table:
    """Latest NPS answer and its category; average review rating and count."""
    s = cfg.sentiment
    nps, rating = q.prop(s.nps_property, "DOUBLE"), q.prop(s.rating_property, "DOUBLE")
    return q.run(f"""
        WITH n AS (SELECT user_id, {q.arg_max('nps', 'ts')} AS nps_score FROM
                     (SELECT user_id, ts, {nps} AS nps FROM events WHERE {q.events([s.survey_event])})
                   WHERE nps IS NOT NULL GROUP BY user_id),
        r AS (SELECT user_id, avg(rating) AS avg_rating, count(rating) AS review_count FROM
                (SELECT user_id, {rating} AS rating FROM events WHERE {q.events([s.review_event])})
              WHERE rating IS NOT NULL GROUP BY user_id)
        SELECT coalesce(n.user_id, r.user_id) AS user_id, nps_score,
               CASE WHEN nps_score >= 9 THEN 'promoter' WHEN nps_score >= 7 THEN 'passive'
                    WHEN nps_score IS NOT NULL THEN 'detractor' END AS nps_category,
               avg_rating, review_count
        FROM n FULL OUTER JOIN r ON n.user_id = r.user_id ORDER BY user_id""")
