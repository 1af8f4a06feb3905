"""The reference evaluator: one user's events and profile, as of a time, in plain Python (the oracle).

Every rule here is the documented meaning of the language (docs/segment-language.md). It is written to
be obviously correct, not fast; the SQL compiler is tested against it.
"""

from __future__ import annotations

import itertools
import json
import math
import re
import statistics
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from segmint.errors import NotFound, SegmintError
from segmint.segments import model as m
from segmint.segments.dsl import to_text

MISSING: Any = None  # a missing property and a JSON null are the same thing: no value
_NUMERIC_TEXT = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")
# Date text (traits and properties compared with dates): YYYY-MM-DD, optionally [T or space]HH:MM[:SS[.f1-6]]
# and Z or +-HH:MM; years 1900-2299 (the range both SQL engines hold); naive = UTC. The SQL compiler uses
# the same pattern (segments/compile.py), so both sides accept exactly the same texts.
DATETIME_TEXT = (
    r"^((?:19|2[0-2])[0-9]{2}-[0-9]{2}-[0-9]{2})"
    r"(?:[T ]([01][0-9]|2[0-3]):([0-5][0-9])(?::([0-5][0-9])(?:\.([0-9]{1,6}))?)?"
    r"(?:Z|([+-])([01][0-9]|2[0-3]):([0-5][0-9]))?)?$"
)
_DATETIME_TEXT = re.compile(DATETIME_TEXT)


class SegmentCycleError(SegmintError):
    """Segments that include each other (a -> b -> a) cannot be evaluated."""

    code = "segment_cycle"


# ---------------------------------------------------------------- inputs


@dataclass(frozen=True)
class Event:
    """One stored event of the user: name, UTC time, JSON properties, and its id (tie-break)."""

    event: str
    ts: datetime
    properties: Mapping[str, Any]
    message_id: str = ""
    index: int = 0  # position in the input, last tie-break

    @property
    def key(self) -> tuple[datetime, str, int]:
        """Total order of events: time, then message id, then input position."""
        return (self.ts, self.message_id, self.index)

    @property
    def ref(self) -> str:
        """How explain names this event."""
        return self.message_id or f"#{self.index}"


@dataclass
class Profile:
    """One user's profile: traits plus the built-in fields."""

    user_id: str = ""
    traits: dict[str, Any] = field(default_factory=dict)
    first_seen: datetime | None = None
    last_seen: datetime | None = None
    timezone: str | None = None


def _naive(ts: datetime) -> datetime:
    return ts if ts.tzinfo is None else ts.astimezone(UTC).replace(tzinfo=None)


def to_events(rows: Iterable[Mapping[str, Any] | Event]) -> list[Event]:
    """Normalize rows (dicts with event, ts, properties as dict or JSON text, message_id) into Events."""
    out: list[Event] = []
    for i, r in enumerate(rows):
        if isinstance(r, Event):
            out.append(Event(r.event, _naive(r.ts), r.properties, r.message_id, i))
            continue
        props = r.get("properties") or {}
        if isinstance(props, str):
            props = json.loads(props) if props else {}
        out.append(Event(r["event"], _naive(r["ts"]), props, r.get("message_id") or "", i))
    return out


# ---------------------------------------------------------------- explain tree


