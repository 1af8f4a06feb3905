"""Live (dynamic) segment membership: enter/exit transitions and `segment_entered`/`segment_exited` events.

One `LiveSegments` per server process owns the membership of every dynamic saved segment:

- per-user path: the ingest writer hands each stored batch to `notify`; the users it touched are evaluated,
  as of now, for the segments their events can affect (indexed by event name; identify/alias and profile
  conditions widen that), all in one query over just those users (`per_user = "sql"`) or with the reference
  evaluator over their events (`per_user = "reference"`);
  a flip is dated at the user's latest new event;
- sweep: every `sweep_interval_seconds` a sweeper thread evaluates each segment in bulk SQL as of now and the
  live thread applies the result; a change found there happened by time alone, and its exact instant is
  recovered with the reference evaluator (`live_times.candidate_times`), so the transition carries the time
  the as-of evaluation changed;
- timers: for segments whose tree allows it, each user's next possible change by time alone is kept as a
  timer (`live_timers`: computed in bulk SQL with every sweep and edit, per touched user on the per-user
  path, exactly with `live_times.next_change` when one fires); due timers fire at the start of a step,
  before the per-user path, and their users are re-evaluated as of the due time (cause `time`, that time);
- edit: a new version (or a changed nested segment) is evaluated at once and the difference recorded with
  cause `edit`.

Transitions and their events are written in ONE store transaction (WriteBatch) with deterministic ids, along
with a watermark of the ingest batches processed, so a crash can neither split them nor lose the users to
re-evaluate (`start` re-evaluates users with events received after the watermark, then sweeps).
"""

from __future__ import annotations

import hashlib
import logging
import queue
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pyarrow as pa
from sqlalchemy import Engine, Text, cast, func, select
from sqlalchemy.orm import Session

from segmint.appdb.segments import SegmentRow, SegmentVersionRow
from segmint.config import LiveConfig
from segmint.segments import live_log, live_timers, live_times
from segmint.segments import model as m
from segmint.segments import reference as ref
from segmint.segments.compile import UnsupportedInSQL
from segmint.segments.live_sql import Template, users_query
from segmint.segments.live_timers import DueQuery, Timers, dues_query
from segmint.segments.live_times import Footprint, candidate_times, footprint, next_change
from segmint.segments.saved import inline_segments, list_segments, static_members
from segmint.store.base import EventStore, WriteBatch
from segmint.store.schema import events_to_arrow, transitions_to_arrow

log = logging.getLogger(__name__)
ENTERED, EXITED = "segment_entered", "segment_exited"
SEGMENT_EVENTS = (ENTERED, EXITED)
WIDE_EVENTS = ("$identify", "$alias")  # change traits or merge histories: every segment may be affected
WATERMARK_KEY = "live_watermark"
CATCH_UP_MARGIN = timedelta(seconds=60)  # received_at is not strictly ordered across concurrent requests
MAX_EXACT_USERS = 20_000  # a sweep finding more changes than this records them at the sweep time
MICRO = timedelta(microseconds=1)
SUMMARY_FIELDS = ("users", "rows", "entered", "exited")
REFERENCE_CHUNK = 2000  # users per query when a segment the SQL compiler cannot run is evaluated in bulk
_PROBE_TIME = datetime(2000, 1, 1)
PERF_FIELDS = ("steps", "step_s", "step_max_s", "query_s", "commit_s", "apply_s", "apply_max_s", "users",
               "live_cpu_s", "sweeper_cpu_s", "predated", "timers_fired", "timer_changes", "timer_s",
               "due_query_s", "due_query_cpu_s", "due_rows", "retime_s")
MAX_CHAIN = 16  # instants one fired timer may replay in a row (a user due several times while the engine was down)
FIRE_CHUNK = 50  # timers fired at once; a step fires chunks until FIRE_BUDGET_S, the rest waits for the next
FIRE_BUDGET_S = 0.25  # so a burst of due timers never holds up the per-user path for long ...
FIRE_BUDGET_BUSY_S = 0.05  # ... and less while touched users are waiting (in smaller chunks)
FIRE_CHUNK_BUSY = 5
RETIME_EVERY_S = 2.0  # while events keep arriving, touched users' timers are recomputed at most this often, in one
# query for all of them (a due time is at least a window away from the event that set it, so this only delays
# timers of windows shorter than this); when the inbox is empty they are recomputed at once
SWEEP_DEFERS_S = 10.0  # a sweep leaves to the timers the users whose timer fell due this little before it


def _utc(ts: datetime) -> datetime:
    return ts if ts.tzinfo is None else ts.astimezone(UTC).replace(tzinfo=None)


def wall_now() -> datetime:
    """Now in naive UTC (the default clock)."""
    return datetime.now(UTC).replace(tzinfo=None)


def transition_id(segment: str, version: int, user_id: str, ts: datetime, kind: str) -> str:
    """Deterministic id of a transition (the dedupe key of segment_transitions)."""
    key = "\x1f".join((segment, str(version), user_id, ts.isoformat(), kind))
    return hashlib.sha256(key.encode()).hexdigest()[:32]


@dataclass(frozen=True)
class Change:
    """One membership transition about to be recorded."""

    segment: str
    version: int
    user_id: str
    ts: datetime
    kind: str  # enter | exit
    cause: str  # event | time | edit | manual | backfill
    id: str = field(init=False, compare=False)  # the transition id

    def __post_init__(self) -> None:
        object.__setattr__(self, "id", transition_id(self.segment, self.version, self.user_id, self.ts, self.kind))


def change_batch(changes: list[Change], recorded_at: datetime, state: dict[str, str] | None = None) -> WriteBatch:
    """Transitions plus their `segment_entered`/`segment_exited` events (message id `seg-<transition id>`)."""
    batch = WriteBatch(state=dict(state or {}))
    if changes:
        batch.transitions = transitions_to_arrow([
            {"id": c.id, "segment": c.segment, "version": c.version, "user_id": c.user_id, "ts": c.ts,
             "kind": c.kind, "cause": c.cause, "recorded_at": recorded_at} for c in changes])
        batch.events = events_to_arrow([
            {"message_id": "seg-" + c.id, "type": "track", "event": ENTERED if c.kind == "enter" else EXITED,
             "user_id": c.user_id, "anonymous_id": None, "ts": c.ts, "received_at": recorded_at,
             "properties": {"segment": c.segment, "version": c.version, "cause": c.cause}, "context": {},
             "source": "segmint"} for c in changes])
    return batch


