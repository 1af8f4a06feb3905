"""Campaign report per campaign x variant x segment, computed in SQL on the event store.

Inputs are plain data: the delivery ledger rows of a campaign (a pyarrow Table or a list of dicts with
campaign_id, occurrence, user_id, variant, channel, status, reason, queued_at, sent_at and an optional
segment column) and the event store. Control (holdout) rows carry the time they WOULD have been sent.

Definitions (docs/experiments.md):
- audience: every ledger row; suppressed: status suppressed (broken down by reason);
- sent: status sent, delivered or bounced (the provider accepted it); delivered: status delivered;
- open rate, CTR, unsubscribe rate: users with a message_opened / message_clicked / message_unsubscribed
  event of this campaign and variant at or after their send time (and before their next occurrence), over sent;
- measured: rows with a send time (or would-be send time) whose status is holdout, sending, sent, failed,
  delivered or bounced: the intent-to-treat base, the same rule on both sides of the experiment;
- conversion rate, revenue per recipient: over measured rows, from goal events in (send time, send time +
  attribution window]; revenue is the sum of the goal's revenue property over those events.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from segmint.analytics.uplift import GroupStats, compare_groups, sample_size_proportions
from segmint.campaigns.assignment import HOLDOUT
from segmint.errors import InvalidInput, NotFound
from segmint.segments import model as m
from segmint.segments.compile import Compiler
from segmint.store.base import EventStore

STATUSES = ("scheduled", "queued", "suppressed", "holdout", "sending", "sent", "failed", "delivered", "bounced")
MEASURED = ("holdout", "sending", "sent", "failed", "delivered", "bounced")
SENT = ("sent", "delivered", "bounced")
OPENED, CLICKED, UNSUBSCRIBED = "message_opened", "message_clicked", "message_unsubscribed"
REQUIRED = ("campaign_id", "user_id", "variant", "status")
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(m|min|h|d|w)\s*$")
_UNITS = {"m": 60, "min": 60, "h": 3600, "d": 86_400, "w": 7 * 86_400}
_TS = pa.timestamp("us")


def parse_window(value: str | timedelta) -> timedelta:
    """An attribution window from a timedelta or text like '3d', '12h', '90m', '1w'."""
    if isinstance(value, timedelta):
        window = value
    else:
        match = _DURATION.match(str(value))
        if not match:
            raise InvalidInput(f"not a duration: {value!r} (e.g. 3d, 12h, 90m, 1w)", where="window")
        window = timedelta(seconds=float(match.group(1)) * _UNITS[match.group(2)])
    if window <= timedelta(0):
        raise InvalidInput("the attribution window must be positive", where="window")
    return window


@dataclass
class Goal:
    """A campaign's conversion goal: an event with property filters, an attribution window, a revenue property."""

    event: str = "order_completed"
    where: list[m.PropertyFilter] = field(default_factory=list)
    window: timedelta = timedelta(days=3)
    revenue_property: str | None = "revenue"

    @classmethod
    def parse(cls, text: str = "order_completed", window: str | timedelta = "3d",
              revenue_property: str | None = "revenue") -> Goal:
        """A goal from segment-language text, e.g. `order_completed where revenue >= 10000, coupon_id exists`."""
        from segmint.segments.dsl import parse

        if not text or not text.strip():
            raise InvalidInput("the goal needs an event name", where="goal")
        tree = parse(f"did {text.strip()}")
        if not isinstance(tree, m.Performed) or tree.count != m.CountSpec() or not isinstance(tree.window,
                                                                                             m.EverWindow):
            raise InvalidInput("a goal is `EVENT [where FILTERS]` (no counts or windows; the window is separate)",
                               where="goal")
        return cls(tree.event, list(tree.where), parse_window(window), revenue_property or None)

    @classmethod
    def coerce(cls, goal: Any) -> Goal:
        """A Goal from this class, a mapping or any object with event/where/window/revenue_property attributes
        (such as the campaign model's goal, whose `where` is a mapping of property equals value)."""
        if goal is None:
            return cls()
        if isinstance(goal, Goal):
            return goal
        get = goal.get if isinstance(goal, Mapping) else lambda k, d=None: getattr(goal, k, d)
        event = get("event")
        if not isinstance(event, str) or not event:
            raise InvalidInput("the goal needs an event name", where="goal.event")
        where = get("where") or []
        try:
            if isinstance(where, Mapping):
                where = [m.PropertyFilter(path=[str(k)], op="eq", value=m.Value(value=v)) for k, v in where.items()]
            else:  # the segment model's property filters, as JSON or as models
                where = [f if isinstance(f, m.PropertyFilter) else m.PropertyFilter.model_validate(f) for f in where]
        except ValueError as exc:
            raise InvalidInput(f"goal filter: {exc}", where="goal.where") from None
        revenue = get("revenue_property", "revenue")
        return cls(event, list(where), parse_window(get("window") or timedelta(days=3)), revenue or None)

    def describe(self) -> dict[str, Any]:
        """JSON-ready description."""
        return {"event": self.event, "where": [f.model_dump(mode="json") for f in self.where],
                "window_seconds": self.window.total_seconds(), "revenue_property": self.revenue_property}