@dataclass
class ExplainNode:
    """One node of an evaluation: what it tested, true/false, and the events that decided it."""

    kind: str
    result: bool
    detail: str = ""
    events: list[dict[str, Any]] = field(default_factory=list)
    children: list[ExplainNode] = field(default_factory=list)
    text: str = ""  # the node in the segment language

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (timestamps as ISO text)."""
        return {"kind": self.kind, "text": self.text, "result": self.result, "detail": self.detail,
                "events": [{**e, "ts": e["ts"].isoformat()} for e in self.events],
                "children": [c.to_dict() for c in self.children]}


def _evrefs(events: Iterable[Event], limit: int = 20) -> list[dict[str, Any]]:
    return [{"id": e.ref, "event": e.event, "ts": e.ts} for e in list(events)[:limit]]


# ---------------------------------------------------------------- value rules


def as_number(v: Any) -> float | None:
    """A JSON number, or a string that is exactly a decimal number; anything else (bool too) is None."""
    if isinstance(v, bool) or v is None:
        return None
    if isinstance(v, int | float):
        return float(v) if math.isfinite(v) else None
    if isinstance(v, str) and _NUMERIC_TEXT.match(v):
        f = float(v)
        return f if math.isfinite(f) else None
    return None


def as_datetime(v: Any) -> datetime | None:
    """A datetime, or ISO 8601 text (naive = UTC); anything else is None."""
    if isinstance(v, datetime):
        return _naive(v)
    if isinstance(v, str):
        return parse_datetime_text(v)
    return None


def parse_datetime_text(text: str) -> datetime | None:
    """Date text in the documented form (DATETIME_TEXT) as naive UTC; None for anything else."""
    mt = _DATETIME_TEXT.fullmatch(text)
    if mt is None:
        return None
    day, hh, mi, ss, frac, sign, oh, om = mt.groups()
    try:
        t = datetime.strptime(day, "%Y-%m-%d")
    except ValueError:  # e.g. February 30
        return None
    t += timedelta(hours=int(hh or 0), minutes=int(mi or 0), seconds=int(ss or 0),
                   microseconds=int((frac or "").ljust(6, "0")))
    if sign:
        off = timedelta(hours=int(oh), minutes=int(om))
        t = t - off if sign == "+" else t + off
    return t


def lookup(props: Mapping[str, Any] | None, path: list[str]) -> Any:
    """Value at a nested path in a JSON object; None when missing, null, or through a non-object."""
    cur: Any = props
    for part in path:
        if not isinstance(cur, Mapping) or part not in cur:
            return MISSING
        cur = cur[part]
    return cur


def _typed(actual: Any, target: Any) -> tuple[Any, Any] | None:
    """Coerce actual to the target's type (the literal decides); None when it cannot match."""
    if actual is None or target is None:
        return None
    if isinstance(target, bool):
        return (actual, target) if isinstance(actual, bool) else None
    if isinstance(target, int | float):
        a = as_number(actual)
        return None if a is None else (a, float(target))
    if isinstance(target, datetime):
        a = as_datetime(actual)
        return None if a is None else (a, target)
    if isinstance(target, str):
        return (actual, target) if isinstance(actual, str) else None
    return None


def compare(actual: Any, op: str, target: Any = None, target2: Any = None) -> bool:
    """One comparison under the documented rules: missing never matches; the right side sets the type."""
    if op == "exists":
        return actual is not None
    if op == "not_exists":
        return actual is None
    if op in ("in", "not_in"):
        pairs = [_typed(actual, t) for t in target]
        if any(p is None for p in pairs):
            return False
        hit = any(a == t for a, t in pairs)  # type: ignore[misc]
        return hit if op == "in" else not hit
    if op in ("contains", "starts_with"):
        if not isinstance(actual, str) or not isinstance(target, str):
            return False
        return target in actual if op == "contains" else actual.startswith(target)
    pair = _typed(actual, target)
    if pair is None:
        return False
    a, t = pair
    if op == "eq":
        return a == t
    if op == "ne":
        return a != t
    if isinstance(t, bool):
        return False  # booleans are not ordered
    if op == "gt":
        return a > t
    if op == "gte":
        return a >= t
    if op == "lt":
        return a < t
    if op == "lte":
        return a <= t
    if op == "between":
        pair2 = _typed(actual, target2)
        return pair2 is not None and t <= a <= pair2[1]
    raise ValueError(f"unknown operator {op}")


# ---------------------------------------------------------------- the evaluator


