"""Per-member next-change timers of live segments: when each user's membership can next change by time alone.

A dynamic segment whose tree allows it (`uncovered` is None) gets, per user, the next instant after now at
which their as-of result can change with no new event ("did app_open in last 14 days" ends at the last
app_open + 14 days). The live engine fires due timers within about a second, re-evaluates only those users
as of the due time, and records the change with cause `time` at that exact instant; sweeps stay the safety net.

Where due times come from:
- `DueQuery`, one bulk DuckDB query per segment (after every sweep and edit evaluation, and restricted to
  the touched users on the per-user path). Leaves with an exact rule: performed / did not perform E (no
  property filter with a non-literal operand) in the last d -> latest E + d; in the last d at least n times,
  or at least d ago -> earliest E inside the window + d; first/last E within / at least d ago -> first or
  last E + d; profile field or date trait within / older than d -> that date + d (or the date itself when it
  lies ahead). Any other node with durations (sequences, `with` anchors, aggregates, filters comparing with
  traits or aggregates, `each`) contributes the earliest event of its names inside each of its spans + that
  span: a lower bound. A tree's due time is the earliest of its leaves' (and of a future-dated event): a
  lower bound of its next change, exact for a single exact leaf. A timer that fires early finds no change
  and is set again from the exact per-user computation.
- `live_times.next_change`, per user with their events loaded (when a timer fires): the reference
  evaluator at each candidate instant, the exact next change.

Due times are kept in memory (a heap) and in the app DB table `live_timers` (flushed about once a second):
a restart fires the timers that fell due while it was down. Losing the last second of timer updates in a
kill -9 loses nothing: at start every timed segment's timers are also recomputed as of its last sweep (or
the ingest catch-up start) and the earlier due time per user kept; a fired timer replays its user exactly
from the due time, and transitions have deterministic ids (a timer that fires twice records once).
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import DateTime, Engine, Integer, String, delete, insert, select
from sqlalchemy.orm import Mapped, Session, mapped_column
from sqlglot import exp

from segmint.appdb.base import Base
from segmint.segments import model as m
from segmint.segments.compile import Compiler, Scope, UnsupportedInSQL, _existence
from segmint.segments.live_sql import users_query
from segmint.segments.live_times import _nodes, footprint

_LITERALS = (m.Value, m.ValueList, m.DateTimeValue)
_PROBE = datetime(1987, 7, 13, 3, 17, 29)  # the compiler's as-of time: no parameter built here depends on it
DB_CHUNK = 500


def uncovered(tree: m.Condition) -> str | None:
    """Why a tree gets no timers (the sweep finds its time-driven changes), or None when it does."""
    for n in _nodes(tree):
        if isinstance(n, m.CalendarWindow):
            return "calendar windows (today, this week, this month) change at local midnights"
        if isinstance(n, m.IntervalRatio):
            return "an interval ratio changes at a time no candidate lists"
        if isinstance(n, m.Performed) and n.new_profiles == "exclude" and not isinstance(n.window, m.EverWindow):
            return "'new profiles excluded' depends on when the profile starts"
    fp = footprint(tree)
    if not fp.durations:
        return "nothing in it changes with time alone (no relative window or duration)"
    return None


# ---------------------------------------------------------------- the bulk due query


@dataclass
class DueQuery:
    """Per user, the earliest instant after $t_now at which a tree's result can change by time (DuckDB SQL)."""

    sql: str
    static: dict[str, Any]  # the filters' bound values
    spans: list[timedelta]  # $t_d<i> = spans[i], $t_lo<i> = now - spans[i]

    def at(self, now: datetime) -> tuple[str, dict[str, Any]]:
        """(sql, params) as of a time (naive UTC)."""
        p = dict(self.static)
        p["t_now"] = now
        for i, d in enumerate(self.spans):
            p[f"t_d{i}"] = d
            p[f"t_lo{i}"] = now - d
        return self.sql, p