def _utc_naive(value: Any, where: str) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            raise InvalidInput(f"not an ISO 8601 time: {value!r}", where=where) from None
    if not isinstance(value, datetime):
        raise InvalidInput(f"expected a time, got {type(value).__name__}", where=where)
    return value.astimezone(UTC).replace(tzinfo=None) if value.tzinfo else value


def _text(table: pa.Table, name: str, default: str | None = "") -> pa.Array:
    """A column as strings (absent: the default everywhere; nulls stay null unless a default is given)."""
    if name not in table.column_names:
        return pa.array([default] * table.num_rows, pa.string())
    col = table.column(name).combine_chunks()
    if not pa.types.is_string(col.type) and not pa.types.is_large_string(col.type):
        try:
            col = pc.cast(col, pa.string())
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            raise InvalidInput(f"column {name} must hold text", where=f"recipients.{name}") from None
    col = pc.cast(col, pa.string())
    return pc.fill_null(col, default) if default is not None else col


def _times(table: pa.Table, name: str) -> pa.Array:
    """A time column as naive UTC timestamp[us] (text is read as ISO 8601; naive values are UTC)."""
    if name not in table.column_names:
        return pa.nulls(table.num_rows, _TS)
    col = table.column(name).combine_chunks()
    if pa.types.is_timestamp(col.type):
        if col.type.tz is not None:
            col = pc.cast(col, pa.timestamp("us", "UTC"))
            return pc.cast(pc.cast(col, pa.int64()), _TS)
        return pc.cast(col, _TS)
    if pa.types.is_null(col.type):
        return pa.nulls(table.num_rows, _TS)
    values = [_utc_naive(v, f"recipients[{i}].{name}") for i, v in enumerate(col.to_pylist())]
    return pa.array(values, _TS)


def _first(mask: pa.Array) -> int | None:
    """Index of the first true value of a boolean array, or None."""
    idx = np.flatnonzero(mask.to_numpy(zero_copy_only=False))
    return int(idx[0]) if len(idx) else None


