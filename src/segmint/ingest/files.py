"""`segmint import`: JSONL of Segment-spec messages, and CSV / Parquet mapped by columns, into the store.

JSONL lines are validated one by one (the same models as the HTTP API). CSV and Parquet are read and
mapped inside an in-memory DuckDB (see `tabular.py`) and reach the store as Arrow batches. Every batch
is written in one store transaction with `skip_stored`, so re-importing a file stores nothing twice.
Lines or rows that cannot be accepted are stored as rejected records naming the file and line.
"""

from __future__ import annotations

import contextlib
import hashlib
import queue
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import orjson
import pyarrow as pa
import pyarrow.parquet as pq

from segmint.errors import InvalidInput, SegmintError
from segmint.ingest.messages import normalize, parse_message
from segmint.ingest.pipeline import Checker, rejection, violation_record
from segmint.ingest.tabular import ColumnMapping, stream_batches
from segmint.store.base import EventStore, ProfileUpdate, WriteBatch
from segmint.store.schema import REJECTED_SCHEMA, events_to_arrow

FORMATS = ("jsonl", "csv", "parquet")
JSONL_BATCH = 50_000
# Rows per mapped batch (one store transaction each). Each batch pays a scan of the stored message ids
# (skip_stored) and a profile upsert of its users, so bigger batches cost less per row; 1M rows of mapped
# events are ~170 MB of Arrow, and at most three are alive at once (mapping, queued, writing).
BATCH_ROWS = 1_000_000
Progress = Callable[[int], None]  # called with the number of rows just handled


@dataclass
class ImportResult:
    """What one file import did."""

    file: str
    rows: int = 0
    imported: int = 0
    duplicates: int = 0
    rejected: int = 0
    reasons: dict[str, int] = field(default_factory=dict)

    def add(self, rows: int, imported: int, rejected: int) -> None:
        """Account for one written batch."""
        self.rows += rows
        self.imported += imported
        self.rejected += rejected
        self.duplicates += rows - rejected - imported


def detect_format(path: Path, given: str | None) -> str:
    """The file format: --format if given, else from the extension."""
    if given:
        if given not in FORMATS:
            raise InvalidInput(f"unknown format {given!r}; use one of {', '.join(FORMATS)}", where="--format")
        return given
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] in (".jsonl", ".ndjson", ".json"):
        return "jsonl"
    if suffixes and suffixes[-1] in (".csv", ".tsv"):
        return "csv"
    if suffixes and suffixes[-1] in (".parquet", ".pq"):
        return "parquet"
    raise InvalidInput("cannot tell the format from the file name; give --format jsonl|csv|parquet", where=str(path))


def count_rows(path: Path, fmt: str) -> int | None:
    """Rows in the file for the progress bar (Parquet metadata; newlines for text files)."""
    if fmt == "parquet":
        return pq.ParquetFile(path).metadata.num_rows
    n = 0
    with open(path, "rb") as f:
        while chunk := f.read(1 << 22):
            n += chunk.count(b"\n")
    return max(n - (1 if fmt == "csv" else 0), 0)


def check_file(path: Path) -> None:
    """A missing or unreadable file is a fatal error for the command."""
    if not path.exists():
        raise InvalidInput("no such file", where=str(path))
    if not path.is_file():
        raise InvalidInput("not a file", where=str(path))