@dataclass
class Context:
    """Everything an evaluation needs besides the tree."""

    events: list[Event]  # only events with ts <= as_of, sorted by Event.key
    profile: Profile
    as_of: datetime
    workspace_tz: str = "Asia/Seoul"
    resolve: Callable[[str], m.Condition] | None = None
    stack: tuple[str, ...] = ()


Bindings = dict[str, Event]


class Evaluator:
    """Evaluates a condition tree for one user and explains the result."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    # ---- helpers

    def operand(self, op: Any, b: Bindings) -> Any:
        """The value of a right-hand side (list for ValueList); None when it has no value."""
        if op is None:
            return None
        if isinstance(op, m.Value):
            return op.value
        if isinstance(op, m.ValueList):
            return list(op.values)
        if isinstance(op, m.DateTimeValue):
            return op.value
        if isinstance(op, m.AnchorRef):
            if op.anchor not in b:
                raise SegmintError(f"{op.anchor!r} is not bound by an enclosing 'with ... as {op.anchor}'",
                                   where=".".join([op.anchor, *op.path]))
            return _scale(lookup(b[op.anchor].properties, op.path), op.factor)
        if isinstance(op, m.TraitRef):
            return _scale(self.ctx.profile.traits.get(op.name), op.factor)
        if isinstance(op, m.AggregateExpr):
            return _scale(self.aggregate(op, b)[0], op.factor)
        raise TypeError(f"unknown operand {op!r}")

    def matches(self, e: Event, event: str, where: list[m.PropertyFilter], b: Bindings) -> bool:
        """Event name equal and every property filter true."""
        if e.event != event:
            return False
        for f in where:
            if not compare(lookup(e.properties, f.path), f.op, self.operand(f.value, b),
                           self.operand(f.value2, b)):
                return False
        return True

    def zone(self, which: str) -> ZoneInfo:
        """The user's zone (when known and valid) or the workspace zone."""
        name = self.ctx.profile.timezone if which == "user" and self.ctx.profile.timezone else None
        for candidate in (name, self.ctx.workspace_tz):
            if candidate:
                try:
                    return ZoneInfo(candidate)
                except (ZoneInfoNotFoundError, ValueError):
                    continue
        return ZoneInfo("UTC")

    def in_window(self, w: Any, ts: datetime, b: Bindings) -> bool:
        """Whether a time is inside a window (as_of is applied separately: events are already cut)."""
        as_of = self.ctx.as_of
        if isinstance(w, m.EverWindow):
            return ts <= as_of
        if isinstance(w, m.LastWindow):
            return as_of - w.duration.to_timedelta() < ts <= as_of
        if isinstance(w, m.AgoWindow):
            return ts <= as_of - w.duration.to_timedelta()
        if isinstance(w, m.BetweenWindow):
            return ((w.start is None or ts >= w.start) and (w.end is None or ts < w.end)
                    and ts <= as_of)
        if isinstance(w, m.AfterAnchorWindow | m.BeforeAnchorWindow):
            if w.anchor not in b:
                raise SegmintError(f"{w.anchor!r} is not bound by an enclosing 'with ... as {w.anchor}'",
                                   where=w.anchor)
            at = b[w.anchor].ts
            if isinstance(w, m.AfterAnchorWindow):
                return at < ts <= as_of and (w.within is None or ts <= at + w.within.to_timedelta())
            return ts < at and (w.within is None or ts >= at - w.within.to_timedelta())
        if isinstance(w, m.CalendarWindow):
            return self.calendar_start(w) <= ts <= as_of
        if isinstance(w, m.EachWindow):
            span = timedelta(seconds=w.periods * m.UNIT_SECONDS[w.unit])
            return as_of - span < ts <= as_of
        raise TypeError(f"unknown window {w!r}")

    def calendar_start(self, w: m.CalendarWindow) -> datetime:
        """Start of the current day / week (Monday) / month in the zone, as naive UTC."""
        tz = self.zone(w.zone)
        local = self.ctx.as_of.replace(tzinfo=UTC).astimezone(tz)
        start = local.replace(hour=0, minute=0, second=0, microsecond=0, tzinfo=None)
        if w.unit == "week":
            start -= timedelta(days=start.weekday())
        elif w.unit == "month":
            start = start.replace(day=1)
        return start.replace(tzinfo=tz).astimezone(UTC).replace(tzinfo=None)

    def matching(self, event: str, where: list[m.PropertyFilter], window: Any, b: Bindings) -> list[Event]:
        """The user's events of this name passing the filters inside the window, in time order."""
        return [e for e in self.ctx.events
                if self.matches(e, event, where, b) and self.in_window(window, e.ts, b)]

    def profile_start(self) -> datetime | None:
        """When the user's history starts: the earlier of profile first_seen and the first event."""
        times = [t for t in (self.ctx.profile.first_seen,) if t is not None]
        if self.ctx.events:
            times.append(self.ctx.events[0].ts)
        return min(times) if times else None

    def aggregate(self, a: m.AggregateExpr, b: Bindings) -> tuple[float | None, list[Event]]:
        """The aggregate's value (None when undefined) and the events it used."""
        evs = self.matching(a.event, a.where, a.window, b)
        if a.fn == "count":
            return float(len(evs)), evs
        raw = [lookup(e.properties, a.property or []) for e in evs]
        if a.fn == "count_distinct":
            return float(len({_distinct_key(v) for v in raw if v is not None})), evs
        nums = [n for n in (as_number(v) for v in raw) if n is not None]
        if a.fn == "sum":
            return float(math.fsum(nums)), evs
        if not nums:
            return None, evs
        if a.fn == "avg":
            return math.fsum(nums) / len(nums), evs
        return (min(nums) if a.fn == "min" else max(nums)), evs

    # ---- nodes

    def explain(self, c: Any, b: Bindings | None = None) -> ExplainNode:
        """Evaluate one node under anchor bindings and say why."""
        b = b or {}
        method = getattr(self, "_" + type(c).__name__)
        node = method(c, b)
        node.text = to_text(c)
        return node

    def _And(self, c: m.And, b: Bindings) -> ExplainNode:
        kids = [self.explain(i, b) for i in c.items]
        return ExplainNode("and", all(k.result for k in kids), children=kids)

    def _Or(self, c: m.Or, b: Bindings) -> ExplainNode:
        kids = [self.explain(i, b) for i in c.items]
        return ExplainNode("or", any(k.result for k in kids), children=kids)

    def _Not(self, c: m.Not, b: Bindings) -> ExplainNode:
        kid = self.explain(c.item, b)
        return ExplainNode("not", not kid.result, children=[kid])

    def _TraitCondition(self, c: m.TraitCondition, b: Bindings) -> ExplainNode:
        p = self.ctx.profile
        actual = getattr(p, c.name) if c.source == "profile" else p.traits.get(c.name)
        if c.op in ("within_last", "older_than"):
            t = as_datetime(actual)
            d = c.duration.to_timedelta()  # type: ignore[union-attr]
            if t is None:
                ok = False
            elif c.op == "within_last":
                ok = self.ctx.as_of - d < t <= self.ctx.as_of
            else:
                ok = t <= self.ctx.as_of - d
        else:
            ok = compare(actual, c.op, self.operand(c.value, b), self.operand(c.value2, b))
        return ExplainNode("trait", ok, detail=f"{c.source} {c.name} = {actual!r}")

    def _Performed(self, c: m.Performed, b: Bindings) -> ExplainNode:
        if c.new_profiles == "exclude" and isinstance(c.window, m.LastWindow | m.EachWindow):
            span = (c.window.duration.to_timedelta() if isinstance(c.window, m.LastWindow)
                    else timedelta(seconds=c.window.periods * m.UNIT_SECONDS[c.window.unit]))
            start = self.profile_start()
            if start is None or start > self.ctx.as_of - span:
                return ExplainNode("performed", False,
                                   detail=f"profile starts {start}, younger than the window")
        if isinstance(c.window, m.EachWindow):
            unit = timedelta(seconds=m.UNIT_SECONDS[c.window.unit])
            counts = []
            used: list[Event] = []
            for i in range(c.window.periods):
                hi = self.ctx.as_of - i * unit
                lo = hi - unit
                evs = [e for e in self.ctx.events if lo < e.ts <= hi and self.matches(e, c.event, c.where, b)]
                counts.append(len(evs))
                used += evs
            ok = all(c.count.holds(n) for n in counts)
            return ExplainNode("performed", ok, detail=f"counts per period (latest first) {counts}",
                               events=_evrefs(used))
        evs = self.matching(c.event, c.where, c.window, b)
        return ExplainNode("performed", c.count.holds(len(evs)), detail=f"{len(evs)} matching events",
                           events=_evrefs(evs))

    def _AggregateCondition(self, c: m.AggregateCondition, b: Bindings) -> ExplainNode:
        value, evs = self.aggregate(c.agg, b)
        right = self.operand(c.value, b)
        right2 = self.operand(c.value2, b)
        ok = value is not None and compare(value, c.op, right, right2)
        return ExplainNode("aggregate", ok, detail=f"{c.agg.fn} = {value!r}, compared with {right!r}",
                           events=_evrefs(evs))

    def _first_last(self, c: m.FirstCondition | m.LastCondition, b: Bindings) -> ExplainNode:
        evs = [e for e in self.ctx.events if self.matches(e, c.event, c.where, b)]
        if not evs:
            return ExplainNode(c.kind, False, detail="no matching event")
        e = evs[0] if c.kind == "first" else evs[-1]
        return ExplainNode(c.kind, self.in_window(c.window, e.ts, b),
                           detail=f"{c.kind} at {e.ts.isoformat()}", events=_evrefs([e]))

    _FirstCondition = _first_last
    _LastCondition = _first_last

    def _Sequence(self, c: m.Sequence, b: Bindings) -> ExplainNode:
        s0 = c.steps[0]
        starts = self.matching(s0.event, s0.where, c.window, b)
        within = c.within.to_timedelta() if c.within else None
        if not c.followed:
            s1 = c.steps[1]
            for e0 in starts:
                limit = e0.ts + within if within is not None else self.ctx.as_of
                follow = [e for e in self.ctx.events
                          if e0.ts < e.ts <= limit and self.matches(e, s1.event, s1.where, b)]
                if not follow:
                    return ExplainNode("sequence", True, detail="not followed", events=_evrefs([e0]))
            return ExplainNode("sequence", False, detail=f"all {len(starts)} starts were followed")
        for e0 in starts:
            chain = [e0]
            limit = e0.ts + within if within is not None else self.ctx.as_of
            for step in c.steps[1:]:
                nxt = next((e for e in self.ctx.events if chain[-1].ts < e.ts <= limit
                            and self.matches(e, step.event, step.where, b)), None)
                if nxt is None:
                    break
                chain.append(nxt)
            if len(chain) == len(c.steps):
                return ExplainNode("sequence", True, detail="completed", events=_evrefs(chain))
        return ExplainNode("sequence", False, detail=f"no completed sequence from {len(starts)} starts")

    def _Correlated(self, c: m.Correlated, b: Bindings) -> ExplainNode:
        a = c.anchor
        cands = self.matching(a.event, a.where, a.window, b)
        if a.pick == "first":
            cands = cands[:1]
        elif a.pick == "last":
            cands = cands[-1:]
        tried: list[ExplainNode] = []
        for e in cands:
            kid = self.explain(c.condition, {**b, a.name: e})
            kid.detail = f"{a.name} = {e.ref} at {e.ts.isoformat()}; " + kid.detail
            tried.append(kid)
            if kid.result:
                return ExplainNode("with", True, detail=f"{a.name} bound to {e.ref}", events=_evrefs([e]),
                                   children=[kid])
        return ExplainNode("with", False, detail=f"no {a.pick} {a.event} satisfies the condition "
                           f"({len(cands)} tried)", children=tried[-3:])

    def _Streak(self, c: m.Streak, b: Bindings) -> ExplainNode:
        sends = [e for e in self.ctx.events
                 if e.event == c.sent_event and e.properties.get("channel") == c.channel]
        last = sends[-c.n:]
        if len(last) < c.n:
            return ExplainNode("streak", False, detail=f"only {len(sends)} {c.channel} messages sent")
        responded = {r for e in self.ctx.events if e.event == c.response_event
                     and isinstance(r := e.properties.get("message_id_ref"), str)}
        hit = [s for s in last if _message_ref(s) in responded]
        return ExplainNode("streak", not hit, detail=f"{len(hit)} of the last {c.n} had {c.response_event}",
                           events=_evrefs(last))

    def _IntervalRatio(self, c: m.IntervalRatio, b: Bindings) -> ExplainNode:
        evs = [e for e in self.ctx.events if self.matches(e, c.event, c.where, b)]
        gaps = [(y.ts - x.ts).total_seconds() for x, y in itertools.pairwise(evs)]
        if len(gaps) < c.min_gaps:
            return ExplainNode("interval_ratio", False, detail=f"{len(gaps)} gaps, need {c.min_gaps}")
        usual = statistics.median(gaps)
        since = (self.ctx.as_of - evs[-1].ts).total_seconds()
        return ExplainNode("interval_ratio", since >= c.factor * usual,
                           detail=f"{since:.0f}s since last, median gap {usual:.0f}s",
                           events=_evrefs(evs[-1:]))

    def _InSegment(self, c: m.InSegment, b: Bindings) -> ExplainNode:
        if c.segment in self.ctx.stack:
            raise SegmentCycleError(" -> ".join([*self.ctx.stack, c.segment]), where=f"segment {c.segment!r}")
        if self.ctx.resolve is None:
            raise NotFound(f"segment {c.segment!r}: no segment resolver given",
                           where=f"segment {c.segment!r}")
        tree = self.ctx.resolve(c.segment)
        inner = Evaluator(Context(self.ctx.events, self.ctx.profile, self.ctx.as_of, self.ctx.workspace_tz,
                                  self.ctx.resolve, (*self.ctx.stack, c.segment)))
        kid = inner.explain(tree, {})
        return ExplainNode("in_segment", kid.result, detail=c.segment, children=[kid])


