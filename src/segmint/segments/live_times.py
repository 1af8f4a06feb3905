"""What a segment tree depends on (event names, profile, traits) and when its result can change by time alone.

Membership of one user as of t is piecewise constant in t: it changes only when an event enters (t = e.ts) or
leaves a window (t = e.ts + d for a duration d of the tree), at a calendar boundary, at an absolute time of the
tree, or at a trait/profile date plus a duration. `candidate_times` lists those instants in an interval so the
exact time of a change found by a sweep can be recovered with the reference evaluator.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel

from segmint.segments import model as m
from segmint.segments.reference import Context, Evaluator, Event, Profile, as_datetime

EVENT_FIELDS = ("event", "sent_event", "response_event")
MAX_CANDIDATES = 20_000


@dataclass
class Footprint:
    """What a (nested-segments-inlined) tree reads: event names, profile fields, traits, and its time constants."""

    events: set[str] = field(default_factory=set)
    profile: bool = False  # built-in first_seen / last_seen / timezone, or the profile start (any event moves it)
    traits: bool = False  # profile traits (identify events change them)
    durations: set[timedelta] = field(default_factory=set)
    instants: set[datetime] = field(default_factory=set)
    calendar: bool = False
    ratio: bool = False  # interval ratio: changes at a time no candidate lists (bisection finds it)


def _nodes(node: Any) -> Iterator[BaseModel]:
    if isinstance(node, BaseModel):
        yield node
        for name in type(node).model_fields:
            yield from _nodes(getattr(node, name))
    elif isinstance(node, list | tuple):
        for x in node:
            yield from _nodes(x)


def footprint(tree: m.Condition) -> Footprint:
    """The footprint of a tree (walks every node)."""
    fp = Footprint()
    for n in _nodes(tree):
        for f in EVENT_FIELDS:
            v = getattr(n, f, None)
            if isinstance(v, str) and f in type(n).model_fields:
                fp.events.add(v)
        if isinstance(n, m.Duration):
            fp.durations.add(n.to_timedelta())
        elif isinstance(n, m.EachWindow):
            span = timedelta(seconds=m.UNIT_SECONDS[n.unit])
            fp.durations.update(span * k for k in range(1, n.periods + 1))
        elif isinstance(n, m.CalendarWindow):
            fp.calendar = True
        elif isinstance(n, m.BetweenWindow):
            fp.instants.update(x for x in (n.start, n.end) if x is not None)
        elif isinstance(n, m.DateTimeValue):
            fp.instants.add(n.value.replace(tzinfo=None) if n.value.tzinfo is None
                            else n.value.astimezone(UTC).replace(tzinfo=None))
        elif isinstance(n, m.TraitCondition):
            if n.source == "profile":
                fp.profile = True
            else:
                fp.traits = True
        elif isinstance(n, m.TraitRef):
            fp.traits = True
        elif isinstance(n, m.Performed) and n.new_profiles == "exclude":
            fp.profile = True
        elif isinstance(n, m.IntervalRatio):
            fp.ratio = True
    return fp


def _zones(profile: Profile, workspace_tz: str) -> list[ZoneInfo]:
    out = []
    for name in (profile.timezone, workspace_tz, "UTC"):
        if name:
            try:
                out.append(ZoneInfo(name))
            except (ZoneInfoNotFoundError, ValueError):
                continue
    return out


def _midnights(lo: datetime, hi: datetime, zone: ZoneInfo) -> Iterator[datetime]:
    """Local midnights (naive UTC) in (lo, hi]; weeks and months start at midnights too."""
    day = lo.replace(tzinfo=UTC).astimezone(zone).date()
    for _ in range(4000):
        at = datetime(day.year, day.month, day.day, tzinfo=zone).astimezone(UTC).replace(tzinfo=None)
        if at > hi:
            return
        if at > lo:
            yield at
        day += timedelta(days=1)


def candidate_times(fp: Footprint, events: Iterable[Event], profile: Profile, lo: datetime, hi: datetime,
                    workspace_tz: str) -> list[datetime]:
    """Instants in (lo, hi] at which this user's membership can change, sorted (capped at MAX_CANDIDATES)."""
    bases: set[datetime] = {e.ts for e in events}
    bases.update(t for t in (profile.first_seen, profile.last_seen) if t is not None)
    if fp.traits:
        for v in profile.traits.values():
            d = as_datetime(v) if isinstance(v, str) else None
            if d is not None:
                bases.add(d)
    spans = {timedelta(0), *fp.durations}
    out = {b + d for b in bases for d in spans if lo < b + d <= hi}
    out.update(t for t in fp.instants if lo < t <= hi)
    if fp.calendar:
        for zone in _zones(profile, workspace_tz):
            out.update(_midnights(lo, hi, zone))
    return sorted(out)[:MAX_CANDIDATES]


FAR = datetime(9999, 1, 1)
MAX_NEXT_CHECKS = 8  # evaluations per user before settling for a lower bound (the timer fires and looks again)


def next_change(tree: m.Condition, fp: Footprint, events: list[Event], profile: Profile, after: datetime,
                workspace_tz: str, member: bool | None = None) -> datetime | None:
    """The first instant after `after` at which this user's membership changes by time alone (no new event),
    None when it never does. Past MAX_NEXT_CHECKS candidate instants, the next unchecked one is returned: a
    lower bound, so a timer set there fires, finds nothing and looks further. Trees with calendar windows
    or an interval ratio are not covered (see live_timers.uncovered)."""
    at = member_at(tree, events, profile, workspace_tz)
    state = at(after) if member is None else member
    read = events if fp.profile else [e for e in events if e.event in fp.events]  # only these move the result
    for i, t in enumerate(candidate_times(fp, read, profile, after, FAR, workspace_tz)):
        if i >= MAX_NEXT_CHECKS:
            return t
        if at(t) != state:
            return t
    return None


def member_at(tree: m.Condition, events: list[Event], profile: Profile,
              workspace_tz: str) -> Callable[[datetime], bool]:
    """The reference evaluation of one user as of any time, for events already in `Event.key` order (as
    `to_events` of rows ordered by ts, message id gives them): cut by bisection instead of normalizing and
    sorting the events again at every instant asked."""
    stamps = [e.ts for e in events]

    def at(t: datetime) -> bool:
        ctx = Context(events[:bisect_right(stamps, t)], profile, t, workspace_tz)
        return Evaluator(ctx).explain(tree).result

    return at
