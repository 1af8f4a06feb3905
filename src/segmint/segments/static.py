"""Static segments: snapshots of any segment at any as-of time, uploaded CSV lists of user ids, and the
comparison of a snapshot with the current dynamic membership. Built on saved.py's static kind: a static
segment is a saved segment whose current version holds a frozen member list; where it came from (snapshot
source and as-of time, or uploaded file) is kept in `static_segment_origins` next to it."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, DateTime, Engine, ForeignKey, Integer, String, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from segmint.appdb.base import Base
from segmint.appdb.segments import SegmentRow
from segmint.errors import InvalidInput, PayloadTooLarge
from segmint.segments import saved
from segmint.store.base import EventStore

UPLOAD_DEFINITION = {"kind": "trait", "name": "$uploaded_list", "op": "exists"}  # stands for "the list"
UNKNOWN_POLICIES = ("keep", "drop")
HEADER_NAMES = ("user_id", "userid", "user", "id")
MAX_ID_CHARS = 512
MAX_UPLOAD_BYTES = 100 * 1024 * 1024
MAX_ERRORS_SHOWN = 20
SAMPLE = 20


class StaticOriginRow(Base):
    """Where one version of a static segment came from: a snapshot (source, as-of) or an upload (file)."""

    __tablename__ = "static_segment_origins"
    id: Mapped[int] = mapped_column(primary_key=True)
    segment_id: Mapped[int] = mapped_column(ForeignKey("segments.id", ondelete="CASCADE"), index=True)
    version: Mapped[int] = mapped_column(Integer)
    origin: Mapped[str] = mapped_column(String(16))  # snapshot | upload
    source: Mapped[str | None] = mapped_column(String(128), nullable=True)  # snapshotted saved segment
    source_version: Mapped[int | None] = mapped_column(Integer, nullable=True)
    as_of: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)  # naive UTC
    detail: Mapped[dict] = mapped_column(JSON, default=dict)  # upload: file, rows, duplicates, unknown
    created_at: Mapped[datetime] = mapped_column(DateTime)


def require_duckdb(store: EventStore, what: str) -> None:
    """Refuse clearly on an engine this SQL is not written for (the analyses are DuckDB SQL for now)."""
    if store.dialect != "duckdb":
        raise InvalidInput(f"{what} runs on the DuckDB store; the {store.dialect} store is not supported yet",
                           where="store")


def _ensure_table(engine: Engine) -> None:
    Base.metadata.create_all(engine, tables=[StaticOriginRow.__table__])  # type: ignore[list-item]


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def _utc(value: datetime | None) -> datetime | None:
    if value is None or value.tzinfo is None:
        return value
    return value.astimezone(UTC).replace(tzinfo=None)


@dataclass
class StaticSegment:
    """A static segment, its frozen members count and where it came from."""

    name: str
    description: str
    labels: list[str]
    version: int
    count: int
    origin: str  # snapshot | upload | saved (frozen at save through `segment save --kind static`)
    source: str | None = None
    source_version: int | None = None
    as_of: datetime | None = None
    created_at: datetime | None = None
    detail: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return asdict(self)


def _record_origin(engine: Engine, name: str, **values: Any) -> None:
    _ensure_table(engine)
    with Session(engine) as s, s.begin():
        row = s.scalars(select(SegmentRow).where(SegmentRow.name == name)).one()
        s.add(StaticOriginRow(segment_id=row.id, version=row.current_version, created_at=_now(), **values))


def describe(engine: Engine, name: str) -> StaticSegment:
    """A static segment with its origin; InvalidInput when the segment is dynamic or not frozen."""
    seg = saved.get_segment(engine, name)
    members = saved.static_members(engine, name)
    if seg.kind != "static" or members is None:
        raise InvalidInput(f"segment {name!r} is dynamic, not a snapshot or uploaded list", where="name")
    _ensure_table(engine)
    with Session(engine) as s:
        row = s.scalars(select(StaticOriginRow).join(SegmentRow, SegmentRow.id == StaticOriginRow.segment_id)
                        .where(SegmentRow.name == name, StaticOriginRow.version <= seg.version)
                        .order_by(StaticOriginRow.version.desc())).first()
        # The origin still holds after relabels (members carried over), not after a new definition.
        if row is None or (row.version != seg.version
                           and saved.get_segment(engine, name, row.version).definition != seg.definition):
            return StaticSegment(name, seg.description, seg.labels, seg.version, len(members), "saved",
                                 created_at=seg.updated_at)
        return StaticSegment(name, seg.description, seg.labels, seg.version, len(members), row.origin, row.source,
                             row.source_version, row.as_of, row.created_at, dict(row.detail or {}))


# ---------------------------------------------------------------- snapshots


def snapshot(engine: Engine, store: EventStore, name: str, *, source: str | None = None,
             definition: str | dict[str, Any] | None = None, as_of: datetime | None = None,
             description: str = "", labels: Sequence[str] = (), catalog: Any = None) -> StaticSegment:
    """Freeze the members of a saved segment (`source`) or of a definition, as of a time (default now),
    into a new static segment `name`. The new segment keeps the definition it was taken from."""
    if (source is None) == (definition is None):
        raise InvalidInput("snapshot either a saved segment (source) or a definition, one of them", where="source")
    as_of = _utc(as_of) or _now()
    if as_of > _now():
        raise InvalidInput(f"as-of time {as_of:%Y-%m-%d %H:%M:%S} UTC is in the future", where="as_of")
    source_version = None
    if source is not None:
        src = saved.get_segment(engine, source)
        if src.kind == "static":
            raise InvalidInput(f"segment {source!r} is static already: its members are frozen", where="source")
        tree_json: str | dict[str, Any] = src.definition
        source_version = src.version
        catalog = None  # checked when the source was saved
    else:
        assert definition is not None
        tree_json = saved.parse_definition(definition, catalog)[0].model_dump(mode="json")
    from segmint.segments.evaluate import evaluate

    tree = saved.segment_tree(engine, saved.parse_definition(tree_json, None)[0])
    ids = saved.guarded(evaluate, store, tree, as_of)
    saved.create_segment(engine, name, tree_json, description=description, kind="static", labels=labels)
    saved.freeze_members(engine, store, name, members=ids)
    _record_origin(engine, name, origin="snapshot", source=source, source_version=source_version, as_of=as_of,
                   detail={} if source is not None else {"definition": "inline"})
    return describe(engine, name)


# ---------------------------------------------------------------- uploads


@dataclass
class ParsedUpload:
    """User ids read from an uploaded CSV, with what was set aside."""

    ids: list[str]
    rows: int
    duplicates: int
    column: str | None


def _decode(data: bytes, where: str) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise InvalidInput(f"line {line}: not UTF-8 text (byte {exc.start}); save the file as UTF-8",
                           where=where) from None


def parse_csv(data: bytes | str, *, column: str | None = None, where: str = "file") -> ParsedUpload:
    """User ids from CSV: one id per row, or a header row with a `user_id` (or given) column. Every bad row
    is reported with its line number in one error; repeated ids are counted, kept once."""
    if isinstance(data, bytes):
        if len(data) > MAX_UPLOAD_BYTES:
            raise PayloadTooLarge(f"upload is {len(data):,} bytes; the limit is {MAX_UPLOAD_BYTES:,}", where=where)
        data = _decode(data, where)
    reader = csv.reader(io.StringIO(data, newline=""))
    errors: list[str] = []
    ids: list[str] = []
    seen: set[str] = set()
    duplicates = rows = 0
    index: int | None = None
    width = 0
    header: list[str] | None = None
    try:
        for row in reader:
            line = reader.line_num
            if not row or all(not c.strip() for c in row):
                continue
            if header is None and index is None:
                cells = [c.strip() for c in row]
                wanted = column.strip() if column else None
                lowered = [c.lower() for c in cells]
                if wanted is not None:
                    if wanted not in cells:
                        raise InvalidInput(f"line {line}: no column {wanted!r} in the header ({', '.join(cells)})",
                                           where=where)
                    header, index, width = cells, cells.index(wanted), len(cells)
                    continue
                hit = next((lowered.index(h) for h in HEADER_NAMES if h in lowered), None)
                if hit is not None:
                    header, index, width = cells, hit, len(cells)
                    continue
                if len(cells) > 1:
                    raise InvalidInput(f"line {line}: {len(cells)} columns but no header naming the user id "
                                       f"column (user_id); add one or pick it with the column option", where=where)
                index, width = 0, 1
            rows += 1
            if len(row) != width:
                errors.append(f"line {line}: {len(row)} columns, expected {width}")
                continue
            uid = row[index].strip()
            if not uid:
                errors.append(f"line {line}: empty user id")
            elif len(uid) > MAX_ID_CHARS:
                errors.append(f"line {line}: user id is {len(uid)} characters (limit {MAX_ID_CHARS})")
            elif any(ord(c) < 32 for c in uid):
                errors.append(f"line {line}: user id holds a control character")
            elif uid in seen:
                duplicates += 1
            else:
                seen.add(uid)
                ids.append(uid)
    except csv.Error as exc:
        errors.append(f"line {reader.line_num}: {exc}")
    if errors:
        shown = errors[:MAX_ERRORS_SHOWN]
        more = f" (and {len(errors) - len(shown)} more)" if len(errors) > len(shown) else ""
        raise InvalidInput(f"{len(errors)} bad row(s): " + "; ".join(shown) + more, where=where)
    if not ids:
        raise InvalidInput("no user ids in the file", where=where)
    return ParsedUpload(ids, rows, duplicates, header[index] if header is not None and index is not None else None)


def known_users(store: EventStore, ids: Sequence[str]) -> set[str]:
    """Which of these user ids the store has a profile for."""
    if not ids:
        return set()
    require_duckdb(store, "checking uploaded ids")
    table = store.query("SELECT user_id FROM profiles WHERE user_id IN (SELECT unnest(?::VARCHAR[]))", [list(ids)])
    return {str(u) for u in table.column(0).to_pylist()}


def upload(engine: Engine, store: EventStore, name: str, data: bytes | str, *, unknown: str = "keep",
           column: str | None = None, file_name: str | None = None, description: str = "",
           labels: Sequence[str] = ()) -> StaticSegment:
    """Create static segment `name` from a CSV of user ids; ids the store does not know are reported and
    kept or dropped (`unknown`)."""
    if unknown not in UNKNOWN_POLICIES:
        raise InvalidInput(f"unknown={unknown!r}; expected keep or drop", where="unknown")
    saved._check_meta(name, "static", labels)
    where = file_name or "file"
    parsed = parse_csv(data, column=column, where=where)
    known = known_users(store, parsed.ids)
    missing = [u for u in parsed.ids if u not in known]
    ids = [u for u in parsed.ids if u in known] if unknown == "drop" else parsed.ids
    if not ids:
        raise InvalidInput(f"none of the {len(parsed.ids)} user ids is known to the store, and unknown ids are "
                           "dropped", where=where)
    saved.create_segment(engine, name, UPLOAD_DEFINITION, description=description, kind="static", labels=labels)
    saved.freeze_members(engine, store, name, members=ids)
    detail = {"file": file_name, "rows": parsed.rows, "column": parsed.column, "duplicates": parsed.duplicates,
              "unknown": len(missing), "unknown_sample": missing[:SAMPLE], "unknown_policy": unknown,
              "kept": len(ids)}
    _record_origin(engine, name, origin="upload", detail=detail)
    return describe(engine, name)


# ---------------------------------------------------------------- comparison


@dataclass
class Comparison:
    """A snapshot against a segment's membership now (or as of a time)."""

    snapshot: str
    against: str
    as_of: datetime
    snapshot_count: int
    current_count: int
    both: int
    only_in_snapshot: int
    only_now: int
    jaccard: float
    only_in_snapshot_sample: list[str]
    only_now_sample: list[str]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return asdict(self)


