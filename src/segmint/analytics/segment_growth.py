"""Segment growth: members, entries and exits per day from `segment_transitions`, and the 90-day backfill
that fills the chart of a new segment by one as-of evaluation per day end.

Days are calendar days of the workspace time zone. Day d covers (end of d-1, end of d], where the end of a
day is local midnight of the next day, so "members at the end of d" counts the transitions at or before
that instant and members(d) = members(d-1) + entries(d) - exits(d) holds exactly.

The backfill rule (so it never conflicts with the live path): it writes only at day ends strictly before
the segment's first non-backfill transition (the moment the live path took over), and only after the
watermark of earlier backfills (`store_state` key `segment_backfill:<name>`, written in the same
transaction as each day's transitions, so an interrupted backfill resumes where it stopped). Ids are a
hash of (segment, version, user, ts, kind), so running it again writes nothing new.
Entries and exits count only real state changes (an `enter` after no transition or an `exit`, and the
reverse), so a duplicate `enter` recorded by two paths is never counted twice."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pyarrow as pa
from sqlalchemy import Engine

from segmint.errors import InvalidInput
from segmint.segments import saved
from segmint.segments.evaluate import evaluate
from segmint.segments.static import require_duckdb
from segmint.store.base import EventStore, WriteBatch
from segmint.store.schema import TRANSITION_SCHEMA

DEFAULT_DAYS = 90
MAX_DAYS = 730
WATERMARK_KEY = "segment_backfill:"

# Transitions of one segment that change state: the tie-break at equal ts follows the segment_history view.
CHANGES_SQL = """
WITH t AS (
  SELECT user_id, ts, kind,
         lag(kind) OVER (PARTITION BY user_id ORDER BY ts, kind = 'enter', id) AS prev
  FROM segment_transitions WHERE segment = ?)
SELECT user_id, ts, kind FROM t
WHERE (kind = 'enter' AND (prev IS NULL OR prev = 'exit')) OR (kind = 'exit' AND prev = 'enter')"""


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def transition_id(segment: str, version: int, user_id: str, ts: datetime, kind: str) -> str:
    """Deterministic id of a transition: the same change recorded twice gets the same id."""
    key = "\x1f".join([segment, str(version), user_id, ts.isoformat(timespec="microseconds"), kind])
    return hashlib.sha256(key.encode()).hexdigest()[:32]


def day_end(day: date, zone: ZoneInfo) -> datetime:
    """End of a local calendar day (local midnight of the next day) as naive UTC."""
    nxt = datetime.combine(day + timedelta(days=1), datetime.min.time(), tzinfo=zone)
    return nxt.astimezone(UTC).replace(tzinfo=None)


def local_day(ts: datetime, zone: ZoneInfo) -> date:
    """The local calendar day a naive-UTC instant falls in."""
    return ts.replace(tzinfo=UTC).astimezone(zone).date()


def _check_days(days: int) -> None:
    if not 1 <= days <= MAX_DAYS:
        raise InvalidInput(f"days is {days}; expected 1..{MAX_DAYS}", where="days")


def members_at(store: EventStore, segment: str, at: datetime) -> set[str]:
    """Recorded members at a time: users whose latest transition at or before it is `enter`."""
    table = store.query(
        """SELECT user_id FROM segment_transitions WHERE segment = ? AND ts <= ?
           QUALIFY row_number() OVER (PARTITION BY user_id ORDER BY ts DESC, kind = 'enter' DESC, id DESC) = 1
           AND kind = 'enter'""", [segment, at])
    return {str(u) for u in table.column(0).to_pylist()}


def _first_live(store: EventStore, segment: str) -> datetime | None:
    row = store.query("SELECT min(ts) FROM segment_transitions WHERE segment = ? AND cause <> 'backfill'",
                      [segment]).to_pylist()[0]
    return next(iter(row.values()))


# ---------------------------------------------------------------- backfill


@dataclass
class BackfillResult:
    """What one backfill run did."""

    segment: str
    version: int
    days: int
    evaluated: int  # day ends evaluated (one as-of evaluation each)
    entries: int
    exits: int
    first: datetime | None
    last: datetime | None
    live_since: datetime | None
    skipped: str | None = None  # why nothing was evaluated

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return asdict(self)


def _transition_table(segment: str, version: int, at: datetime, entered: list[str], exited: list[str],
                      recorded: datetime) -> pa.Table | None:
    """`backfill` transitions at one instant as an Arrow table in TRANSITION_SCHEMA (None when there are none)."""
    n = len(entered) + len(exited)
    if not n:
        return None
    users = entered + exited
    kinds = ["enter"] * len(entered) + ["exit"] * len(exited)
    return pa.table({
        "id": [transition_id(segment, version, u, at, k) for u, k in zip(users, kinds, strict=True)],
        "segment": [segment] * n, "version": pa.array([version] * n, pa.int32()), "user_id": users,
        "ts": pa.array([at] * n, pa.timestamp("us")), "kind": kinds, "cause": ["backfill"] * n,
        "recorded_at": pa.array([recorded] * n, pa.timestamp("us")),
    }, schema=TRANSITION_SCHEMA)


def backfill_points(zone: ZoneInfo, days: int, now: datetime, live_since: datetime | None,
                    watermark: datetime | None) -> list[datetime]:
    """Day ends to evaluate: the end of the day before the window (the baseline) and of each complete day of
    the window, all before the first live transition and after the last backfilled point."""
    today = local_day(now, zone)
    ends = [day_end(today - timedelta(days=k), zone) for k in range(days, 0, -1)]
    return [t for t in ends if t <= now and (live_since is None or t < live_since)
            and (watermark is None or t > watermark)]


def backfill(engine: Engine, store: EventStore, name: str, *, zone: ZoneInfo, days: int = DEFAULT_DAYS,
             now: datetime | None = None, progress: Callable[[int, int], None] | None = None) -> BackfillResult:
    """Record `backfill` transitions for a dynamic segment over the last `days` days: one as-of evaluation of
    the current version at each day end, diffed with the day before (see the module docstring for the rule)."""
    _check_days(days)
    require_duckdb(store, "segment backfill")
    seg = saved.get_segment(engine, name)
    if seg.kind == "static":
        raise InvalidInput(f"segment {name!r} is static: its members never change, there is nothing to backfill",
                           where="name")
    now = now or _now()
    live = _first_live(store, name)
    mark = store.get_state(WATERMARK_KEY + name)
    watermark = datetime.fromisoformat(mark) if mark else None
    points = backfill_points(zone, days, now, live, watermark)
    result = BackfillResult(name, seg.version, days, 0, 0, 0, None, None, live)
    if not points:
        result.skipped = "already backfilled up to the last complete day" if watermark else \
            "the live path has recorded membership since before the window"
        return result
    tree = saved.segment_tree(engine, name)
    state = members_at(store, name, points[0])
    recorded = _now()
    for i, at in enumerate(points):
        current = set(saved.guarded(evaluate, store, tree, at))
        entered, exited = sorted(current - state), sorted(state - current)
        # One transaction per day end, watermark included: an interrupted backfill resumes after the last
        # day it wrote, and memory holds one day's differences at a time.
        store.write(WriteBatch(transitions=_transition_table(name, seg.version, at, entered, exited, recorded),
                               state={WATERMARK_KEY + name: at.isoformat()}))
        result.entries += len(entered)
        result.exits += len(exited)
        state = current
        if progress is not None:
            progress(i + 1, len(points))
    result.evaluated, result.first, result.last = len(points), points[0], points[-1]
    return result


# ---------------------------------------------------------------- growth


@dataclass
class GrowthDay:
    """One local calendar day of a segment's size."""

    day: date
    members: int  # at the end of the day (or now, for today)
    entries: int
    exits: int