def recipients_table(recipients: pa.Table | Sequence[Mapping[str, Any]]) -> pa.Table:
    """Validate ledger rows and add what the SQL needs: row id, anchor/next-occurrence times, status flags.

    Errors name the row and column. One row per (campaign, occurrence, user) is required. Vectorized with
    pyarrow: a million rows take about a second.
    """
    try:
        table = recipients if isinstance(recipients, pa.Table) else pa.Table.from_pylist(list(recipients))
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        raise InvalidInput(f"rows do not form a table (mixed types in a column?): {exc}", where="recipients") from None
    if table.num_rows == 0:
        raise InvalidInput("no recipients: the campaign has no ledger rows", where="recipients")
    missing = [c for c in REQUIRED if c not in table.column_names]
    if missing:
        raise InvalidInput(f"missing columns {missing} (need {list(REQUIRED)})", where="recipients")
    cols = {c: _text(table, c, None) for c in REQUIRED}
    for c in REQUIRED:
        bad = _first(pc.or_kleene(pc.is_null(cols[c]), pc.equal(pc.fill_null(cols[c], ""), "")))
        if bad is not None:
            raise InvalidInput(f"{c} must be a non-empty string", where=f"recipients[{bad}].{c}")
    status = cols["status"]
    bad = _first(pc.invert(pc.is_in(status, pa.array(STATUSES))))
    if bad is not None:
        raise InvalidInput(f"unknown status {status[bad].as_py()!r} (one of {', '.join(STATUSES)})",
                           where=f"recipients[{bad}].status")
    occurrence = _text(table, "occurrence")
    keys = pa.table({"c": cols["campaign_id"], "o": occurrence, "u": cols["user_id"]})
    dup = keys.group_by(["c", "o", "u"]).aggregate([([], "count_all")]).filter(pc.field("count_all") > 1)
    if dup.num_rows:
        c, o, u = dup["c"][0].as_py(), dup["o"][0].as_py(), dup["u"][0].as_py()
        rows = _first(pc.and_(pc.and_(pc.equal(keys["c"], c), pc.equal(keys["o"], o)), pc.equal(keys["u"], u)))
        raise InvalidInput(f"user {u!r} appears twice in campaign {c!r} occurrence {o!r}", where=f"recipients[{rows}]")
    anchor = pc.coalesce(_times(table, "sent_at"), _times(table, "due_at"), _times(table, "queued_at"))

    def flag(values: tuple[str, ...]) -> pa.Array:
        return pc.cast(pc.is_in(status, pa.array(values)), pa.int64())

    is_measured = flag(MEASURED)
    bad = _first(pc.and_(pc.is_null(anchor), pc.cast(is_measured, pa.bool_())))
    if bad is not None:
        raise InvalidInput(f"a {status[bad].as_py()} row needs sent_at or queued_at (control rows: the time "
                           "they would have been sent)", where=f"recipients[{bad}]")
    n = table.num_rows
    anchor_us = pc.cast(anchor, pa.int64())
    out = pa.table({
        "rid": pa.array(np.arange(n, dtype=np.int64)),
        "campaign_id": cols["campaign_id"], "occurrence": occurrence, "user_id": cols["user_id"],
        "variant": cols["variant"], "channel": _text(table, "channel"), "status": status,
        "reason": _text(table, "reason"), "segment": _text(table, "segment"), "anchor": anchor,
        "is_measured": is_measured, "is_sent": flag(SENT), "is_delivered": flag(("delivered",)),
        "is_bounced": flag(("bounced",)), "is_failed": flag(("failed",)), "is_suppressed": flag(("suppressed",)),
        "is_pending": flag(("scheduled", "queued", "sending")), "anchor_us": anchor_us,
    })
    # The next occurrence's send time of the same user and campaign bounds which opens/clicks belong to a row.
    order = pc.sort_indices(out, sort_keys=[("campaign_id", "ascending"), ("user_id", "ascending"),
                                            ("anchor_us", "ascending")])
    srt = out.take(order)
    same = np.zeros(n, dtype=bool)
    if n > 1:
        same[:-1] = (pc.equal(srt["campaign_id"][:-1], srt["campaign_id"][1:]).to_numpy(zero_copy_only=False)
                     & pc.equal(srt["user_id"][:-1], srt["user_id"][1:]).to_numpy(zero_copy_only=False))
    valid = pc.is_valid(srt["anchor_us"]).to_numpy(zero_copy_only=False)
    values = pc.fill_null(srt["anchor_us"], 0).to_numpy()
    has_next = np.zeros(n, dtype=bool)
    has_next[:-1] = same[:-1] & valid[1:]
    nxt_sorted = np.zeros(n, dtype=np.int64)
    nxt_sorted[:-1] = values[1:]
    positions = order.to_numpy()
    nxt, present = np.zeros(n, dtype=np.int64), np.zeros(n, dtype=bool)
    nxt[positions], present[positions] = nxt_sorted, has_next
    return out.append_column("next_us", pa.array(nxt, pa.int64(), mask=~present))


