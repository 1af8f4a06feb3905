"""The record of live segment evaluations (app database) and the health summary built from it.

Every sweep and edit evaluation of a dynamic segment is one row, written as `running` before it starts and
settled as `ok` or `failed` (with the error) when it ends; rows a killed server left `running` are marked
failed at the next start, so nothing stays "stuck". The per-user path adds one `event` row per segment and
sweep interval summing what it did.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import DateTime, Engine, Float, Integer, String, Text, func, select, update
from sqlalchemy.orm import Mapped, Session, mapped_column

from segmint.appdb.base import Base

KINDS = ("sweep", "event", "edit")
STATUSES = ("running", "ok", "failed")
INTERRUPTED = "interrupted: the server stopped before this evaluation finished"


class LiveEvaluationRow(Base):
    """One evaluation of one dynamic segment (or a summary of per-user evaluations over an interval)."""

    __tablename__ = "live_evaluations"
    id: Mapped[int] = mapped_column(primary_key=True)
    segment: Mapped[str] = mapped_column(String(128), index=True)
    version: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(16))  # KINDS
    as_of: Mapped[datetime] = mapped_column(DateTime)
    started_at: Mapped[datetime] = mapped_column(DateTime)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    elapsed_ms: Mapped[float | None] = mapped_column(Float, nullable=True)
    users: Mapped[int] = mapped_column(Integer, default=0)  # users evaluated
    rows: Mapped[int] = mapped_column(Integer, default=0)  # rows the evaluation query returned
    members: Mapped[int | None] = mapped_column(Integer, nullable=True)  # members after (sweep/edit)
    entered: Mapped[int] = mapped_column(Integer, default=0)
    exited: Mapped[int] = mapped_column(Integer, default=0)
    status: Mapped[str] = mapped_column(String(16), default="running")  # STATUSES
    error: Mapped[str | None] = mapped_column(Text, nullable=True)


def ensure_table(engine: Engine) -> None:
    """Create the evaluations table when missing."""
    LiveEvaluationRow.__table__.create(engine, checkfirst=True)  # type: ignore[attr-defined]


def _dict(row: LiveEvaluationRow) -> dict[str, Any]:
    return {c: getattr(row, c) for c in ("id", "segment", "version", "kind", "as_of", "started_at", "finished_at",
                                         "elapsed_ms", "users", "rows", "members", "entered", "exited", "status",
                                         "error")}


def begin(engine: Engine, segment: str, version: int, kind: str, as_of: datetime, started_at: datetime) -> int:
    """Record an evaluation as running; returns its id."""
    with Session(engine) as s, s.begin():
        row = LiveEvaluationRow(segment=segment, version=version, kind=kind, as_of=as_of, started_at=started_at,
                                status="running")
        s.add(row)
        s.flush()
        return row.id


def finish(engine: Engine, eval_id: int, finished_at: datetime, elapsed_ms: float, **counts: Any) -> None:
    """Settle an evaluation as ok with its counts (users, rows, members, entered, exited)."""
    with Session(engine) as s, s.begin():
        s.execute(update(LiveEvaluationRow).where(LiveEvaluationRow.id == eval_id)
                  .values(status="ok", finished_at=finished_at, elapsed_ms=elapsed_ms, **counts))


def fail(engine: Engine, eval_id: int, finished_at: datetime, elapsed_ms: float, error: str) -> None:
    """Settle an evaluation as failed with its error."""
    with Session(engine) as s, s.begin():
        s.execute(update(LiveEvaluationRow).where(LiveEvaluationRow.id == eval_id)
                  .values(status="failed", finished_at=finished_at, elapsed_ms=elapsed_ms, error=error[:2000]))


def record(engine: Engine, rows: Iterable[dict[str, Any]]) -> None:
    """Insert finished evaluations at once (the per-user path's interval summaries)."""
    items = [LiveEvaluationRow(**r) for r in rows]
    if items:
        with Session(engine) as s, s.begin():
            s.add_all(items)


def interrupt_running(engine: Engine, now: datetime) -> int:
    """Mark evaluations left running by a stopped server as failed; returns how many."""
    with Session(engine) as s, s.begin():
        res = s.execute(update(LiveEvaluationRow).where(LiveEvaluationRow.status == "running")
                        .values(status="failed", finished_at=now, error=INTERRUPTED))
        return int(res.rowcount or 0)


def list_evaluations(engine: Engine, segment: str | None = None, limit: int = 50,
                     kind: str | None = None) -> list[dict[str, Any]]:
    """The most recent evaluations, newest first (of one segment, of one kind, when given)."""
    q = select(LiveEvaluationRow).order_by(LiveEvaluationRow.started_at.desc(), LiveEvaluationRow.id.desc())
    if segment is not None:
        q = q.where(LiveEvaluationRow.segment == segment)
    if kind is not None:
        q = q.where(LiveEvaluationRow.kind == kind)
    with Session(engine) as s:
        return [_dict(r) for r in s.scalars(q.limit(limit)).all()]


def latest_evaluations(engine: Engine) -> dict[str, dict[str, Any]]:
    """Per segment, its most recent evaluation (any kind or status): what the segment list shows."""
    latest = (select(LiveEvaluationRow.segment, func.max(LiveEvaluationRow.id).label("id"))
              .group_by(LiveEvaluationRow.segment).subquery())
    q = select(LiveEvaluationRow).join(latest, LiveEvaluationRow.id == latest.c.id)
    with Session(engine) as s:
        return {r.segment: _dict(r) for r in s.scalars(q).all()}


def last_ok_versions(engine: Engine) -> dict[str, int]:
    """Per segment, the version of its latest successful sweep or edit evaluation."""
    q = (select(LiveEvaluationRow.segment, LiveEvaluationRow.version)
         .where(LiveEvaluationRow.status == "ok", LiveEvaluationRow.kind.in_(("sweep", "edit")))
         .order_by(LiveEvaluationRow.started_at, LiveEvaluationRow.id))
    with Session(engine) as s:
        return {seg: ver for seg, ver in s.execute(q).all()}


# ---------------------------------------------------------------- health


@dataclass
class Health:
    """Health of one dynamic segment: flags (empty, exploding, collapsing, stale, failing, churn) and figures."""

    segment: str
    version: int
    members: int | None
    previous: int | None
    last_ok_at: datetime | None
    last_status: str | None
    last_error: str | None
    churn_24h: float | None
    flags: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Whether no flag is raised."""
        return not self.flags

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {**asdict(self), "ok": self.ok}


def segment_health(engine: Engine, segment: str, version: int, now: datetime, *, interval_seconds: float,
                   stale_after_intervals: int = 3, size_change_factor: float = 2.0, min_size_change: int = 10,
                   churn_limit: float = 1.0) -> Health:
    """Flags for one segment from its recorded evaluations (see docs/live-segments.md for each rule)."""
    with Session(engine) as s:
        bulk = s.scalars(select(LiveEvaluationRow)
                         .where(LiveEvaluationRow.segment == segment, LiveEvaluationRow.kind.in_(("sweep", "edit")))
                         .order_by(LiveEvaluationRow.started_at.desc(), LiveEvaluationRow.id.desc()).limit(200)).all()
        since = now - timedelta(days=1)
        recent = s.scalars(select(LiveEvaluationRow)
                           .where(LiveEvaluationRow.segment == segment, LiveEvaluationRow.status == "ok",
                                  LiveEvaluationRow.started_at >= since)).all()
    oks = [r for r in bulk if r.status == "ok"]
    last = bulk[0] if bulk else None
    cur = oks[0].members if oks else None
    prev = oks[1].members if len(oks) > 1 else None
    h = Health(segment, version, cur, prev, oks[0].finished_at if oks else None,
               last.status if last else None, last.error if last else None, None)
    if not oks:
        h.flags.append("stale")
    else:
        assert oks[0].finished_at is not None
        if now - oks[0].finished_at > timedelta(seconds=interval_seconds * stale_after_intervals):
            h.flags.append("stale")
        if cur == 0:
            h.flags.append("empty")
        if cur is not None and prev is not None:
            if cur >= prev * size_change_factor and cur - prev >= min_size_change:
                h.flags.append("exploding")
            if cur * size_change_factor <= prev and prev - cur >= min_size_change:
                h.flags.append("collapsing")
        moves = sum(r.entered + r.exited for r in recent if r.kind != "edit")
        h.churn_24h = round(moves / max(cur or 0, 1), 4)
        if h.churn_24h > churn_limit and moves >= min_size_change:
            h.flags.append("churn")
    if last is not None and last.status == "failed":
        h.flags.append("failing")
    running = [r for r in bulk if r.status == "running"]
    if running and now - running[-1].started_at > timedelta(seconds=interval_seconds):
        h.flags.append("slow")
    return h