@dataclass
class Growth:
    """Members, entries and exits per day over a window of days."""

    segment: str
    timezone: str
    days: list[GrowthDay] = field(default_factory=list)
    backfilled_until: datetime | None = None
    live_since: datetime | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return asdict(self)


def growth(engine: Engine, store: EventStore, name: str, *, zone: ZoneInfo, days: int = DEFAULT_DAYS,
           now: datetime | None = None) -> Growth:
    """Members at each day end and entries/exits per day for the last `days` local days (today included)."""
    _check_days(days)
    require_duckdb(store, "segment growth")
    frozen = saved.static_members(engine, name)  # NotFound for an unknown name
    if frozen is not None:
        raise InvalidInput(f"segment {name!r} is static: its {len(frozen):,} members never change", where="name")
    now = now or _now()
    today = local_day(now, zone)
    first_day = today - timedelta(days=days - 1)
    start = day_end(first_day - timedelta(days=1), zone)
    his = [day_end(first_day + timedelta(days=k), zone) for k in range(days)]
    los = [start, *his[:-1]]
    # Bucket -1 holds every change up to the window's start (the members it starts with); one pass in all.
    per_day = store.query(
        f"""WITH c AS ({CHANGES_SQL}),
        d AS (SELECT unnest(?::TIMESTAMP[]) AS lo, unnest(?::TIMESTAMP[]) AS hi, unnest(?::INTEGER[]) AS i)
        SELECT d.i, count(*) FILTER (WHERE c.kind = 'enter') AS entries,
               count(*) FILTER (WHERE c.kind = 'exit') AS exits
        FROM c JOIN d ON c.ts > d.lo AND c.ts <= d.hi GROUP BY d.i""",
        [name, [datetime.min, *los], [start, *his], [-1, *range(days)]]).to_pylist()
    counts = {int(r["i"]): (int(r["entries"]), int(r["exits"])) for r in per_day}
    before = counts.pop(-1, (0, 0))
    members = before[0] - before[1]
    out = Growth(name, zone.key)
    for k in range(days):
        ent, ex = counts.get(k, (0, 0))
        members += ent - ex
        out.days.append(GrowthDay(first_day + timedelta(days=k), members, ent, ex))
    mark = store.get_state(WATERMARK_KEY + name)
    out.backfilled_until = datetime.fromisoformat(mark) if mark else None
    out.live_since = _first_live(store, name)
    return out