class DialectSql:
    """Dialect bits for the report query: placeholders, epoch micros, the recipients relation."""

    def __init__(self, dialect: str) -> None:
        self.ch = dialect == "clickhouse"
        self.params: dict[str, Any] = {}

    def param(self, name: str, value: Any, ch_type: str) -> str:
        """A named placeholder for a bound value."""
        self.params[name] = value
        return f"{{{name}:{ch_type}}}" if self.ch else f"${name}"

    def epoch_us(self, col: str) -> str:
        """Microseconds since the epoch of a timestamp column."""
        return f"toUnixTimestamp64Micro({col})" if self.ch else f"epoch_us({col})"

    @property
    def rcp(self) -> str:
        """The recipients relation as the engine sees it (see query_with_table)."""
        return "Python(_segmint_rcp)" if self.ch else "_segmint_rcp"


def report_sql(dialect: str, rcp: pa.Table, goal: Goal, typed: dict[str, str]) -> tuple[str, str, dict[str, Any]]:
    """The per-group metrics query and the suppression-reasons query for a recipients table, with parameters."""
    comp = Compiler(dialect, datetime(1970, 1, 1), dict(typed))
    q = DialectSql(dialect)
    goal_match = comp.matches("g", goal.event, goal.where, {}).sql(dialect=dialect)
    revenue = (comp.prop("g", [goal.revenue_property], "num").sql(dialect=dialect) if goal.revenue_property
               else "0")
    cid = comp.prop("e", ["campaign_id"], "str").sql(dialect=dialect)
    var = comp.prop("e", ["variant"], "str").sql(dialect=dialect)
    engagement = [comp.param(x, "str").sql(dialect=dialect) for x in (OPENED, CLICKED, UNSUBSCRIBED)]
    q.params.update(comp.params)
    bounds = pc.min_max(rcp["anchor"])
    t0 = bounds["min"].as_py() or datetime(1970, 1, 1)
    t1 = (bounds["max"].as_py() or t0) + goal.window
    ts_type = "DateTime64(6, 'UTC')"
    p_t0, p_t1 = q.param("r_t0", t0, ts_type), q.param("r_t1", t1, ts_type)
    p_win = q.param("r_win", int(goal.window.total_seconds() * 1_000_000), "Int64")
    ev_open, ev_click, ev_unsub = engagement
    sql = f"""
WITH r AS (SELECT * FROM {q.rcp}),
mr AS (SELECT rid, campaign_id, variant, user_id, anchor_us, next_us FROM r WHERE is_measured = 1),
eng AS (
  SELECT e.user_id AS user_id, e.event AS event, {cid} AS cid, {var} AS var, {q.epoch_us('e.ts')} AS t
  FROM events e
  WHERE e.event IN ({ev_open}, {ev_click}, {ev_unsub}) AND e.ts >= {p_t0}
    AND e.user_id IN (SELECT user_id FROM r)),
engr AS (
  SELECT mr.rid AS rid,
    max(CASE WHEN eng.event = {ev_open} THEN 1 ELSE 0 END) AS opened,
    max(CASE WHEN eng.event = {ev_click} THEN 1 ELSE 0 END) AS clicked,
    max(CASE WHEN eng.event = {ev_unsub} THEN 1 ELSE 0 END) AS unsubscribed
  FROM mr JOIN eng ON eng.user_id = mr.user_id
  WHERE eng.cid = mr.campaign_id AND (eng.var IS NULL OR eng.var = '' OR eng.var = mr.variant)
    AND eng.t >= mr.anchor_us AND (mr.next_us IS NULL OR eng.t < mr.next_us)
  GROUP BY mr.rid),
goal AS (
  SELECT g.user_id AS user_id, {q.epoch_us('g.ts')} AS t, {revenue} AS revenue
  FROM events g
  WHERE {goal_match} AND g.ts > {p_t0} AND g.ts <= {p_t1} AND g.user_id IN (SELECT user_id FROM mr)),
conv AS (
  SELECT mr.rid AS rid, count(*) AS n, sum(coalesce(goal.revenue, 0)) AS rev_sum
  FROM mr JOIN goal ON goal.user_id = mr.user_id
  WHERE goal.t > mr.anchor_us AND goal.t <= mr.anchor_us + {p_win}
  GROUP BY mr.rid),
per AS (
  SELECT r.campaign_id AS campaign_id, r.variant AS variant, r.segment AS segment, r.is_measured AS is_measured,
    r.is_sent AS is_sent, r.is_delivered AS is_delivered, r.is_bounced AS is_bounced, r.is_failed AS is_failed,
    r.is_suppressed AS is_suppressed, r.is_pending AS is_pending,
    coalesce(engr.opened, 0) * r.is_sent AS opened, coalesce(engr.clicked, 0) * r.is_sent AS clicked,
    coalesce(engr.unsubscribed, 0) * r.is_sent AS unsubscribed,
    CASE WHEN coalesce(conv.n, 0) > 0 THEN 1 ELSE 0 END AS converted,
    coalesce(conv.n, 0) AS conversions, CAST(coalesce(conv.rev_sum, 0) AS DOUBLE) AS rev
  FROM r LEFT JOIN engr ON engr.rid = r.rid LEFT JOIN conv ON conv.rid = r.rid)
SELECT campaign_id, variant, segment, count(*) AS audience, sum(is_suppressed) AS suppressed,
  sum(is_pending) AS pending, sum(is_measured) AS measured, sum(is_sent) AS sent,
  sum(is_delivered) AS delivered, sum(is_bounced) AS bounced, sum(is_failed) AS failed, sum(opened) AS opened,
  sum(clicked) AS clicked, sum(unsubscribed) AS unsubscribed, sum(converted) AS converted,
  sum(conversions) AS conversions, sum(rev) AS revenue, sum(rev * rev) AS revenue_sq
FROM per GROUP BY campaign_id, variant, segment ORDER BY campaign_id, segment, variant"""
    reasons = f"""SELECT campaign_id, variant, segment, reason, count(*) AS n FROM {q.rcp}
WHERE is_suppressed = 1 GROUP BY campaign_id, variant, segment, reason ORDER BY campaign_id, segment, variant, n DESC"""
    if q.ch:
        sql += " SETTINGS join_use_nulls = 1"
    return sql, reasons, q.params