def _scale(v: Any, factor: float | None) -> Any:
    if factor is None:
        return v
    n = as_number(v)
    return None if n is None else n * factor


def _distinct_key(v: Any) -> tuple[str, Any]:
    if isinstance(v, bool):
        return ("b", v)
    if isinstance(v, int | float):
        return ("n", float(v))
    if isinstance(v, str):
        return ("s", v)
    return ("j", json.dumps(v, sort_keys=True, ensure_ascii=False))


def _message_ref(send: Event) -> str:
    ref = send.properties.get("message_id_ref")
    return ref if isinstance(ref, str) else send.message_id


# ---------------------------------------------------------------- public entry points


def _context(events: Iterable[Mapping[str, Any] | Event], profile: Profile | Mapping[str, Any] | None,
             as_of: datetime | None, workspace_tz: str,
             resolve: Callable[[str], m.Condition] | None) -> Context:
    as_of = _naive(as_of) if as_of is not None else datetime.now(UTC).replace(tzinfo=None)
    evs = sorted((e for e in to_events(events) if e.ts <= as_of), key=lambda e: e.key)
    if profile is None:
        profile = Profile()
    elif isinstance(profile, Mapping):
        profile = Profile(**profile)
    for name in ("first_seen", "last_seen"):
        v = getattr(profile, name)
        if v is not None:
            setattr(profile, name, _naive(v))
    return Context(evs, profile, as_of, workspace_tz, resolve)