@dataclass
class Tracked:
    """A dynamic segment being kept live: its version, inlined tree and footprint."""

    name: str
    version: int
    tree: m.Condition
    digest: str  # of the inlined tree: a nested segment's edit changes it without a new version
    fp: Footprint
    templates: dict[str, Template] = field(default_factory=dict)  # by typed-columns key

    sql_error: str | None = None  # why the SQL compiler cannot run this tree (the reference evaluator does)
    untimed: str | None = field(init=False)  # why this tree gets no next-change timers (None: it does)
    due_queries: dict[str, DueQuery] = field(default_factory=dict)  # by typed-columns key

    def __post_init__(self) -> None:
        self.untimed = live_timers.uncovered(self.tree)

    def due_query(self, typed: dict[str, str], workspace_tz: str) -> DueQuery | None:
        """The bulk due query of this tree (built once per typed-column set); None, and the tree untimed from
        then on, when it cannot be built (the sweep finds its time-driven changes)."""
        key = repr(sorted(typed.items()))
        if key not in self.due_queries:
            try:
                self.due_queries[key] = live_timers.due_query(self.tree, typed=typed, workspace_tz=workspace_tz)
            except Exception as exc:
                log.exception("live: no timers for %s", self.name)
                self.untimed = f"its due query cannot be built: {type(exc).__name__}: {exc}"
                return None
        return self.due_queries[key]

    def query(self, store: EventStore, as_of: datetime, typed: dict[str, str]) -> tuple[str, dict[str, Any]]:
        """The members SQL and parameters as of a time (compiled once per typed-column set)."""
        key = repr(sorted(typed.items())) + store.dialect
        if key not in self.templates:
            self.templates[key] = Template(self.tree, dialect=store.dialect, typed=typed,
                                               workspace_tz=store.workspace_tz)
        return self.templates[key].at(as_of)

    def in_sql(self, store: EventStore, typed: dict[str, str]) -> bool:
        """Whether the SQL compiler handles this tree (else it is evaluated with the reference evaluator)."""
        if self.sql_error is None:
            try:
                self.query(store, _PROBE_TIME, typed)
            except UnsupportedInSQL as exc:
                self.sql_error = str(exc)
        return self.sql_error is None

    def affected_by(self, names: Iterable[str]) -> bool:
        """Whether events of these names can change this segment for their user."""
        names = set(names)
        if self.fp.profile or names & set(WIDE_EVENTS):
            return True
        return bool(names & self.fp.events)


# ---------------------------------------------------------------- store reads


def defs_fingerprint(appdb: Engine) -> tuple[Any, ...]:
    """Changes whenever a saved segment is created, edited, deleted or has its static list stored (two cheap
    aggregates instead of re-reading and re-parsing every definition each second)."""
    with Session(appdb) as s:
        segs = s.execute(select(func.count(), func.max(SegmentRow.id), func.sum(SegmentRow.current_version),
                                func.max(SegmentRow.updated_at))).one()
        frozen = s.execute(select(func.sum(func.length(cast(SegmentVersionRow.members, Text))))).scalar_one()
    return (*segs, frozen)


MEMBERSHIP_SQL = """SELECT user_id, kind = 'enter' AS member, ts FROM (
  SELECT user_id, kind, ts, row_number() OVER (PARTITION BY user_id ORDER BY ts DESC, kind = 'enter' DESC, id DESC)
    AS rn FROM segment_transitions WHERE segment = $segment) WHERE rn = 1"""


def membership_state(store: EventStore, segment: str) -> dict[str, tuple[bool, datetime]]:
    """Per user of a segment's history: (member now, time of the latest transition)."""
    rows = store.query(MEMBERSHIP_SQL, {"segment": segment}).to_pylist()
    return {r["user_id"]: (bool(r["member"]), r["ts"]) for r in rows}


def current_members(store: EventStore, segment: str) -> list[str]:
    """Users whose latest transition in a segment is `enter`, sorted."""
    return sorted(u for u, (inn, _) in membership_state(store, segment).items() if inn)


def history(store: EventStore, segment: str, user: str | None = None, limit: int = 1000) -> list[dict[str, Any]]:
    """Spells of membership (segment_history view), newest first; one user's when given."""
    sql = ("SELECT segment, version, user_id, entered_at, exited_at, cause, exit_cause FROM segment_history "
           "WHERE segment = $segment")
    params: dict[str, Any] = {"segment": segment, "limit": limit}
    if user is not None:
        sql += " AND user_id = $user"
        params["user"] = user
    return store.query(sql + " ORDER BY entered_at DESC, user_id LIMIT $limit", params).to_pylist()


def transitions(store: EventStore, segment: str, user: str | None = None, limit: int = 1000) -> list[dict[str, Any]]:
    """Raw transitions of a segment (one user's when given), newest first."""
    sql = ("SELECT id, segment, version, user_id, ts, kind, cause, recorded_at FROM segment_transitions "
           "WHERE segment = $segment")
    params: dict[str, Any] = {"segment": segment, "limit": limit}
    if user is not None:
        sql += " AND user_id = $user"
        params["user"] = user
    return store.query(sql + " ORDER BY ts DESC, kind = 'enter' DESC, id DESC LIMIT $limit", params).to_pylist()


def load_users(store: EventStore, users: list[str], as_of: datetime,
               names: Iterable[str] | None = None) -> dict[str, tuple[list[ref.Event], ref.Profile]]:
    """Events (up to as_of; only of these names when given) and profiles of some users, in two queries (one
    scan of events)."""
    params: dict[str, Any] = {"users": users, "as_of": as_of}
    only = ""
    if names is not None:
        only = "AND event IN (SELECT unnest($names)) "
        params["names"] = sorted(names)
    rows = store.query(
        "SELECT user_id, message_id, event, ts, properties FROM events WHERE user_id IN (SELECT unnest($users)) "
        f"AND ts <= $as_of {only}ORDER BY user_id, ts, message_id", params).to_pylist()
    evs: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        evs.setdefault(r["user_id"], []).append(r)
    profs = store.query(
        "SELECT user_id, traits, first_seen, last_seen, timezone FROM profiles WHERE user_id IN "
        "(SELECT unnest($users))", {"users": users}).to_pylist()
    out: dict[str, tuple[list[ref.Event], ref.Profile]] = {u: ([], ref.Profile(user_id=u)) for u in users}
    for p in profs:
        traits = p["traits"]
        out[p["user_id"]] = ([], ref.Profile(p["user_id"], orjson.loads(traits) if isinstance(traits, str)
                                             else dict(traits or {}), p["first_seen"], p["last_seen"], p["timezone"]))
    for u, rs in evs.items():
        out[u] = (ref.to_events(rs), out[u][1])
    return out


# ---------------------------------------------------------------- the engine


@dataclass
class StepResult:
    """What one processing step did."""

    users: int = 0
    changes: list[Change] = field(default_factory=list)
    swept: list[str] = field(default_factory=list)


@dataclass
class _View:
    """What a sweep's diff and dating work from: membership, per-user checks since the last sweep, its time."""

    state: dict[str, tuple[bool, datetime]]
    checked: dict[str, datetime]
    swept_at: datetime | None


@dataclass
class _Bulk:
    """A finished bulk evaluation of one segment, waiting to be applied by the live thread."""

    name: str
    version: int
    digest: str
    kind: str
    as_of: datetime
    eval_id: int
    started: float  # perf_counter at the start
    ids: set[str] | None = None
    error: str | None = None
    job: int | None = None
    state: dict[str, tuple[bool, datetime]] | None = None  # membership read from the store after the query
    # a sweep's changes dated on the sweeper thread, with the view they were computed from
    dated: tuple[list[Change], _View] | None = None
    dues: dict[str, datetime] | None = None  # next-change timers as of as_of (segments with timers)