def query_with_table(store: EventStore, table: pa.Table,
                     queries: Sequence[tuple[str, dict[str, Any]]]) -> list[pa.Table]:
    """Run queries that read `table` as DialectSql.rcp next to the store's events (DuckDB: a registered Arrow
    table on a private cursor; chDB: the Python() table function, which finds the local variable by name)."""
    if store.dialect == "clickhouse":
        _segmint_rcp = table  # chDB's Python() table function finds it by name in this frame
        return [store.query(sql, params) for sql, params in queries]
    cursor_of = getattr(store, "_cursor", None)
    if store.dialect != "duckdb" or cursor_of is None:
        raise InvalidInput(f"campaign reports need a DuckDB or ClickHouse store, not {store.dialect}",
                           where="store")
    cur = cursor_of()
    cur.register("_segmint_rcp", table)
    try:
        return [cur.sql(sql, params=params or None).to_arrow_table() for sql, params in queries]
    finally:
        cur.unregister("_segmint_rcp")
        cur.close()


def _rate(num: int, den: int) -> float | None:
    return num / den if den else None


@dataclass
class ReportRow:
    """Metrics of one campaign x variant x segment."""

    campaign_id: str
    variant: str
    segment: str | None
    audience: int
    suppressed: int
    suppressed_by_reason: dict[str, int]
    pending: int
    measured: int
    sent: int
    delivered: int
    bounced: int
    failed: int
    opened: int
    clicked: int
    unsubscribed: int
    converted: int
    conversions: int
    revenue: float
    revenue_sq: float
    open_rate: float | None = None
    ctr: float | None = None
    unsubscribe_rate: float | None = None
    conversion_rate: float | None = None
    revenue_per_recipient: float | None = None

    def __post_init__(self) -> None:
        self.open_rate = _rate(self.opened, self.sent)
        self.ctr = _rate(self.clicked, self.sent)
        self.unsubscribe_rate = _rate(self.unsubscribed, self.sent)
        self.conversion_rate = _rate(self.converted, self.measured)
        self.revenue_per_recipient = self.revenue / self.measured if self.measured else None

    @property
    def is_control(self) -> bool:
        """Whether this is the holdout group."""
        return self.variant == HOLDOUT

    def stats(self) -> GroupStats:
        """What the uplift functions need from this row."""
        return GroupStats(self.variant, self.measured, self.converted, self.revenue, self.revenue_sq)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (revenue_sq is internal)."""
        out = asdict(self)
        out.pop("revenue_sq")
        return out


@dataclass
class CampaignReport:
    """Rows per campaign x variant x segment, uplift comparisons and the sample size the MDE needs."""

    goal: Goal
    rows: list[ReportRow]
    comparisons: list[dict[str, Any]]
    simulated: bool = False

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"goal": self.goal.describe(), "simulated": self.simulated,
                "rows": [r.to_dict() for r in self.rows], "comparisons": self.comparisons}


def _rollup(rows: list[ReportRow]) -> list[ReportRow]:
    """Rows summed over segments (segment None), when the recipients named more than one segment."""
    groups: dict[tuple[str, str], list[ReportRow]] = {}
    for r in rows:
        groups.setdefault((r.campaign_id, r.variant), []).append(r)
    out = []
    for (cid, variant), rs in groups.items():
        reasons: dict[str, int] = {}
        for r in rs:
            for k, v in r.suppressed_by_reason.items():
                reasons[k] = reasons.get(k, 0) + v
        sums = {f: sum(getattr(r, f) for r in rs) for f in (
            "audience", "suppressed", "pending", "measured", "sent", "delivered", "bounced", "failed", "opened",
            "clicked", "unsubscribed", "converted", "conversions", "revenue", "revenue_sq")}
        out.append(ReportRow(cid, variant, None, suppressed_by_reason=reasons, **sums))
    return out


def comparisons(rows: list[ReportRow], *, alpha: float = 0.05, mde: float = 0.2) -> list[dict[str, Any]]:
    """Each variant vs control, and each pair of variants, per campaign and segment.

    Adds the users per group needed to detect a relative lift of `mde` on the baseline conversion rate.
    """
    out = []
    by_key: dict[tuple[str, str | None], list[ReportRow]] = {}
    for r in rows:
        by_key.setdefault((r.campaign_id, r.segment), []).append(r)
    for (cid, segment), rs in by_key.items():
        control = next((r for r in rs if r.is_control), None)
        variants = sorted((r for r in rs if not r.is_control), key=lambda r: r.variant)
        pairs = [(v, control) for v in variants if control is not None]
        pairs += [(a, b) for i, a in enumerate(variants) for b in variants[i + 1:]]
        for treat, base in pairs:
            cmp = compare_groups(treat.stats(), base.stats(), alpha)
            cmp.update(campaign_id=cid, segment=segment, kind="vs_control" if base.is_control else "vs_variant")
            rate = base.conversion_rate
            try:
                cmp["sample_size_per_group"] = (sample_size_proportions(rate, mde, relative=True, alpha=alpha)
                                                if rate else None)
            except InvalidInput:
                cmp["sample_size_per_group"] = None
            cmp["mde_relative"] = mde
            out.append(cmp)
    return out


def campaign_report(store: EventStore, recipients: pa.Table | Sequence[Mapping[str, Any]], goal: Any = None,
                    *, alpha: float = 0.05, mde: float = 0.2, simulated: bool = False) -> CampaignReport:
    """The report of one or more campaigns' ledger rows against the store's events (see module docstring)."""
    goal = Goal.coerce(goal)
    rcp = recipients_table(recipients)
    if store.dialect not in ("duckdb", "clickhouse"):
        raise InvalidInput(f"unknown store dialect {store.dialect!r}", where="store")
    sql, reasons_sql, params = report_sql(store.dialect, rcp, goal, store.property_columns())
    main, reasons = query_with_table(store, rcp, [(sql, params), (reasons_sql, {})])
    by_reason: dict[tuple[str, str, str], dict[str, int]] = {}
    for r in reasons.to_pylist():
        by_reason.setdefault((r["campaign_id"], r["variant"], r["segment"]), {})[r["reason"] or "unspecified"] = \
            int(r["n"])
    has_segments = bool(pc.any(pc.not_equal(rcp["segment"], "")).as_py())
    rows = []
    for r in main.to_pylist():
        key = (r["campaign_id"], r["variant"], r["segment"])
        ints = {k: int(r[k] or 0) for k in ("audience", "suppressed", "pending", "measured", "sent", "delivered",
                                             "bounced", "failed", "opened", "clicked", "unsubscribed", "converted",
                                             "conversions")}
        rows.append(ReportRow(r["campaign_id"], r["variant"], r["segment"] if has_segments else None,
                              suppressed_by_reason=by_reason.get(key, {}), revenue=float(r["revenue"] or 0),
                              revenue_sq=float(r["revenue_sq"] or 0), **ints))
    if has_segments and len({r.segment for r in rows}) > 1:
        rows += _rollup(rows)
    return CampaignReport(goal, rows, comparisons(rows, alpha=alpha, mde=mde), simulated)


def campaign_ledger(ws: Any, campaign_id: str) -> tuple[pa.Table, Any]:
    """A campaign's ledger rows and goal from the campaigns package (imported lazily: reports also run on
    plain ledger rows where that package is absent)."""
    try:
        ledger = importlib.import_module("segmint.campaigns.ledger")
        repo = importlib.import_module("segmint.campaigns.repo")
    except ImportError:
        raise InvalidInput("this install has no campaign ledger; pass the ledger rows (--recipients FILE, or "
                           "`recipients` in the request)", where="campaign") from None
    stored = repo.get_campaign(ws.appdb, campaign_id)
    goal = getattr(getattr(stored, "campaign", stored), "goal", None)
    return ledger.ledger_table(ws.appdb, campaign_id), goal


def workspace_report(ws: Any, campaign_id: str | None, recipients: Any = None, *, goal: Any = None,
                     window: str | timedelta | None = None, revenue_property: str | None = None, mde: float = 0.2,
                     alpha: float = 0.05, simulated: bool = False) -> dict[str, Any]:
    """The JSON report of a workspace's campaign: ledger from the campaigns package unless rows are given;
    `goal` (segment text or a goal mapping), `window` and `revenue_property` override the campaign's goal."""
    stored_goal: Any = None
    if recipients is None:
        if not campaign_id:
            raise InvalidInput("name a campaign or give its ledger rows", where="campaign")
        recipients, stored_goal = campaign_ledger(ws, campaign_id)
    the_goal = Goal.coerce(stored_goal)
    if isinstance(goal, str) and goal.strip():
        parsed = Goal.parse(goal)
        the_goal.event, the_goal.where = parsed.event, parsed.where
    elif goal:
        the_goal = Goal.coerce(goal)
    if window:
        the_goal.window = parse_window(window)
    if revenue_property is not None:
        the_goal.revenue_property = revenue_property or None
    if campaign_id:
        if isinstance(recipients, pa.Table):
            if "campaign_id" in recipients.column_names:
                recipients = recipients.filter(pc.equal(recipients["campaign_id"], campaign_id))
        else:
            recipients = [r for r in recipients if isinstance(r, Mapping) and r.get("campaign_id") == campaign_id]
        if (recipients.num_rows if isinstance(recipients, pa.Table) else len(recipients)) == 0:
            raise NotFound(f"no ledger rows for campaign {campaign_id!r}", where="campaign")
    return campaign_report(ws.store, recipients, the_goal, alpha=alpha, mde=mde, simulated=simulated).to_dict()