@dataclass
class _Builder:
    typed: dict[str, str]
    tz: str
    comp: Compiler = field(init=False)
    aggs: list[str] = field(default_factory=list)  # over events AS e, grouped by user
    prof: list[str] = field(default_factory=list)  # over profiles AS p
    names: set[str] = field(default_factory=set)
    spans: dict[timedelta, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.comp = Compiler("duckdb", _PROBE, dict(self.typed), workspace_tz=self.tz)

    def span(self, d: timedelta) -> tuple[str, str]:
        i = self.spans.setdefault(d, len(self.spans))
        return f"$t_lo{i}", f"$t_d{i}"

    def named(self, names: set[str]) -> str:
        self.names |= names
        return "e.event IN (" + ", ".join(self.comp.param(n, "str").sql("duckdb") for n in sorted(names)) + ")"

    def match(self, event: str, where: list[m.PropertyFilter]) -> str | None:
        """The SQL of `event where filters` on alias e, None when a filter compares with a non-literal."""
        if any(not isinstance(v, _LITERALS) for f in where for v in (f.value, f.value2) if v is not None):
            return None
        try:
            sql = self.comp.matches("e", event, where, Scope()).sql("duckdb")
        except UnsupportedInSQL:  # the event name alone: a superset, fine for the earliest-event bound
            return None
        self.names.add(event)
        return sql

    def walk(self, c: Any) -> None:
        if isinstance(c, m.And | m.Or):
            for item in c.items:
                self.walk(item)
        elif isinstance(c, m.Not):
            self.walk(c.item)
        elif isinstance(c, m.TraitCondition):
            self.trait(c)
        elif isinstance(c, m.Performed) and isinstance(c.window, m.LastWindow | m.AgoWindow):
            lo, d = self.span(c.window.duration.to_timedelta())
            mt = self.match(c.event, c.where)
            exact = isinstance(c.window, m.LastWindow) and mt is not None and _existence(c.count)
            mt = mt or self.named({c.event})
            # existence in the last d ends (or "did not" begins) when the latest one leaves the window;
            # otherwise the earliest one inside the window leaves (last d) or enters (at least d ago) first
            fn = "max" if exact else "min"
            self.aggs.append(f"{fn}(e.ts) FILTER (WHERE {mt} AND e.ts > {lo} AND e.ts <= $t_now) + {d}")
        elif isinstance(c, m.FirstCondition | m.LastCondition) and isinstance(c.window, m.LastWindow | m.AgoWindow):
            mt = self.match(c.event, c.where)
            if mt is None:
                self.generic(c)
                return
            lo, d = self.span(c.window.duration.to_timedelta())
            x = f"{'min' if c.kind == 'first' else 'max'}(e.ts) FILTER (WHERE {mt} AND e.ts <= $t_now)"
            self.aggs.append(f"CASE WHEN {x} > {lo} THEN {x} + {d} END")
        elif isinstance(c, m.Performed | m.FirstCondition | m.LastCondition) and \
                isinstance(c.window, m.EverWindow | m.BetweenWindow):
            return  # moves only when events arrive
        else:
            self.generic(c)

    def trait(self, c: m.TraitCondition) -> None:
        if c.op not in ("within_last", "older_than"):
            return  # compared with constants: moves only when the trait does
        if c.source == "profile":
            t = exp.column(c.name, table="p").sql("duckdb")  # first_seen / last_seen
        else:
            text = self.comp.value_as(exp.column("traits", table="p"), [c.name], "str", None)
            t = f"make_timestamp({self.comp.date_us(text).sql('duckdb')})"
        lo, d = self.span(c.duration.to_timedelta())  # type: ignore[union-attr]
        self.prof.append(f"CASE WHEN {t} > $t_now THEN {t} WHEN {t} > {lo} THEN {t} + {d} END")

    def generic(self, c: Any) -> None:
        """Any node: its events inside each of its spans leave or enter them at ts + span (a lower bound)."""
        fp = footprint(c)
        if fp.events:
            for span in sorted(fp.durations):
                lo, d = self.span(span)
                self.aggs.append(f"min(e.ts) FILTER (WHERE {self.named(fp.events)} AND e.ts > {lo} "
                                 f"AND e.ts <= $t_now) + {d}")
        for n in _nodes(c):
            if isinstance(n, m.TraitCondition):
                self.trait(n)

    def build(self, tree: m.Condition) -> DueQuery:
        self.walk(tree)
        if self.names:  # an event dated ahead of now enters at its own time
            self.aggs.append("min(e.ts) FILTER (WHERE e.ts > $t_now)")
        cols = [f"a.c{i}" for i in range(len(self.aggs))] + self.prof
        least = cols[0] if len(cols) == 1 else "least(" + ", ".join(cols) + ")"
        sub = ""
        if self.aggs:
            sel = ", ".join(f"{a} AS c{i}" for i, a in enumerate(self.aggs))
            sub = (f"(SELECT e.user_id AS user_id, {sel} FROM events AS e WHERE e.user_id IS NOT NULL AND "
                   f"{self.named(self.names)} GROUP BY e.user_id) AS a")
        if self.aggs and not self.prof:
            inner = f"SELECT a.user_id AS user_id, {least} AS due FROM {sub}"
        elif self.aggs:
            inner = (f"SELECT p.user_id AS user_id, {least} AS due FROM profiles AS p LEFT JOIN {sub} "
                     "ON a.user_id = p.user_id")
        else:
            inner = f"SELECT p.user_id AS user_id, {least} AS due FROM profiles AS p"
        sql = f"SELECT q.user_id, q.due FROM ({inner}) AS q WHERE q.due IS NOT NULL"
        ordered = sorted(self.spans, key=self.spans.__getitem__)
        return DueQuery(sql, dict(self.comp.params), ordered)


def due_query(tree: m.Condition, *, typed: dict[str, str] | None = None, workspace_tz: str = "Asia/Seoul") -> DueQuery:
    """The bulk due query of a covered tree (see the module docstring for the rule of each node)."""
    return _Builder(dict(typed or {}), workspace_tz).build(tree)


def dues_query(parts: list[tuple[str, str, dict[str, Any], list[str]]]) -> tuple[str, dict[str, Any]]:
    """Several due queries (key, sql, params, users), each over its own users, in one query: rows (s, user_id,
    due), s = the part's position (`live_sql.users_query` with the due column)."""
    return users_query(parts, extra=("due",))


# ---------------------------------------------------------------- durable timers


class LiveTimerRow(Base):
    """One user's next possible membership change in one dynamic segment (version + definition digest)."""

    __tablename__ = "live_timers"
    segment: Mapped[str] = mapped_column(String(128), primary_key=True)
    user_id: Mapped[str] = mapped_column(String, primary_key=True)
    version: Mapped[int] = mapped_column(Integer)
    digest: Mapped[str] = mapped_column(String(64))
    due: Mapped[datetime] = mapped_column(DateTime)


def ensure_table(engine: Engine) -> None:
    """Create the timers table when missing."""
    LiveTimerRow.__table__.create(engine, checkfirst=True)  # type: ignore[attr-defined]


def _insert(s: Session, rows: list[dict[str, Any]]) -> None:
    """Insert timer rows: on SQLite straight through the driver (SQLAlchemy's per-row parameter processing
    cost ~20 µs a row, 2 s for 100k timers), with times in the text form its DateTime type reads back."""
    con = s.connection()
    if con.dialect.name != "sqlite":
        con.execute(insert(LiveTimerRow.__table__), rows)
        return
    con.exec_driver_sql(
        "INSERT INTO live_timers (segment, user_id, version, digest, due) VALUES (?, ?, ?, ?, ?)",
        [(r["segment"], r["user_id"], r["version"], r["digest"], r["due"].strftime("%Y-%m-%d %H:%M:%S.%f"))
         for r in rows])


class Timers:
    """Due times per (segment, user) in memory (a heap for the earliest), mirrored to `live_timers`."""

    def __init__(self, appdb: Engine) -> None:
        self.appdb = appdb
        self.due: dict[str, dict[str, tuple[datetime, datetime]]] = {}  # segment -> user -> (due, computed at)
        self.meta: dict[str, tuple[int, str]] = {}  # segment -> (version, digest) its timers belong to
        self._heap: list[tuple[datetime, str, str]] = []
        self._dirty: dict[str, set[str]] = {}  # segment -> users whose row must be rewritten
        self._reset: set[str] = set()  # segments whose rows must all be rewritten
        # segment -> user -> when their timer was cleared (fired with no next change): a bulk computation
        # older than that must not bring it back
        self._cleared: dict[str, dict[str, datetime]] = {}

    def __len__(self) -> int:
        return sum(len(d) for d in self.due.values())

    def load(self, tracked: dict[str, tuple[int, str]]) -> int:
        """Read the stored timers of the tracked segments' current definitions; drop the others. Returns how
        many were loaded."""
        ensure_table(self.appdb)
        with Session(self.appdb) as s:
            rows = s.execute(select(LiveTimerRow.segment, LiveTimerRow.user_id, LiveTimerRow.version,
                                    LiveTimerRow.digest, LiveTimerRow.due)).all()
        stale: set[str] = set()
        n = 0
        for seg, user, version, digest, due in rows:
            if tracked.get(seg) != (version, digest):
                stale.add(seg)
                continue
            self.meta[seg] = (version, digest)
            self._put(seg, user, due, datetime.min)
            n += 1
        if stale:
            with Session(self.appdb) as s, s.begin():
                for seg in stale:
                    if seg in self.meta:  # mixed versions (a crash mid-rewrite): keep only the current ones
                        s.execute(delete(LiveTimerRow).where(LiveTimerRow.segment == seg,
                                                             LiveTimerRow.version != self.meta[seg][0]))
                        s.execute(delete(LiveTimerRow).where(LiveTimerRow.segment == seg,
                                                             LiveTimerRow.digest != self.meta[seg][1]))
                    else:
                        s.execute(delete(LiveTimerRow).where(LiveTimerRow.segment == seg))
        return n

    def _put(self, seg: str, user: str, due: datetime, at: datetime) -> None:
        self.due.setdefault(seg, {})[user] = (due, at)
        heapq.heappush(self._heap, (due, seg, user))

    def set(self, seg: str, version: int, digest: str, dues: dict[str, datetime | None], at: datetime) -> None:
        """Set (or clear, None) some users' timers, computed as of `at`."""
        if self.meta.get(seg) != (version, digest):
            self.drop(seg)
            self.meta[seg] = (version, digest)
        mine = self.due.setdefault(seg, {})
        dirty = self._dirty.setdefault(seg, set())
        for user, due in dues.items():
            cur = mine.get(user)
            if due is None:
                if cur is None or cur[1] <= at:
                    self._cleared.setdefault(seg, {})[user] = at
                if cur is not None and cur[1] <= at:
                    del mine[user]
                    dirty.add(user)
            elif cur is not None and cur[0] == due:
                mine[user] = (due, max(at, cur[1]))
            elif cur is None or cur[1] <= at:
                self._put(seg, user, due, at)
                dirty.add(user)
        self._compact()

    def replace(self, seg: str, version: int, digest: str, dues: dict[str, datetime], at: datetime) -> None:
        """A bulk computation as of `at`: every user's timer, except users whose timer was set after `at` and
        users whose timer fell due by `at` without firing yet (the bulk sees only changes after `at`; firing
        replays them from their due time)."""
        if self.meta.get(seg) != (version, digest):
            self.drop(seg)
        old = self.due.get(seg, {})
        keep = {u for u, (due, when) in old.items() if when > at or due <= at}
        cleared = self._cleared.pop(seg, {})
        keep |= {u for u, when in cleared.items() if when > at}
        self._cleared[seg] = {u: when for u, when in cleared.items() if when > at}  # older ones are moot now
        gone = {u: None for u in old if u not in dues and u not in keep}
        self.set(seg, version, digest, {**{u: d for u, d in dues.items() if u not in keep}, **gone}, at)

    def drop(self, seg: str) -> None:
        """Forget a segment's timers (edited or deleted); its rows go at the next flush."""
        self._cleared.pop(seg, None)
        if seg in self.due or seg in self.meta:
            self.due.pop(seg, None)
            self.meta.pop(seg, None)
            self._dirty.pop(seg, None)
            self._reset.add(seg)

    def pop_due(self, now: datetime, limit: int | None = None) -> list[tuple[str, str, datetime]]:
        """Remove and return the timers due at or before now (at most `limit`): (segment, user, due), earliest
        first."""
        out: list[tuple[str, str, datetime]] = []
        while self._heap and self._heap[0][0] <= now and (limit is None or len(out) < limit):
            due, seg, user = heapq.heappop(self._heap)
            cur = self.due.get(seg, {}).get(user)
            if cur is not None and cur[0] == due:
                del self.due[seg][user]
                self._dirty.setdefault(seg, set()).add(user)
                out.append((seg, user, due))
        return out

    def pop_users(self, users: set[str], now: datetime) -> list[tuple[str, str, datetime]]:
        """Remove and return these users' timers due at or before now, in every segment."""
        out: list[tuple[str, str, datetime]] = []
        for seg, mine in self.due.items():
            for user in users & mine.keys():
                due = mine[user][0]
                if due <= now:
                    del mine[user]
                    self._dirty.setdefault(seg, set()).add(user)
                    out.append((seg, user, due))
        return sorted(out, key=lambda x: x[2])

    def next_due(self) -> datetime | None:
        """The earliest live timer (stale heap entries skipped)."""
        while self._heap:
            due, seg, user = self._heap[0]
            cur = self.due.get(seg, {}).get(user)
            if cur is not None and cur[0] == due:
                return due
            heapq.heappop(self._heap)
        return None

    def _compact(self) -> None:
        if len(self._heap) > 2 * len(self) + 10_000:
            self._heap = [(d, s, u) for s, users in self.due.items() for u, (d, _) in users.items()]
            heapq.heapify(self._heap)

    @property
    def dirty(self) -> bool:
        """Whether memory holds changes the app DB does not have yet."""
        return bool(self._reset) or any(self._dirty.values())

    def flush(self) -> int:
        """Write the changed timers to the app DB in one transaction; returns how many rows were written."""
        if not self.dirty:
            return 0
        written = 0
        with Session(self.appdb) as s, s.begin():
            for seg in self._reset:
                s.execute(delete(LiveTimerRow).where(LiveTimerRow.segment == seg))
                if seg in self.meta:
                    self._dirty[seg] = set(self.due.get(seg, {}))
            for seg, users in self._dirty.items():
                if not users:
                    continue
                if seg not in self._reset:
                    ids = sorted(users)
                    for i in range(0, len(ids), DB_CHUNK):
                        s.execute(delete(LiveTimerRow).where(LiveTimerRow.segment == seg,
                                                             LiveTimerRow.user_id.in_(ids[i:i + DB_CHUNK])))
                version, digest = self.meta[seg]
                mine = self.due.get(seg, {})
                rows = [{"segment": seg, "user_id": u, "version": version, "digest": digest, "due": mine[u][0]}
                        for u in users if u in mine]
                if rows:
                    _insert(s, rows)
                    written += len(rows)
        self._reset = set()
        self._dirty = {}
        return written