def compare(engine: Engine, store: EventStore, name: str, *, against: str | None = None,
            as_of: datetime | None = None, sample: int = SAMPLE) -> Comparison:
    """Compare static segment `name` with the membership of `against` (default: the segment it was snapshot
    from) now or as of a time: who is only in the snapshot, only now, in both, and the Jaccard index."""
    info = describe(engine, name)
    target = against or info.source
    if target is None:
        raise InvalidInput(f"{name!r} was not snapshot from a saved segment: say which segment to compare with",
                           where="against")
    when = _utc(as_of) or _now()
    snap = set(saved.static_members(engine, name) or [])
    now = set(members_of(engine, store, target, when))
    both = snap & now
    union = snap | now
    return Comparison(name, target, when, len(snap), len(now), len(both), len(snap - now), len(now - snap),
                      round(len(both) / len(union), 6) if union else 1.0, sorted(snap - now)[:sample],
                      sorted(now - snap)[:sample])


def members_of(engine: Engine, store: EventStore, name: str, as_of: datetime | None = None) -> list[str]:
    """Members of a saved segment, sorted: a static segment's frozen list (at any time: it never changes),
    else the dynamic definition evaluated as of a time (default now)."""
    from segmint.segments.evaluate import evaluate

    frozen = saved.static_members(engine, name)
    if frozen is not None:
        return sorted(frozen)
    return saved.guarded(evaluate, store, saved.segment_tree(engine, name), _utc(as_of))


def list_static(engine: Engine) -> list[StaticSegment]:
    """Every frozen static segment with its origin."""
    return [describe(engine, s.name) for s in saved.list_segments(engine)
            if s.kind == "static" and saved.static_members(engine, s.name) is not None]