def explain(tree: m.Condition, events: Iterable[Mapping[str, Any] | Event],
            profile: Profile | Mapping[str, Any] | None = None, as_of: datetime | None = None, *,
            workspace_tz: str = "Asia/Seoul",
            resolve: Callable[[str], m.Condition] | None = None) -> ExplainNode:
    """Evaluate a tree for one user as of a time (default now) and return the explained result tree."""
    return Evaluator(_context(events, profile, as_of, workspace_tz, resolve)).explain(tree)


def evaluate(tree: m.Condition, events: Iterable[Mapping[str, Any] | Event],
             profile: Profile | Mapping[str, Any] | None = None, as_of: datetime | None = None, *,
             workspace_tz: str = "Asia/Seoul", resolve: Callable[[str], m.Condition] | None = None) -> bool:
    """Whether one user is in the segment as of a time (events after as_of are ignored)."""
    return explain(tree, events, profile, as_of, workspace_tz=workspace_tz, resolve=resolve).result


def members(tree: m.Condition, users: Mapping[str, tuple[list[Any], Profile | Mapping[str, Any] | None]],
            as_of: datetime | None = None, *, workspace_tz: str = "Asia/Seoul",
            resolve: Callable[[str], m.Condition] | None = None) -> set[str]:
    """The user ids whose (events, profile) satisfy the tree: the oracle for bulk SQL results."""
    return {uid for uid, (evs, prof) in users.items()
            if evaluate(tree, evs, prof, as_of, workspace_tz=workspace_tz, resolve=resolve)}