class LiveSegments:
    """Keeps every dynamic saved segment's membership current (see the module docstring)."""

    def __init__(self, store: EventStore, appdb: Engine, *, config: LiveConfig | None = None,
                 workspace_tz: str = "Asia/Seoul", clock: Callable[[], datetime] = wall_now) -> None:
        self.store = store
        self.appdb = appdb
        self.config = config or LiveConfig()
        self.tz = workspace_tz
        self.clock = clock
        self.mode = self.config.per_user
        self.tracked: dict[str, Tracked] = {}
        self.state: dict[str, dict[str, tuple[bool, datetime]]] = {}
        self.evaluated: dict[str, tuple[int, str]] = {}  # segment -> (version, digest) of its last bulk evaluation
        self.swept_at: dict[str, datetime] = {}
        self.checked: dict[str, dict[str, datetime]] = {}  # per-user evaluations since the segment's last sweep
        self.pending: dict[str, set[str]] = {}  # user -> names of their new events, waiting for a step
        self._retime_todo: dict[str, set[str]] = {}  # segment -> users whose timers wait to be recomputed
        self._retimed_at = 0.0
        self.pending_ts: dict[str, set[datetime]] = {}  # user -> times of those events
        self.on_recorded: list[Callable[[list[Change], float], None]] = []  # (changes, monotonic commit time)
        self.error: BaseException | None = None
        self._sweep_queue: list[str] = []
        self._ready: list[_Bulk] = []  # bulk results from the sweeper thread, applied in order
        self._done: list[tuple[int | None, Future[StepResult] | None, str]] = []
        self._jobs: dict[int, StepResult] = {}
        self._job_ids = iter(range(1, 1 << 62))
        self._work: queue.SimpleQueue[tuple[list[str], str, int | None, Future[StepResult] | None]] = \
            queue.SimpleQueue()
        self._edits_queued: set[str] = set()
        self._sweeper: threading.Thread | None = None
        self._sweeping: str | None = None  # the segment the sweeper thread is sweeping on schedule
        self._due: dict[str, datetime] = {}  # threaded mode: each segment's next scheduled sweep
        self._next_sweep: datetime | None = None  # inline mode: the next sweep of every segment
        self._summary: dict[str, dict[str, Any]] = {}
        self._summary_since: datetime | None = None
        self._watermark: datetime | None = None
        self._watermark_saved: datetime | None = None
        self._defs_checked = 0.0
        self._typed_cache: tuple[float, dict[str, str]] | None = None
        self._defs_mark: tuple[Any, ...] | None = None  # defs_fingerprint at the last full re-read
        self.frozen: dict[str, int] = {}  # static segment -> version whose frozen list is recorded
        self._settled: list[Change] = []  # changes recorded by refresh (static lists, deletions), for the step
        self._lock = threading.RLock()
        self._inbox: queue.SimpleQueue[tuple[str, Any]] = queue.SimpleQueue()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.started = False
        self.perf: dict[str, float] = dict.fromkeys(PERF_FIELDS, 0.0)  # cumulative figures (status, benchmark)
        self.timers = Timers(appdb)
        self._timers_flushed = 0.0

    # -- inputs ----------------------------------------------------------------------------------
    def notify(self, events: pa.Table) -> None:
        """Ingest hook (writer thread): a stored batch of events; cheap, the work happens in `step`."""
        self._inbox.put(("events", events.select(["user_id", "event", "ts", "received_at"])))

    def request_sweep(self, segment: str | None = None) -> Future[StepResult]:
        """Ask the live thread to evaluate one segment (or all) in bulk now; the future holds the step result."""
        fut: Future[StepResult] = Future()
        self._inbox.put(("sweep", (segment, fut)))  # via the live thread: it picks up edits first
        return fut

    def _absorb(self, item: tuple[str, Any], futures: list[tuple[str | None, Future[StepResult]]]) -> None:
        kind, payload = item
        if kind == "sweep":
            futures.append(payload)
            return
        if kind == "bulk":
            self._ready.append(payload)
            return
        if kind == "done":
            self._done.append(payload)
            return
        if kind != "events":
            return
        cols = payload.to_pydict()
        for uid, name, ts, rec in zip(cols["user_id"], cols["event"], cols["ts"], cols["received_at"], strict=True):
            if uid is None:
                continue
            self.pending.setdefault(uid, set()).add(name)
            self.pending_ts.setdefault(uid, set()).add(ts)
            if rec is not None and (self._watermark is None or rec > self._watermark):
                self._watermark = rec

    def drain_inbox(self) -> list[tuple[str | None, Future[StepResult]]]:
        """Move everything notified so far into `pending`; returns sweep requests."""
        futures: list[tuple[str | None, Future[StepResult]]] = []
        while True:
            try:
                self._absorb(self._inbox.get_nowait(), futures)
            except queue.Empty:
                return futures

    # -- definitions -----------------------------------------------------------------------------
    def refresh(self, now: datetime) -> list[str]:
        """Re-read the saved segments (when they changed); returns the dynamic ones whose definition is not
        evaluated yet (new, edited). Static lists that changed, and segments deleted, are settled at once
        (`_settle`: transitions with cause `manual` and `edit`, kept in `self._settled` for the step)."""
        mark = defs_fingerprint(self.appdb)
        if mark == self._defs_mark:
            return [n for n, t in self.tracked.items() if self.evaluated.get(n) != (t.version, t.digest)]
        saved = list_segments(self.appdb)
        trees = {s.name: s.tree() for s in saved}
        changed = []
        seen = set()
        statics = {s.name: s.version for s in saved if s.kind == "static"}
        for s in saved:
            if s.kind != "dynamic":
                continue
            try:
                tree = inline_segments(trees[s.name], trees.__getitem__)
            except Exception:  # a nested segment missing mid-edit: keep the previous definition
                log.exception("live: cannot inline segment %s", s.name)
                seen.add(s.name)
                continue
            digest = hashlib.sha256(orjson.dumps(tree.model_dump(mode="json"))).hexdigest()
            seen.add(s.name)
            old = self.tracked.get(s.name)
            if old is None or old.version != s.version or old.digest != digest:
                self.tracked[s.name] = Tracked(s.name, s.version, tree, digest, footprint(tree))
                self.timers.drop(s.name)  # the new definition's timers come with its edit evaluation
                self._load_state(s.name)
                self.checked.setdefault(s.name, {})
            if self.evaluated.get(s.name) != (s.version, digest):
                changed.append(s.name)
            self.frozen.pop(s.name, None)  # made dynamic again
        versions = {n: t.version for n, t in self.tracked.items()} | self.frozen
        for gone in set(self.tracked) - seen:  # deleted, or made static: no longer kept live
            del self.tracked[gone]
            self.timers.drop(gone)
            self.checked.pop(gone, None)
            self._due.pop(gone, None)
            self.evaluated.pop(gone, None)
        deleted = {n: v for n, v in versions.items() if n not in seen and n not in statics}
        self._settle(now, deleted, {n: v for n, v in statics.items() if self.frozen.get(n) != v})
        self._defs_mark = mark
        return changed

    def _load_state(self, name: str) -> None:
        if name not in self.state:
            self.state[name] = membership_state(self.store, name)

    def _settle(self, now: datetime, deleted: dict[str, int], statics: dict[str, int]) -> None:
        """Close the memberships of deleted segments (exits with cause `edit`) and bring static segments'
        recorded membership to their frozen lists (cause `manual`: a person set the list)."""
        changes: list[Change] = []
        for name, version in sorted(deleted.items()):
            self._load_state(name)
            changes += [self._change_at(name, version, u, now, False, "edit")
                        for u, (inn, _) in sorted(self.state[name].items()) if inn]
        for name, version in sorted(statics.items()):
            members = static_members(self.appdb, name)
            if members is None:  # not frozen yet: its list is stored right after it is created
                continue
            self._load_state(name)
            cur = {u for u, (inn, _) in self.state[name].items() if inn}
            want = set(members)
            changes += [self._change_at(name, version, u, now, True, "manual") for u in sorted(want - cur)]
            changes += [self._change_at(name, version, u, now, False, "manual") for u in sorted(cur - want)]
            self.frozen[name] = version
        if changes:
            self.commit(changes, now)
            self._settled += changes
        for name in deleted:
            self.state.pop(name, None)
            self.frozen.pop(name, None)

    def settle_orphans(self, now: datetime) -> list[Change]:
        """Close memberships left open in segments that no longer exist (deleted while no engine ran)."""
        known = set(self.tracked) | set(self.frozen) | {s.name for s in list_segments(self.appdb)}
        rows = self.store.query("SELECT segment, max(version) AS version FROM segment_transitions "
                                "GROUP BY segment").to_pylist()
        before = len(self._settled)
        self._settle(now, {r["segment"]: r["version"] for r in rows if r["segment"] not in known}, {})
        return self._settled[before:]

    # -- lifecycle -------------------------------------------------------------------------------
    def start(self, *, thread: bool = True) -> None:
        """Load membership, settle interrupted evaluations, queue catch-up work; start the live thread."""
        now = self.clock()
        live_log.ensure_table(self.appdb)
        n = live_log.interrupt_running(self.appdb, now)
        if n:
            log.warning("live: %d evaluations were interrupted by the last stop; marked failed", n)
        last = {}
        for row in reversed(live_log.list_evaluations(self.appdb, limit=10_000)):
            if row["status"] == "ok" and row["kind"] in ("sweep", "edit"):
                last[row["segment"]] = row
        self.refresh(now)
        self.settle_orphans(now)
        self._settled = []
        for name, t in self.tracked.items():
            row = last.get(name)
            if row is not None and row["version"] == t.version:
                self.evaluated[name] = (t.version, t.digest)
                self.swept_at[name] = row["as_of"]
        if self.config.timers:  # those that fell due while stopped fire at the first step
            self.timers.load({n: (t.version, t.digest) for n, t in self.tracked.items()
                              if self._timed(t) and self.evaluated.get(n) == (t.version, t.digest)})
        wm = self.store.get_state(WATERMARK_KEY)
        if self.config.timers:
            self._recover_timers(now, datetime.fromisoformat(wm) - CATCH_UP_MARGIN if wm else None)
        if wm:
            self._watermark = self._watermark_saved = datetime.fromisoformat(wm)
            rows = self.store.query(
                "SELECT user_id, list(DISTINCT event) AS names, list(DISTINCT ts) AS stamps FROM events "
                "WHERE received_at > $since AND user_id IS NOT NULL GROUP BY user_id",
                {"since": self._watermark - CATCH_UP_MARGIN}).to_pylist()
            for r in rows:
                self.pending.setdefault(r["user_id"], set()).update(r["names"])
                self.pending_ts.setdefault(r["user_id"], set()).update(r["stamps"])
        self._next_sweep = now  # a full sweep right after the catch-up
        self._due = {n: now for n in self.evaluated}  # (threaded: the others get an edit evaluation first)
        self._summary_since = now
        self.started = True
        if thread:
            self._sweeper = threading.Thread(target=self._sweep_loop, name="segmint-live-sweeper", daemon=True)
            self._sweeper.start()
            self._thread = threading.Thread(target=self._run, name="segmint-live", daemon=True)
            self._thread.start()

    def stop(self, *, drain: bool = True) -> None:
        """Finish what was notified (unless drain=False: the next start catches up), flush the interval
        summaries, stop the threads."""
        self._stop.set()
        self._inbox.put(("wake", None))
        if self._sweeper is not None:
            self._work.put(([], "stop", None, None))
            self._sweeper.join()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        self._sweeper = None
        try:
            if drain:
                self.step(self.clock(), sweep=False)
            self.flush_summary(self.clock())
            self.timers.flush()
        except Exception:
            log.exception("live: final step failed")

    def _sweep_loop(self) -> None:
        """The sweeper thread: runs bulk queries off the live thread, hands the results back through the inbox."""
        while True:
            names, kind, job, fut = self._work.get()
            if kind == "stop":
                return
            for name in names:
                if self._stop.is_set():
                    break
                cpu = time.thread_time()
                b = self._bulk_query(name, kind, self.clock())
                self.perf["sweeper_cpu_s"] += time.thread_time() - cpu
                if b is not None:
                    b.job = job
                    self._inbox.put(("bulk", b))
            self._inbox.put(("done", (job, fut, kind)))

    def _run(self) -> None:
        window = self.config.batch_window_ms / 1000
        while not self._stop.is_set():
            busy = bool(self.pending or self._sweep_queue)
            try:
                if not busy:
                    try:  # work that arrived during the last step has gathered long enough: no window
                        item, idle = self._inbox.get_nowait(), False
                    except queue.Empty:
                        timer = self.timers.next_due()  # due timers gather a little: fewer, larger steps
                        if timer is not None:
                            timer += timedelta(milliseconds=self.config.timer_window_ms)
                        due_at = min((x for x in (self._next_due_time(), timer) if x is not None), default=None)
                        due = (due_at - self.clock()).total_seconds() if due_at else 1.0
                        item, idle = self._inbox.get(timeout=min(max(due, 0.0), 1.0)), True
                    self._inbox.put(item)
                    if window and idle and item[0] == "events":  # gather the users touched just after
                        time.sleep(window)
            except queue.Empty:
                pass
            try:
                cpu = time.thread_time()
                self.step(self.clock(), sweep_budget=1)
                self.perf["live_cpu_s"] += time.thread_time() - cpu
                self.error = None
            except Exception as exc:  # keep going; the evaluations log shows the failure
                self.error = exc
                log.exception("live step failed")
                time.sleep(0.5)

    # -- processing ------------------------------------------------------------------------------
    def step(self, now: datetime, *, sweep: bool = True, sweep_budget: int | None = None) -> StepResult:
        """One round: absorb notified batches and bulk results, pick up edits, evaluate touched users, and
        start (sweeper thread) or continue (inline) a due sweep."""
        result = StepResult()
        began = time.perf_counter()
        with self._lock:
            requests = self.drain_inbox()
            mono = time.monotonic()
            if not self.started or mono - self._defs_checked >= 1.0 or sweep_budget is None or requests:
                self._defs_checked = mono
                changed = self.refresh(now)
                if self._sweeper is not None:
                    fresh = [n for n in changed if n not in self._edits_queued]
                    if fresh:
                        self._edits_queued.update(fresh)
                        self._work.put((fresh, "edit", None, None))
                else:
                    for name in changed:
                        result.changes += self.evaluate_bulk(name, now, kind="edit")
                        result.swept.append(name)
            settled, self._settled = self._settled, []
            result.changes += settled
            result.changes += self.fire_timers(now)  # before the per-user path: their due times come first
            result.users = len(self.pending)
            result.changes += self.process_pending(now)
            # bulk results after the per-user path: users whose events were stored before a result's as-of
            # time have just been evaluated, so the result leaves them alone (and does not call them `time`)
            ready, self._ready = self._ready, []
            for b in ready:
                self._edits_queued.discard(b.name)
                t0 = time.perf_counter()
                changes = self._apply_bulk(b)
                self._perf_add("apply", time.perf_counter() - t0)
                result.changes += changes
                result.swept.append(b.name)
                if b.job in self._jobs:
                    self._jobs[b.job].changes += changes
            for name, fut in requests if self._sweeper is not None else ():  # to the sweeper thread
                names = sorted(self.tracked) if name is None else [name]
                job = next(self._job_ids)
                self._jobs[job] = StepResult(swept=names)
                self._work.put((names, "sweep", job, fut))
            for name, fut in requests if self._sweeper is None else ():  # inline mode
                try:
                    names = list(self.tracked) if name is None else [name]
                    res = StepResult(swept=names)
                    for n in names:
                        res.changes += self.evaluate_bulk(n, now, kind="sweep")
                    fut.set_result(res)
                except Exception as exc:
                    fut.set_exception(exc)
            done, self._done = self._done, []
            for job, fut, kind in done:
                res = self._jobs.pop(job, None) if job is not None else None
                if job is None and kind == "sweep":  # the scheduled sweep finished
                    self._sweeping = None
                if fut is not None:
                    fut.set_result(res or StepResult())
            if sweep and self._sweeper is not None and self._sweeping is None:
                name = self._next_due(now)
                if name is not None:  # one scheduled sweep at a time: it competes with the per-user path
                    self._sweeping = name
                    self._work.put(([name], "sweep", None, None))
            if sweep and self._sweeper is None and self._next_sweep is not None and now >= self._next_sweep \
                    and not self._sweep_queue:
                self._next_sweep = now + timedelta(seconds=self.config.sweep_interval_seconds)
                self._sweep_queue = sorted(self.tracked)
            while sweep and self._sweep_queue and (sweep_budget is None or len(result.swept) < sweep_budget):
                name = self._sweep_queue.pop(0)
                result.changes += self.evaluate_bulk(name, now, kind="sweep")
                result.swept.append(name)
            if self._summary_since is not None and \
                    (now - self._summary_since).total_seconds() >= self.config.sweep_interval_seconds:
                self.flush_summary(now)
            if self.timers.dirty and (self._thread is None or mono - self._timers_flushed >= 1.0):
                self._timers_flushed = mono
                self.timers.flush()
        self.perf["steps"] += 1
        self._perf_add("step", time.perf_counter() - began)
        return result

    def _grid(self, name: str, after: datetime) -> datetime:
        """A segment's next scheduled sweep after a bulk evaluation as of `after`: the next point of its own grid
        (every interval, phase-shifted by its rank among the segments so sweeps are spread over the interval),
        so never more than one interval later."""
        interval = timedelta(seconds=self.config.sweep_interval_seconds)
        names = sorted(self.tracked)
        rank = names.index(name) if name in names else 0
        origin = _PROBE_TIME + interval * rank / max(1, len(names))
        return origin + interval * ((after - origin) // interval + 1)

    def _next_due(self, now: datetime) -> str | None:
        """The most overdue segment whose scheduled sweep is due (threaded mode), if any."""
        due = [(at, n) for n, at in self._due.items()
               if at <= now and n in self.tracked and n not in self._edits_queued]
        return min(due)[1] if due else None

    def _next_due_time(self) -> datetime | None:
        """When the live thread must wake up to start a scheduled sweep (None: a sweep is running, or none is
        scheduled; the sweeper's hand-back wakes it)."""
        if self._sweeper is None:
            return self._next_sweep
        if self._sweeping is not None:
            return None
        return min((at for n, at in self._due.items() if n in self.tracked and n not in self._edits_queued),
                   default=None)

    def _perf_add(self, key: str, seconds: float) -> None:
        self.perf[key + "_s"] += seconds
        if key + "_max_s" in self.perf:
            self.perf[key + "_max_s"] = max(self.perf[key + "_max_s"], seconds)

    def process_pending(self, now: datetime) -> list[Change]:
        """The per-user path: evaluate the users touched since the last step for the segments they affect."""
        users, self.pending = self.pending, {}
        stamps, self.pending_ts = self.pending_ts, {}
        wm = self._watermark
        by_event: dict[str, list[str]] = {}  # event name -> segments reading it
        wide = [n for n, t in self.tracked.items() if t.fp.profile]  # affected by any event
        for n, t in self.tracked.items():
            for e in t.fp.events:
                by_event.setdefault(e, []).append(n)
        todo: dict[str, list[str]] = {}
        for u, names in users.items():
            hit = set(self.tracked) if names & set(WIDE_EVENTS) else \
                {n for e in names for n in by_event.get(e, ())}.union(wide)
            for n in hit:
                todo.setdefault(n, []).append(u)
        changes: list[Change] = []
        if todo:
            start = time.perf_counter()
            self.perf["users"] += len(users)
            try:
                results = self._evaluate_users(todo, now)
                self._perf_add("query", time.perf_counter() - start)
            except Exception as exc:
                log.exception("live: per-user evaluation failed")
                elapsed = (time.perf_counter() - start) * 1000
                live_log.record(self.appdb, [{
                    "segment": name, "version": self.tracked[name].version, "kind": "event", "as_of": now,
                    "started_at": now, "finished_at": now, "elapsed_ms": elapsed, "users": len(us), "status": "failed",
                    "error": f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"[:2000]}
                    for name, us in todo.items()])
                return []
            for name, us in todo.items():
                t, st, res = self.tracked[name], self.state[name], results[name]
                for u in us:
                    old, last = st.get(u, (False, None))
                    if (u in res) != old:  # dated at the user's latest new event (not after now)
                        at = max((x for x in stamps.get(u, ()) if x <= now and (last is None or x > last)),
                                 default=now)
                        changes.append(self._change(t, u, at, u in res, "event"))
                checked = self.checked.setdefault(name, {})
                for u in us:
                    checked[u] = now
                entered = sum(1 for c in changes if c.segment == name and c.kind == "enter")
                self._count(name, users=len(us), rows=len(res), entered=entered,
                            exited=sum(1 for c in changes if c.segment == name) - entered)
        state = {}
        if wm is not None and wm != self._watermark_saved and (changes or self._watermark_saved is None or
                                                                wm - self._watermark_saved > timedelta(seconds=5)):
            state[WATERMARK_KEY] = wm.isoformat()
        t0 = time.perf_counter()
        self.commit(changes, now, state, check=False)
        self._perf_add("commit", time.perf_counter() - t0)
        if state:
            self._watermark_saved = wm
        for n, us in todo.items():
            if self._timed(self.tracked[n]):
                self._retime_todo.setdefault(n, set()).update(us)
        mono = time.monotonic()
        if self._retime_todo and (self._inbox.empty() or mono - self._retimed_at >= RETIME_EVERY_S):
            todo_now, self._retime_todo, self._retimed_at = self._retime_todo, {}, mono
            t0 = time.perf_counter()
            self._retime({n: sorted(us) for n, us in todo_now.items()}, now)
            self._perf_add("retime", time.perf_counter() - t0)
        return changes

    # -- timers ----------------------------------------------------------------------------------
    def _timed(self, t: Tracked) -> bool:
        return self.config.timers and t.untimed is None

    def fire_timers(self, now: datetime) -> list[Change]:
        """Fire the timers due by now: replay those users from the due time (or from their last recorded
        evaluation, when later) to now with the reference evaluator, each change at its exact instant (cause
        `time`, or `event` at one of their event times), and set their next timers."""
        began = time.perf_counter()
        budget = FIRE_BUDGET_BUSY_S if self.pending else FIRE_BUDGET_S
        changes: list[Change] = []
        held: list[Change] = []  # not committed yet
        done: set[tuple[str, str]] = set()
        while time.perf_counter() - began < budget:
            due = self.timers.pop_due(now, limit=FIRE_CHUNK_BUSY if self.pending else FIRE_CHUNK)
            if not due:
                break
            if done.intersection((seg, u) for seg, u, _ in due):  # due again at once: replay from the new state
                self.commit(held, now)
                held, done = [], set()
            done.update((seg, u) for seg, u, _ in due)
            mine = self._fire(due, now)
            held += mine
            changes += mine
        # check=True: a timer fired again after a restart (new due time not flushed) records nothing twice
        self.commit(held, now)
        # at the first step (a restart's catch-up: windows that closed while stopped), whatever the budget,
        # users about to be evaluated by the per-user path are replayed first: it dates a flip at their newest
        # event, which would misdate a window that closed before it. (Every step would stall a busy engine.)
        for _ in range(MAX_CHAIN if self.perf["steps"] == 0 else 0):
            due = self.timers.pop_users(set(self.pending), now)
            if not due:
                break
            mine = self._fire(due, now)
            self.commit(mine, now)
            changes += mine
        self.perf["timer_changes"] += len(changes)
        self.perf["timer_s"] += time.perf_counter() - began
        return changes

    def _fire(self, due: list[tuple[str, str, datetime]], now: datetime) -> list[Change]:
        """Replay some fired timers' users (see fire_timers); returns their changes, not yet committed."""
        self.perf["timers_fired"] += len(due)
        segs = {seg for seg, _, _ in due}
        names = None if any(t.fp.profile for n in segs if (t := self.tracked.get(n)) is not None) else \
            {e for n in segs if (t := self.tracked.get(n)) is not None for e in t.fp.events}
        data = load_users(self.store, sorted({u for _, u, _ in due}), now, names)  # only the events they read
        changes: list[Change] = []
        by_seg: dict[str, list[tuple[str, datetime]]] = {}
        for seg, user, at in due:
            by_seg.setdefault(seg, []).append((user, at))
        for seg, items in by_seg.items():
            t = self.tracked.get(seg)
            if t is None or not self._timed(t) or self.evaluated.get(seg) != (t.version, t.digest):
                continue  # edited or deleted meanwhile: its edit evaluation sets new timers
            st, checked = self.state.setdefault(seg, {}), self.checked.get(seg, {})
            dues: dict[str, datetime | None] = {}
            for user, first in items:
                events, profile = data[user]
                member, last = st.get(user, (False, None))
                seen = max((x for x in (last, checked.get(user)) if x is not None), default=None)
                at: datetime | None = first
                if seen is not None and seen >= first:  # evaluated since: the first change after that
                    at = next_change(t.tree, t.fp, events, profile, seen, self.tz)
                stamps = {e.ts for e in events}
                member_at = live_times.member_at(t.tree, events, profile, self.tz)
                for _ in range(MAX_CHAIN):
                    if at is None or at > now:
                        break
                    now_in = member_at(at)
                    if now_in != member:
                        changes.append(self._change_at(seg, t.version, user, at, now_in,
                                                       "event" if at in stamps else "time", st))
                        member = now_in
                    at = next_change(t.tree, t.fp, events, profile, at, self.tz, member)
                dues[user] = at
            self.timers.set(seg, t.version, t.digest, dues, now)
        return changes

    def _recover_timers(self, now: datetime, since: datetime | None) -> None:
        """At start: every timed segment's timers as of its last sweep (or the ingest catch-up start, when
        earlier), kept where earlier than a stored one, so changes due while stopped fire at their instants
        even for users whose latest timer was not flushed before a kill."""
        typed = self.store.property_columns()
        for name, t in self.tracked.items():
            if not self._timed(t) or self.evaluated.get(name) != (t.version, t.digest):
                continue
            at = min((x for x in (self.swept_at.get(name), since) if x is not None), default=now)
            dq = t.due_query(typed, self.tz)
            if dq is None:
                continue
            try:
                tab = self.store.query(*dq.at(at))
            except Exception:  # the first sweep recomputes them
                log.exception("live: recovering the timers of %s failed", name)
                continue
            mine = self.timers.due.get(name, {})
            dues = {u: d for u, d in zip(tab.column(0).to_pylist(), tab.column(1).to_pylist(), strict=True)
                    if u not in mine or d < mine[u][0]}
            self.timers.set(name, t.version, t.digest, dues, datetime.min)

    def _retime(self, todo: dict[str, list[str]], now: datetime) -> None:
        """New timers of users the per-user path just evaluated (one restricted due query for all segments)."""
        if not todo:
            return
        typed = self._typed()
        queries = {n: q for n in todo if (q := self.tracked[n].due_query(typed, self.tz)) is not None}
        names = list(queries)
        if not names:
            return
        try:
            sql, params = dues_query([("d" + self.tracked[n].digest[:12], *queries[n].at(now), todo[n])
                                      for n in names])
            found: dict[str, dict[str, datetime | None]] = {n: dict.fromkeys(todo[n]) for n in names}
            rows = getattr(self.store, "rows", None)
            got = rows(sql, params) if rows is not None else \
                [(r["s"], r["user_id"], r["due"]) for r in self.store.query(sql, params).to_pylist()]
            for s, u, due in got:
                found[names[s]][u] = due
        except Exception:  # the timers stay as they were; the next sweep recomputes them
            log.exception("live: computing the next-change timers of touched users failed")
            return
        for n, dues in found.items():
            t = self.tracked[n]
            if self.evaluated.get(n) == (t.version, t.digest):
                self.timers.set(n, t.version, t.digest, dues, now)

    def _typed(self) -> dict[str, str]:
        """The store's typed property columns, re-read at most once a second (the taxonomy rarely adds one; a
        query compiled without a new column reads the property from the JSON, which gives the same result)."""
        mono = time.monotonic()
        if self._typed_cache is None or mono - self._typed_cache[0] >= 1.0:
            self._typed_cache = (mono, self.store.property_columns())
        return self._typed_cache[1]

    def _evaluate_users(self, todo: dict[str, list[str]], now: datetime) -> dict[str, set[str]]:
        out: dict[str, set[str]] = {}
        by_ref = list(todo)
        if self.mode == "sql":
            typed = self._typed()
            in_sql = [n for n in todo if self.tracked[n].in_sql(self.store, typed)]
            by_ref = [n for n in todo if n not in in_sql]
            if in_sql:
                out.update(self._evaluate_users_sql({n: todo[n] for n in in_sql}, now))
        if by_ref:
            data = load_users(self.store, sorted({u for n in by_ref for u in todo[n]}), now)
            for name in by_ref:
                tree = self.tracked[name].tree
                out[name] = {u for u in todo[name]
                             if ref.evaluate(tree, data[u][0], data[u][1], now, workspace_tz=self.tz)}
        return out

    def _evaluate_users_sql(self, todo: dict[str, list[str]], now: datetime) -> dict[str, set[str]]:
        """Each segment over its own touched users, all in one query."""
        typed = self._typed()
        names = list(todo)
        sql, params = users_query([("g" + self.tracked[n].digest[:12], *self.tracked[n].query(self.store, now, typed),
                                    todo[n]) for n in names])
        rows = getattr(self.store, "rows", None)
        found = rows(sql, params) if rows is not None else self.store.query(sql, params).to_pylist()
        out: dict[str, set[str]] = {n: set() for n in names}
        for r in found:
            s, u = (r["s"], r["user_id"]) if isinstance(r, dict) else r
            out[names[s]].add(u)
        return out

    def evaluate_bulk(self, name: str, now: datetime, *, kind: str = "sweep") -> list[Change]:
        """Evaluate one segment for everyone as of now; record the difference (cause time, or edit)."""
        b = self._bulk_query(name, kind, now)
        return [] if b is None else self._apply_bulk(b)

    def _bulk_query(self, name: str, kind: str, now: datetime) -> _Bulk | None:
        """Run the bulk evaluation (any thread); the evaluation is logged as running until applied."""
        t = self.tracked.get(name)
        if t is None:
            return None
        kind = "edit" if kind == "edit" or self.evaluated.get(name) != (t.version, t.digest) else kind
        b = _Bulk(name, t.version, t.digest, kind, now, live_log.begin(self.appdb, name, t.version, kind, now, now),
                  time.perf_counter())
        try:
            typed = self.store.property_columns()
            if t.in_sql(self.store, typed):
                table = self.store.query(*t.query(self.store, now, typed))
                b.ids = {str(u) for u in table.column(0).to_pylist()} if table.num_rows else set()
            else:
                b.ids = self._bulk_reference(t, now)
            # transitions other writers recorded (manual, backfill) count as membership; read here, off the
            # live thread, and merged with what the live thread recorded meanwhile when applied
            b.state = membership_state(self.store, name)
            dq = t.due_query(typed, self.tz) if self._timed(t) else None
            if dq is not None:
                w0, c0 = time.perf_counter(), time.thread_time()
                try:  # without them the evaluation still counts: the timers stay as they were
                    tab = self.store.query(*dq.at(now))
                    b.dues = dict(zip(tab.column(0).to_pylist(), tab.column(1).to_pylist(), strict=True))
                except Exception:
                    log.exception("live: computing the next-change timers of %s failed", name)
                self.perf["due_query_s"] += time.perf_counter() - w0
                self.perf["due_query_cpu_s"] += time.thread_time() - c0
                self.perf["due_rows"] += len(b.dues or ())
            if kind == "sweep":
                self._predate(b, t)
        except Exception as exc:
            log.exception("live: evaluation of %s failed", name)
            b.error = f"{type(exc).__name__}: {exc}"
        return b

    def _bulk_reference(self, t: Tracked, now: datetime) -> set[str]:
        """Members by the reference evaluator over every profile, in chunks (segments SQL cannot run yet)."""
        ids = [str(u) for u in self.store.query("SELECT user_id FROM profiles ORDER BY user_id").column(0).to_pylist()]
        out: set[str] = set()
        for i in range(0, len(ids), REFERENCE_CHUNK):
            chunk = ids[i:i + REFERENCE_CHUNK]
            data = load_users(self.store, chunk, now)
            out.update(u for u in chunk if ref.evaluate(t.tree, data[u][0], data[u][1], now, workspace_tz=self.tz))
        return out

    def _diff(self, b: _Bulk, view: _View) -> dict[str, bool]:
        """Users whose membership the bulk result changes (True: enters), leaving those evaluated after it."""
        assert b.ids is not None
        now, st = b.as_of, view.state
        newer = {u for u, (_, ts) in st.items() if ts > now} | {u for u, at in view.checked.items() if at > now}
        cur = {u for u, (inn, _) in st.items() if inn}
        if b.kind == "sweep":  # users whose timer fell due just before: it replays them exactly (never late);
            # older overdue timers (an engine behind) are the sweep's, dated as sweeps date changes
            due, since = self.timers.due.get(b.name, {}), now - timedelta(seconds=SWEEP_DEFERS_S)
            newer |= {u for u in b.ids ^ cur if (d := due.get(u)) is not None and since < d[0] <= now}
        return {**dict.fromkeys(sorted(b.ids - cur - newer), True), **dict.fromkeys(sorted(cur - b.ids - newer), False)}

    @staticmethod
    def _merged(stored: dict[str, tuple[bool, datetime]],
                mine: dict[str, tuple[bool, datetime]]) -> dict[str, tuple[bool, datetime]]:
        """The store's membership plus what this engine recorded since (the later transition per user wins)."""
        st = dict(stored)
        for u, (inn, ts) in mine.items():
            if u not in st or ts > st[u][1]:
                st[u] = (inn, ts)
        return st

    def _predate(self, b: _Bulk, t: Tracked) -> None:
        """On the sweeper thread: date a sweep's changes (reference evaluator, the costly part) from a copy of
        the engine's view, so the live thread only re-checks users that moved meanwhile."""
        with self._lock:  # a consistent copy, between two steps
            view = _View(self._merged(b.state or {}, self.state.get(b.name, {})), dict(self.checked.get(b.name, {})),
                         self.swept_at.get(b.name))
        try:
            b.dated = (self._exact(t, self._diff(b, view), b.as_of, None, view=view), view)
        except Exception:  # the live thread dates them itself
            log.exception("live: dating the changes of a sweep of %s failed", b.name)

    def _apply_bulk(self, b: _Bulk) -> list[Change]:
        """Diff a bulk result against membership (users updated after its as-of time keep their newer state)."""
        elapsed = lambda: (time.perf_counter() - b.started) * 1000  # noqa: E731
        t = self.tracked.get(b.name)
        if t is not None:
            self._due[b.name] = self._grid(b.name, b.as_of)
        if b.error is None and (t is None or (t.version, t.digest) != (b.version, b.digest)):
            b.error = "superseded: the definition changed while this evaluation ran (the new one is evaluated)"
        if b.error is not None:
            live_log.fail(self.appdb, b.eval_id, self.clock(), elapsed(), b.error)
            return []
        assert t is not None and b.ids is not None and b.state is not None
        now, ids = b.as_of, b.ids
        # the store's membership as read after the query, plus what this engine recorded since (later per user)
        st = self.state[b.name] = self._merged(b.state, self.state.get(b.name, {}))
        checked = self.checked.get(b.name, {})
        changed = self._diff(b, _View(st, checked, self.swept_at.get(b.name)))
        try:
            if b.kind == "edit":
                changes = [self._change(t, u, now, inn, "edit") for u, inn in changed.items()]
            else:
                changes = self._reuse_dated(b, changed, st, checked)
                done = {c.user_id for c in changes}
                self.perf["predated"] += len(done)
                changes += self._exact(t, {u: inn for u, inn in changed.items() if u not in done}, now, None)
            self.commit(changes, now)
        except Exception as exc:
            log.exception("live: recording the evaluation of %s failed", b.name)
            live_log.fail(self.appdb, b.eval_id, self.clock(), elapsed(), f"{type(exc).__name__}: {exc}")
            return []
        self.evaluated[b.name] = (b.version, b.digest)
        if b.dues is not None:
            self.timers.replace(b.name, b.version, b.digest, b.dues, now)
        self.swept_at[b.name] = now
        self.checked[b.name] = {u: at for u, at in checked.items() if at > now}
        members = sum(1 for inn, _ in st.values() if inn)
        live_log.finish(self.appdb, b.eval_id, self.clock(), round(elapsed(), 1), users=len(ids), rows=len(ids),
                        members=members, entered=sum(c.kind == "enter" for c in changes),
                        exited=sum(c.kind == "exit" for c in changes))
        return changes

    def _reuse_dated(self, b: _Bulk, changed: dict[str, bool], st: dict[str, tuple[bool, datetime]],
                     checked: dict[str, datetime]) -> list[Change]:
        """The sweeper's dated changes of the users still changed the same way and untouched since its copy."""
        if b.dated is None:
            return []
        pre, view = b.dated
        if view.swept_at != self.swept_at.get(b.name):
            return []
        same = {u for u, inn in changed.items()
                if view.state.get(u) == st.get(u) and view.checked.get(u) == checked.get(u)}
        moved = {c.user_id for c in pre if c.user_id not in same or c.user_id not in changed}
        return [c for c in pre if c.user_id not in moved]

    def _exact(self, t: Tracked, changed: dict[str, bool], hi: datetime, stamps: dict[str, set[datetime]] | None,
               data: dict[str, tuple[list[ref.Event], ref.Profile]] | None = None,
               view: _View | None = None) -> list[Change]:
        """Changes found as of `hi`, each at the instant in (last check, hi] the as-of evaluation changed.

        Used by sweeps (stamps None: every change has cause time). With `stamps`, the times of the users' new
        events, a flip at one of them gets cause event (kept for callers that can afford reference dating;
        the per-user path dates at the latest new event instead, see process_pending). `view`: the membership,
        per-user checks and last sweep to work from (a copy, on the sweeper thread), else the engine's own.
        """
        if view is None:
            view = _View(self.state[t.name], self.checked.get(t.name, {}), self.swept_at.get(t.name))
        st, checked, lo_base = view.state, view.checked, view.swept_at
        if not changed:
            return []
        default = "time" if stamps is None else "event"
        if lo_base is None or len(changed) > MAX_EXACT_USERS:
            return [self._change_at(t.name, t.version, u, hi, new, default, st) for u, new in changed.items()]
        if data is None:
            data = load_users(self.store, sorted(changed), hi)
        out: list[Change] = []
        for u, new in changed.items():
            lo = max(x for x in (lo_base, st.get(u, (False, None))[1], checked.get(u)) if x is not None)
            events, profile = data[u]
            flips = self._flips(t, events, profile, lo, hi, not new) if lo < hi else None
            if flips is None:
                out.append(self._change_at(t.name, t.version, u, hi, new, default, st))
                continue
            mine = stamps.get(u, set()) if stamps is not None else set()
            for at, member in flips:
                out.append(Change(t.name, t.version, u, at, "enter" if member else "exit",
                                  "event" if at in mine else "time"))
        return out

    def _flips(self, t: Tracked, events: list[ref.Event], profile: ref.Profile, lo: datetime, hi: datetime,
               state: bool) -> list[tuple[datetime, bool]] | None:
        """Every instant in (lo, hi] where the user's membership flips (None when the oracle disagrees at hi)."""

        def member(at: datetime) -> bool:
            return ref.evaluate(t.tree, events, profile, at, workspace_tz=self.tz)

        end = not state
        if member(hi) != end:
            return None
        flips: list[tuple[datetime, bool]] = []
        for at in candidate_times(t.fp, events, profile, lo, hi, self.tz):
            now_in = member(at)
            if now_in != state:
                flips.append((at, now_in))
                state = now_in
        if state != end:  # a change no candidate explains (interval ratio): bisect to the microsecond
            a, b = (flips[-1][0] if flips else lo), hi
            while b - a > MICRO:
                mid = a + (b - a) / 2  # timedelta arithmetic keeps whole microseconds
                if mid <= a or mid >= b:
                    break
                if member(mid) == state:
                    a = mid
                else:
                    b = mid
            flips.append((b, end))
        return flips

    def _change(self, t: Tracked, user: str, at: datetime, member: bool, cause: str) -> Change:
        return self._change_at(t.name, t.version, user, at, member, cause)

    def _change_at(self, name: str, version: int, user: str, at: datetime, member: bool, cause: str,
                   state: dict[str, tuple[bool, datetime]] | None = None) -> Change:
        last = (self.state[name] if state is None else state).get(user, (False, None))[1]
        if last is not None and at <= last:  # keep each user's history strictly ordered
            at = last + MICRO
        return Change(name, version, user, at, "enter" if member else "exit", cause)

    def commit(self, changes: list[Change], now: datetime, state: dict[str, str] | None = None, *,
               check: bool = True) -> None:
        """Write transitions + events (+ watermark) in one transaction; then update memory. `check` drops
        transitions already stored (with their events); the per-user path skips it: its ids carry a time
        later than the user's stored transitions, so they cannot exist yet."""
        if not changes and not state:
            return
        if changes and check:
            ids = [c.id for c in changes]
            known = set(self.store.query("SELECT id FROM segment_transitions WHERE id IN (SELECT unnest($ids))",
                                         {"ids": ids}).column("id").to_pylist())
            changes = [c for c in changes if c.id not in known]
        self.store.write(change_batch(changes, wall_now(), state))
        mono = time.monotonic()
        for c in sorted(changes, key=lambda c: c.ts):
            self.state.setdefault(c.segment, {})[c.user_id] = (c.kind == "enter", c.ts)
        if changes and any(t.fp.events & set(SEGMENT_EVENTS) for t in self.tracked.values()):
            for c in changes:  # segments conditioned on enter/exit events see them at the next step
                self.pending.setdefault(c.user_id, set()).add(ENTERED if c.kind == "enter" else EXITED)
                self.pending_ts.setdefault(c.user_id, set()).add(c.ts)
        for hook in self.on_recorded:
            try:
                hook(changes, mono)
            except Exception:
                log.exception("live: on_recorded hook failed")

    # -- summaries and reads ---------------------------------------------------------------------
    def _count(self, name: str, **counts: int) -> None:
        s = self._summary.setdefault(name, dict.fromkeys(SUMMARY_FIELDS, 0))
        for k, v in counts.items():
            s[k] += v

    def flush_summary(self, now: datetime) -> None:
        """Record the per-user path's counters of the past interval (one `event` row per segment)."""
        since = self._summary_since or now
        rows = [{"segment": name, "version": self.tracked[name].version if name in self.tracked else 0,
                 "kind": "event", "as_of": now, "started_at": since, "finished_at": now, "status": "ok",
                 "members": sum(1 for inn, _ in self.state.get(name, {}).values() if inn), **counts}
                for name, counts in self._summary.items()]
        live_log.record(self.appdb, rows)
        self._summary = {}
        self._summary_since = now

    def members(self, name: str) -> list[str]:
        """Current members of a live segment, from memory (sorted)."""
        with self._lock:
            return sorted(u for u, (inn, _) in self.state.get(name, {}).items() if inn)

    def status(self) -> dict[str, Any]:
        """Figures for /health and the API: tracked segments, pending users, next sweep, last error."""
        next_sweep = self._next_sweep
        if self._sweeper is not None:
            for _ in range(3):  # read from another thread than the live one, which may change the schedule
                try:
                    next_sweep = self._next_due_time()
                    break
                except RuntimeError:  # dictionary changed size during iteration: read again
                    next_sweep = None
        try:  # read from another thread than the live one
            timers: int | None = sum(len(d) for d in list(self.timers.due.values()))
        except RuntimeError:
            timers = None
        return {"segments": len(self.tracked), "pending_users": len(self.pending), "mode": self.mode,
                "next_sweep": next_sweep, "timers": timers,
                "error": None if self.error is None else str(self.error),
                "perf": {k: round(v, 3) for k, v in self.perf.items()}}


def start_live(ws: Any, ingestor: Any) -> LiveSegments | None:
    """Create the workspace's live engine, hook it to the ingest writer and start its thread (None when
    `[live] enabled = false`)."""
    cfg = ws.config.live
    if not cfg.enabled:
        return None
    if ws.store.dialect != "duckdb":  # the membership reads and the per-user query are DuckDB SQL for now
        log.warning("live segments need the DuckDB store; %s is not supported yet: disabled", ws.store.dialect)
        return None
    live = LiveSegments(ws.store, ws.appdb, config=cfg, workspace_tz=ws.config.timezone)
    ingestor.on_stored.append(live.notify)
    live.start()
    return live


def health(appdb: Engine, config: LiveConfig, now: datetime | None = None) -> list[live_log.Health]:
    """Health of every dynamic saved segment (flags per docs/live-segments.md)."""
    live_log.ensure_table(appdb)
    now = now or wall_now()
    return [live_log.segment_health(appdb, s.name, s.version, now, interval_seconds=config.sweep_interval_seconds,
                                    stale_after_intervals=config.stale_after_intervals,
                                    size_change_factor=config.size_change_factor,
                                    min_size_change=config.min_size_change, churn_limit=config.churn_limit)
            for s in list_segments(appdb) if s.kind == "dynamic"]
