"""Write keys: the credentials SDKs use to send events (they open nothing else)."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import DateTime, Engine, String, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from segmint.appdb.base import Base
from segmint.errors import NotFound


class WriteKeyRow(Base):
    """A write key; only its hash is stored, plus a short prefix to recognise it."""

    __tablename__ = "write_keys"
    id: Mapped[int] = mapped_column(primary_key=True)
    prefix: Mapped[str] = mapped_column(String(16), index=True)
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    label: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime] = mapped_column(DateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)


@dataclass
class WriteKey:
    """A write key as shown to people (the secret itself only once, at creation)."""

    id: int
    prefix: str
    label: str
    created_at: datetime
    revoked_at: datetime | None
    secret: str | None = None


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _view(row: WriteKeyRow, secret: str | None = None) -> WriteKey:
    return WriteKey(row.id, row.prefix, row.label, row.created_at, row.revoked_at, secret)


def create_key(engine: Engine, label: str = "") -> WriteKey:
    """Create a write key and return it with its secret (shown once)."""
    secret = "wk_" + secrets.token_urlsafe(24)
    with Session(engine) as s, s.begin():
        row = WriteKeyRow(prefix=secret[:10], key_hash=_hash(secret), label=label,
                          created_at=datetime.now(UTC).replace(tzinfo=None))
        s.add(row)
        s.flush()
        return _view(row, secret)


def list_keys(engine: Engine) -> list[WriteKey]:
    """All write keys, newest first, without secrets."""
    with Session(engine) as s:
        return [_view(r) for r in s.scalars(select(WriteKeyRow).order_by(WriteKeyRow.id.desc()))]


def revoke_key(engine: Engine, key_id_or_prefix: str) -> WriteKey:
    """Revoke a key by id or prefix; it stops working at once."""
    with Session(engine) as s, s.begin():
        q = select(WriteKeyRow)
        q = q.where(WriteKeyRow.id == int(key_id_or_prefix)) if key_id_or_prefix.isdigit() else q.where(
            WriteKeyRow.prefix == key_id_or_prefix)
        row = s.scalars(q).first()
        if row is None:
            raise NotFound(f"no write key {key_id_or_prefix!r}", where="key")
        if row.revoked_at is None:
            row.revoked_at = datetime.now(UTC).replace(tzinfo=None)
        return _view(row)


def verify_key(engine: Engine, secret: str) -> bool:
    """Whether a presented secret is a live write key."""
    with Session(engine) as s:
        row = s.scalars(select(WriteKeyRow).where(WriteKeyRow.key_hash == _hash(secret))).first()
        return row is not None and row.revoked_at is None