def load_user(store: Any, user_id: str, as_of: datetime | None = None) -> tuple[list[Event], Profile]:
    """One user's events (up to as_of) and profile from an EventStore (DuckDB or ClickHouse)."""
    ch = getattr(store, "dialect", "duckdb") == "clickhouse"
    cut = _naive(as_of) if as_of is not None else None
    if ch:
        sql = "SELECT message_id, event, ts, properties FROM events WHERE user_id = {uid:String}"
        params: Any = {"uid": user_id}
        if cut is not None:
            sql += " AND ts <= {as_of:DateTime64(6, 'UTC')}"
            params["as_of"] = cut
        prof_sql = ("SELECT traits, first_seen, last_seen, timezone FROM profiles "
                    "WHERE user_id = {uid:String} ORDER BY updated_at DESC LIMIT 1")
        prof_params: Any = {"uid": user_id}
    else:
        sql = "SELECT message_id, event, ts, properties FROM events WHERE user_id = ?"
        params = [user_id]
        if cut is not None:
            sql += " AND ts <= ?"
            params.append(cut)
        prof_sql = "SELECT traits, first_seen, last_seen, timezone FROM profiles WHERE user_id = ?"
        prof_params = [user_id]
    rows = store.query(sql + " ORDER BY ts, message_id", params).to_pylist()
    prof_rows = store.query(prof_sql, prof_params).to_pylist()
    profile = Profile(user_id=user_id)
    if prof_rows:
        p = prof_rows[0]
        traits = p["traits"]
        profile = Profile(user_id, json.loads(traits) if isinstance(traits, str) else dict(traits or {}),
                          _naive(p["first_seen"]) if p["first_seen"] else None,
                          _naive(p["last_seen"]) if p["last_seen"] else None, p["timezone"])
    return to_events(rows), profile


def evaluate_user(tree: m.Condition, store: Any, user_id: str, as_of: datetime | None = None, *,
                  workspace_tz: str | None = None,
                  resolve: Callable[[str], m.Condition] | None = None) -> ExplainNode:
    """Load one user from the store and explain the tree for them; calendar windows in workspace_tz,
    by default the zone of the workspace the store belongs to (EventStore.workspace_tz), as the SQL does."""
    events, profile = load_user(store, user_id, as_of)
    zone = workspace_tz or getattr(store, "workspace_tz", None) or "Asia/Seoul"
    return explain(tree, events, profile, as_of, workspace_tz=zone, resolve=resolve)
