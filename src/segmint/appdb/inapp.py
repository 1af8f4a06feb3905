"""In-app messages: queued per user in the app DB, fetched by the app, marked read or dismissed."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, DateTime, Engine, String, Text, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, Session, mapped_column

from segmint.appdb.base import Base
from segmint.errors import NotFound


class InAppMessageRow(Base):
    """One queued in-app message; `message_id` is unique, so queueing twice stores it once."""

    __tablename__ = "inapp_messages"
    id: Mapped[int] = mapped_column(primary_key=True)
    message_id: Mapped[str] = mapped_column(String(200), unique=True)
    user_id: Mapped[str] = mapped_column(String(200), index=True)
    campaign_id: Mapped[str | None] = mapped_column(String(200), nullable=True)
    title: Mapped[str] = mapped_column(Text, default="")
    body: Mapped[str] = mapped_column(Text, default="")
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(DateTime)
    read_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    dismissed_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)


@dataclass
class InAppMessage:
    """An in-app message as the API returns it."""

    message_id: str
    user_id: str
    campaign_id: str | None
    title: str
    body: str
    data: dict[str, Any]
    created_at: datetime
    read_at: datetime | None
    dismissed_at: datetime | None


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def _view(r: InAppMessageRow) -> InAppMessage:
    return InAppMessage(r.message_id, r.user_id, r.campaign_id, r.title, r.body, dict(r.data or {}),
                        r.created_at, r.read_at, r.dismissed_at)


def enqueue(engine: Engine, *, message_id: str, user_id: str, title: str, body: str,
            data: dict[str, Any] | None = None, campaign_id: str | None = None) -> bool:
    """Queue a message; False when this message_id was already queued (idempotent)."""
    try:
        with Session(engine) as s, s.begin():
            s.add(InAppMessageRow(message_id=message_id, user_id=user_id, campaign_id=campaign_id, title=title,
                                  body=body, data=data or {}, created_at=_now()))
    except IntegrityError:
        return False
    return True


def fetch(engine: Engine, user_id: str, *, include_read: bool = False, limit: int = 50) -> list[InAppMessage]:
    """A user's messages, newest first: not dismissed, and unread unless include_read."""
    q = select(InAppMessageRow).where(InAppMessageRow.user_id == user_id, InAppMessageRow.dismissed_at.is_(None))
    if not include_read:
        q = q.where(InAppMessageRow.read_at.is_(None))
    with Session(engine) as s:
        return [_view(r) for r in s.scalars(q.order_by(InAppMessageRow.id.desc()).limit(limit))]


def mark(engine: Engine, user_id: str, message_id: str, action: str) -> InAppMessage:
    """Mark a user's message `read` or `dismissed` (repeating it keeps the first time)."""
    with Session(engine) as s, s.begin():
        row = s.scalars(select(InAppMessageRow).where(InAppMessageRow.message_id == message_id,
                                                      InAppMessageRow.user_id == user_id)).first()
        if row is None:
            raise NotFound(f"no in-app message {message_id!r} for user {user_id!r}", where="message_id")
        if action == "read" and row.read_at is None:
            row.read_at = _now()
        elif action == "dismissed" and row.dismissed_at is None:
            row.dismissed_at = _now()
        return _view(row)
