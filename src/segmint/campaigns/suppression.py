"""The suppression list: users who must not get messages on a channel ("*" = all channels)."""

from __future__ import annotations

from sqlalchemy import Engine, delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from segmint.appdb.campaigns import SuppressionRow
from segmint.campaigns.repo import now_utc


def add_suppression(engine: Engine, user_id: str, channel: str = "*", *, reason: str = "unsubscribed",
                    source: str = "") -> bool:
    """Suppress a user on a channel; False when already suppressed there (idempotent)."""
    try:
        with Session(engine) as s, s.begin():
            s.add(SuppressionRow(user_id=user_id, channel=channel, reason=reason, source=source,
                                 created_at=now_utc()))
    except IntegrityError:
        return False
    return True


def remove_suppression(engine: Engine, user_id: str, channel: str = "*") -> bool:
    """Lift a suppression; False when there was none."""
    with Session(engine) as s, s.begin():
        n = s.execute(delete(SuppressionRow).where(SuppressionRow.user_id == user_id,
                                                   SuppressionRow.channel == channel)).rowcount
    return bool(n)


def is_suppressed(engine: Engine, user_id: str, channel: str) -> bool:
    """Whether a user is suppressed on a channel (or on every channel)."""
    with Session(engine) as s:
        return s.scalars(select(SuppressionRow.id).where(SuppressionRow.user_id == user_id,
                                                         SuppressionRow.channel.in_((channel, "*")))).first() \
            is not None