def mapping_connection() -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB for mapping, with UTC as the session zone (naive times are UTC)."""
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    return con


def import_table_file(
    store: EventStore,
    path: Path,
    fmt: str,
    mapping: ColumnMapping,
    *,
    source: str = "import",
    progress: Progress | None = None,
    batch_rows: int = BATCH_ROWS,
    received_at: datetime | None = None,
) -> ImportResult:
    """Import a CSV or Parquet file through a column mapping, in Arrow batches."""
    check_file(path)
    con = mapping_connection()
    try:
        try:
            rel = con.read_parquet(str(path)) if fmt == "parquet" else con.read_csv(str(path), header=True)
            rel.create_view("src")
            con.execute("SELECT * FROM src LIMIT 0")
        except duckdb.Error as exc:
            raise InvalidInput(f"cannot read as {fmt}: {str(exc).splitlines()[0]}", where=str(path)) from None
        return write_mapped(
            store,
            con,
            mapping,
            where=path.name,
            source=source,
            progress=progress,
            batch_rows=batch_rows,
            first_line=2 if fmt == "csv" else 1,
            received_at=received_at,
            result=ImportResult(str(path)),
        )
    finally:
        con.close()


def write_mapped(
    store: EventStore,
    con: duckdb.DuckDBPyConnection,
    mapping: ColumnMapping,
    *,
    where: str,
    source: str,
    result: ImportResult,
    progress: Progress | None = None,
    batch_rows: int = BATCH_ROWS,
    first_line: int = 1,
    received_at: datetime | None = None,
    state: dict[str, str] | None = None,
) -> ImportResult:
    """Map the relation `src` on `con` and write it batch by batch (state goes with the last batch)."""
    now = received_at or datetime.now(UTC)
    try:
        batches = prefetch(
            stream_batches(
                con,
                mapping,
                where=where,
                source=source,
                received_at=now,
                batch_rows=batch_rows,
                first_line=first_line,
            )
        )
        with contextlib.closing(batches):
            pending = None
            for mb in batches:
                if pending is not None:
                    _write(store, pending, result, progress)
                pending = mb
            if pending is not None:
                pending.batch.state.update(state or {})
                _write(store, pending, result, progress)
            elif state:
                store.write(WriteBatch(state=dict(state)))
    except duckdb.Error as exc:
        raise InvalidInput(f"cannot read the rows: {str(exc).splitlines()[0]}", where=where) from None
    return result


def prefetch(items: Iterator[Any], depth: int = 1) -> Iterator[Any]:
    """Produce the next items in a thread while the caller consumes (mapping overlaps store writes)."""
    q: queue.Queue[Any] = queue.Queue(maxsize=depth)
    done = object()
    stop = threading.Event()

    def put(item: Any) -> bool:
        while not stop.is_set():
            try:
                q.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in items:
                if not put(item):
                    return
            put(done)
        except BaseException as exc:  # handed to the consumer
            put(exc)

    thread = threading.Thread(target=produce, name="segmint-import-map", daemon=True)
    thread.start()
    try:
        while True:
            item = q.get()
            if item is done:
                break
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()  # the consumer failed or finished: let the producer end before the caller closes DuckDB
        thread.join()


def _write(store: EventStore, mb: Any, result: ImportResult, progress: Progress | None) -> None:
    inserted = store.write(mb.batch)
    result.add(mb.rows, inserted, mb.rejected)
    if mb.batch.rejected is not None:
        for reason in mb.batch.rejected["reason"].to_pylist():
            key = reason.split(":", 1)[0]
            result.reasons[key] = result.reasons.get(key, 0) + 1
    if progress:
        progress(mb.rows)


# -- JSONL ---------------------------------------------------------------------------------------
def derived_message_id(line: bytes) -> str:
    """A stable id for a message sent without one: md5 of its canonical JSON (same line, same id)."""
    return "imp_" + hashlib.md5(line, usedforsecurity=False).hexdigest()


def _jsonl_chunks(
    path: Path, *, source: str, now: datetime, checker: Checker | None = None, strict: bool = False
) -> Iterator[tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]], int]]:
    events: list[dict[str, Any]] = []
    rejected: list[dict[str, Any]] = []
    violations: list[dict[str, Any]] = []
    lines = 0
    with open(path, "rb") as f:
        for lineno, line in enumerate(f, start=1):
            if not line.strip():
                continue
            lines += 1
            where = f"{path.name}:{lineno}"
            try:
                raw = orjson.loads(line)
            except orjson.JSONDecodeError as exc:
                rejected.append(
                    rejection(
                        f"invalid JSON: {exc}",
                        where,
                        line.decode("utf-8", "replace"),
                        index=lineno,
                        source=source,
                        received_at=now,
                    )
                )
                continue
            try:
                msg = parse_message(raw, default_type="track", where=where)
            except SegmintError as exc:
                fld = exc.message.split(":", 1)[0]
                rejected.append(
                    rejection(exc.message, f"{where}: {fld}", raw, index=lineno, source=source, received_at=now)
                )
                continue
            if not msg.message_id:
                msg.message_id = derived_message_id(orjson.dumps(raw, option=orjson.OPT_SORT_KEYS))
            ev = normalize(msg, now, source=source)
            problems = checker(ev) if checker else []
            blocking = [p for p in problems if getattr(p, "blocking", True)]
            refuse = strict and bool(blocking)
            violations.extend(violation_record(ev, p, rejected=refuse) for p in problems)
            if refuse:  # strict taxonomy: the event is refused, naming the field
                fld, reason = blocking[0][0], blocking[0][1]
                rejected.append(rejection(reason, f"{where}: {fld}", raw, index=lineno, source=source, received_at=now))
            else:
                events.append(ev)
            if lines >= JSONL_BATCH:
                yield events, rejected, violations, lines
                events, rejected, violations, lines = [], [], [], 0
    if lines:
        yield events, rejected, violations, lines


def jsonl_batch(events: list[dict[str, Any]], rejected: list[dict[str, Any]]) -> WriteBatch:
    """A WriteBatch from normalized messages: events, identity links, identify traits (as the ingestor)."""
    batch = WriteBatch(skip_stored=True)
    for ev in events:
        ev["ts"] = datetime.fromisoformat(ev["ts"])
        ev["received_at"] = datetime.fromisoformat(ev["received_at"])
        user, anon = ev.get("user_id"), ev.get("anonymous_id")
        if ev["type"] == "alias" and ev.get("previous_id") and user:
            batch.identities.setdefault(ev["previous_id"], user)
        elif user and anon:
            batch.identities.setdefault(anon, user)
        if ev["type"] == "identify" and user:
            batch.profiles.append(ProfileUpdate(user, ev.get("traits") or {}, ev["ts"], ev.get("timezone")))
        elif user and ev.get("timezone"):
            batch.profiles.append(ProfileUpdate(user, {}, ev["ts"], ev.get("timezone")))
    if events:
        batch.events = events_to_arrow(events)
    if rejected:
        batch.rejected = pa.Table.from_pylist(
            [
                {
                    **r,
                    "received_at": datetime.fromisoformat(r["received_at"]).astimezone(UTC).replace(tzinfo=None),
                }
                for r in rejected
            ],
            schema=REJECTED_SCHEMA,
        )
    return batch


def import_jsonl_file(
    store: EventStore,
    path: Path,
    *,
    source: str = "import",
    progress: Progress | None = None,
    received_at: datetime | None = None,
    checker: Checker | None = None,
    strict: bool = False,
) -> ImportResult:
    """Import a file of Segment-spec messages, one per line (checker/strict: the taxonomy, as the ingestor)."""
    check_file(path)
    now = received_at or datetime.now(UTC)
    result = ImportResult(str(path))
    chunks = _jsonl_chunks(path, source=source, now=now, checker=checker, strict=strict)
    for events, rejected, violations, lines in chunks:
        batch = jsonl_batch(events, rejected)
        batch.violations = violations
        inserted = store.write(batch)
        result.add(lines, inserted, len(rejected))
        for r in rejected:
            key = r["reason"].split(":", 1)[0]
            result.reasons[key] = result.reasons.get(key, 0) + 1
        if progress:
            progress(lines)
    return result
