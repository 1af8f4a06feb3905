"""The ingest pipeline: accept -> journal (durable) -> writer thread -> event store in Arrow batches.

`Ingestor.submit` returns only after the records are fsynced in the journal; a background thread
reads the journal forward, drops duplicate message ids, and writes events, profile traits, identity
links and rejected messages in one store transaction together with the journal position.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pyarrow as pa

from segmint.ingest.journal import Journal, Position
from segmint.store.base import EventStore, ProfileUpdate, WriteBatch
from segmint.store.schema import REJECTED_SCHEMA, events_to_arrow
from segmint.store.schema import dumps as json_text

log = logging.getLogger(__name__)
STATE_KEY = "journal_position"
MAX_SEEN = 2_000_000

# A checker inspects one normalized event and returns violations, tuples that start with (field,
# reason) and may go on with (kind, value) and carry a `blocking` flag (taxonomy.validate.Violation);
# the taxonomy plugs in here. `strict` says whether a blocking violation rejects the event; either way
# every violation is counted in the store (WriteBatch.violations).
Checker = Callable[[dict[str, Any]], list[tuple[Any, ...]]]
MAX_EXAMPLE_CHARS = 200


def violation_record(ev: dict[str, Any], problem: tuple[Any, ...], *, rejected: bool) -> dict[str, Any]:
    """A violation as journaled and counted: event, field, kind, reason, message id and offending value."""
    value = problem[3] if len(problem) > 3 else None
    text = None if value is None else orjson.dumps(value, default=str).decode()[:MAX_EXAMPLE_CHARS]
    return {"event": ev.get("event"), "field": problem[0], "reason": problem[1],
            "kind": problem[2] if len(problem) > 2 else "invalid", "message_id": ev.get("message_id"),
            "value": text, "received_at": ev.get("received_at"), "rejected": rejected}


def rejection(reason: str, field: str, payload: Any, *, index: int = -1, source: str = "http",
              received_at: datetime | None = None) -> dict[str, Any]:
    """A rejected-message record as journaled and stored."""
    text = payload if isinstance(payload, str) else orjson.dumps(payload, default=str).decode()
    return {"received_at": (received_at or datetime.now(UTC)).isoformat(), "source": source, "reason": reason,
            "field": field, "message_index": index, "payload": text[:4096]}


class Ingestor:
    """Owns the journal and the writer thread for one workspace's store."""

    def __init__(self, store: EventStore, journal: Journal, *, flush_interval: float = 0.2,
                 flush_max_rows: int = 50_000, dedupe_window: timedelta = timedelta(hours=48)) -> None:
        self.store = store
        self.journal = journal
        self.flush_interval = flush_interval
        self.flush_max_rows = flush_max_rows
        self.dedupe_window = dedupe_window
        self.checker: Checker | None = None
        self.strict = False
        self.on_stored: list[Callable[[pa.Table], None]] = []  # hooks for live segments
        self._seen: OrderedDict[str, None] = OrderedDict()
        self._identities: dict[str, str] = {}
        self._position = Position.parse(store.get_state(STATE_KEY))
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._stored = threading.Condition()
        self._thread: threading.Thread | None = None
        self.error: BaseException | None = None
        self.stats = {"accepted": 0, "stored": 0, "duplicates": 0, "rejected": 0, "flushes": 0}

    # -- lifecycle -------------------------------------------------------------------------------
    def start(self) -> None:
        """Warm the dedupe window, replay what the journal holds beyond the store, start the writer."""
        since = datetime.now(UTC) - self.dedupe_window
        for mid in self.store.recent_message_ids(since):
            self._remember(mid)
        self._identities = self.store.identities()
        self._drain()
        self._thread = threading.Thread(target=self._run, name="segmint-writer", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Write everything journaled, then stop the writer."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join()
        self._drain()
        self.journal.close()

    # -- accepting -------------------------------------------------------------------------------
    def submit(self, events: Iterable[dict[str, Any]], rejected: Iterable[dict[str, Any]] = ()) -> Position:
        """Durably accept normalized events and rejection records; returns once fsynced."""
        events, rejected = list(events), list(rejected)
        violations: list[dict[str, Any]] = []  # of rejected events; kept events carry their own
        if self.checker is not None:
            kept = []
            for ev in events:
                problems = self.checker(ev)
                blocking = [p for p in problems if getattr(p, "blocking", True)]
                if blocking and self.strict:
                    rejected.append(rejection(blocking[0][1], blocking[0][0], ev, source=ev.get("source", "http")))
                    violations.extend(violation_record(ev, p, rejected=True) for p in problems)
                else:
                    if problems:
                        ev["violations"] = [violation_record(ev, p, rejected=False) for p in problems]
                    kept.append(ev)
            events = kept
        if not events and not rejected:
            return self.journal.end()
        for ev in events:  # journal the JSON columns as text: the writer then passes them through
            for key in ("properties", "context"):
                value = ev.get(key)
                if value is not None and not isinstance(value, str):
                    ev[key] = json_text(value)
        record: dict[str, Any] = {"events": events, "rejected": rejected}
        if violations:
            record["violations"] = violations
        pos = self.journal.append(orjson.dumps(record, default=str))
        self.stats["accepted"] += len(events)
        self.stats["rejected"] += len(rejected)
        self._wake.set()
        return pos

    def wait_stored(self, pos: Position | None = None, timeout: float = 30.0) -> bool:
        """Block until everything journaled up to `pos` (default: now) is in the store."""
        target = pos or self.journal.end()
        deadline = time.monotonic() + timeout
        self._wake.set()
        with self._stored:
            while self._position < target:
                if self.error is not None:
                    raise RuntimeError("ingest writer failed") from self.error
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._stored.wait(min(left, 0.05))
        return True

    @property
    def lag(self) -> int:
        """Bytes journaled but not yet stored (0 when caught up)."""
        end = self.journal.end()
        if end.segment != self._position.segment:
            return 1
        return end.offset - self._position.offset

    # -- writing ---------------------------------------------------------------------------------
    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self.flush_interval)
            self._wake.clear()
            try:
                self._drain()
                self.error = None
            except Exception as exc:  # keep the journal; retry on the next tick
                self.error = exc
                log.exception("ingest writer failed; will retry from %s", self._position)
                time.sleep(1.0)

    def _remember(self, message_id: str) -> None:
        self._seen[message_id] = None
        if len(self._seen) > MAX_SEEN:
            self._seen.popitem(last=False)

    def _drain(self) -> None:
        while True:
            events: list[dict[str, Any]] = []
            rejected: list[dict[str, Any]] = []
            violations: list[dict[str, Any]] = []
            last = self._position
            for payload, pos in self.journal.read_from(self._position):
                rec = orjson.loads(payload)
                events.extend(rec.get("events", ()))
                rejected.extend(rec.get("rejected", ()))
                violations.extend(rec.get("violations", ()))
                last = pos
                if len(events) >= self.flush_max_rows:
                    break
            if last == self._position:
                return
            self._write(events, rejected, last, violations)

    def _write(self, events: list[dict[str, Any]], rejected: list[dict[str, Any]], pos: Position,
               violations: list[dict[str, Any]] | None = None) -> None:
        batch = WriteBatch(state={STATE_KEY: str(pos)}, violations=list(violations or ()))
        fresh: list[dict[str, Any]] = []
        seen_now: set[str] = set()
        for ev in events:
            mid = ev["message_id"]
            if mid in self._seen or mid in seen_now:
                self.stats["duplicates"] += 1
                continue
            seen_now.add(mid)
            ev["ts"] = datetime.fromisoformat(ev["ts"])
            ev["received_at"] = datetime.fromisoformat(ev["received_at"])
            self._collect_identity(ev, batch)
            batch.violations.extend(ev.get("violations") or ())  # counted once per stored event
            fresh.append(ev)
        for ev in fresh:
            if ev.get("user_id") is None and ev.get("anonymous_id") in batch.identities:
                ev["user_id"] = batch.identities[ev["anonymous_id"]]
            elif ev.get("user_id") is None and ev.get("anonymous_id") in self._identities:
                ev["user_id"] = self._identities[ev["anonymous_id"]]
        if fresh:
            batch.events = events_to_arrow(fresh)
        if rejected:
            batch.rejected = pa.Table.from_pylist(
                [{**r, "received_at": datetime.fromisoformat(r["received_at"]).astimezone(UTC).replace(tzinfo=None)}
                 for r in rejected], schema=REJECTED_SCHEMA)
        self.store.write(batch)
        for mid in seen_now:
            self._remember(mid)
        self._identities.update(batch.identities)
        with self._stored:
            self._position = pos
            self._stored.notify_all()
        self.journal.release_before(pos)
        self.stats["stored"] += len(fresh)
        self.stats["flushes"] += 1
        if batch.events is not None:
            for hook in self.on_stored:
                try:
                    hook(batch.events)
                except Exception:
                    log.exception("on_stored hook failed")

    def _collect_identity(self, ev: dict[str, Any], batch: WriteBatch) -> None:
        user, anon = ev.get("user_id"), ev.get("anonymous_id")
        if ev["type"] == "alias" and ev.get("previous_id") and user:
            prev = ev["previous_id"]
            batch.identities.setdefault(prev, user)
        elif user and anon and anon not in self._identities:
            batch.identities.setdefault(anon, user)
        if ev["type"] == "identify" and user:
            batch.profiles.append(ProfileUpdate(user, ev.get("traits") or {}, ev["ts"], ev.get("timezone")))
        elif user and ev.get("timezone") and ev["type"] != "identify":
            batch.profiles.append(ProfileUpdate(user, {}, ev["ts"], ev.get("timezone")))
