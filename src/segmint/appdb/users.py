"""UI users: people who sign in to the web UI (admin, marketer or viewer), passwords hashed with scrypt."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from sqlalchemy import DateTime, Engine, String, func, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from segmint.appdb.base import Base
from segmint.errors import Conflict, InvalidInput, NotFound

Role = Literal["admin", "marketer", "viewer"]
ROLES: tuple[str, ...] = ("admin", "marketer", "viewer")
EDITOR_ROLES: tuple[str, ...] = ("admin", "marketer")  # may save segments and change settings; viewers look
_SCRYPT = {"n": 2**14, "r": 8, "p": 1}
MIN_PASSWORD = 8


class UserRow(Base):
    """A UI user; only the scrypt hash of the password is stored."""

    __tablename__ = "users"
    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    display_name: Mapped[str] = mapped_column(String(200), default="")
    password_hash: Mapped[str] = mapped_column(String(300))
    role: Mapped[str] = mapped_column(String(20), default="marketer")
    created_at: Mapped[datetime] = mapped_column(DateTime)
    last_login_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)


@dataclass
class User:
    """A UI user as shown to people (never the hash)."""

    id: int
    email: str
    display_name: str
    role: str
    created_at: datetime
    last_login_at: datetime | None


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def hash_password(password: str) -> str:
    """`scrypt$n$r$p$salt$hash` (hex) of a password."""
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, dklen=32, **_SCRYPT)
    return f"scrypt${_SCRYPT['n']}${_SCRYPT['r']}${_SCRYPT['p']}${salt.hex()}${digest.hex()}"


def check_password(password: str, stored: str) -> bool:
    """Whether a password matches a stored hash (constant-time compare)."""
    try:
        algo, n, r, p, salt, digest = stored.split("$")
        if algo != "scrypt":
            return False
        got = hashlib.scrypt(password.encode(), salt=bytes.fromhex(salt), n=int(n), r=int(r), p=int(p),
                             dklen=len(digest) // 2)
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(got.hex(), digest)


def _view(row: UserRow) -> User:
    return User(row.id, row.email, row.display_name, row.role, row.created_at, row.last_login_at)


def _clean_email(email: str) -> str:
    email = email.strip().lower()
    if "@" not in email or len(email) > 320 or any(c.isspace() for c in email):
        raise InvalidInput(f"not an email address: {email!r}", where="email")
    return email


def create_user(engine: Engine, email: str, password: str, *, role: str = "marketer",
                display_name: str = "") -> User:
    """Create a user; fails on a duplicate email, an unknown role or a password under 8 characters."""
    email = _clean_email(email)
    if role not in ROLES:
        raise InvalidInput(f"role must be one of {', '.join(ROLES)}, not {role!r}", where="role")
    if len(password) < MIN_PASSWORD:
        raise InvalidInput(f"password needs at least {MIN_PASSWORD} characters", where="password")
    with Session(engine) as s, s.begin():
        if s.scalars(select(UserRow).where(UserRow.email == email)).first() is not None:
            raise Conflict(f"a user {email} already exists", where="email")
        row = UserRow(email=email, display_name=display_name or email.split("@")[0],
                      password_hash=hash_password(password), role=role, created_at=_now())
        s.add(row)
        s.flush()
        return _view(row)


def list_users(engine: Engine) -> list[User]:
    """All users, oldest first."""
    with Session(engine) as s:
        return [_view(r) for r in s.scalars(select(UserRow).order_by(UserRow.id))]


def count_users(engine: Engine) -> int:
    """How many users exist."""
    with Session(engine) as s:
        return int(s.scalar(select(func.count()).select_from(UserRow)) or 0)


def get_user(engine: Engine, user_id: int) -> User:
    """One user by id."""
    with Session(engine) as s:
        row = s.get(UserRow, user_id)
        if row is None:
            raise NotFound(f"no user {user_id}", where="user")
        return _view(row)


def authenticate(engine: Engine, email: str, password: str) -> User | None:
    """The user if email and password match (and record the login time), else None."""
    email = email.strip().lower()
    with Session(engine) as s, s.begin():
        row = s.scalars(select(UserRow).where(UserRow.email == email)).first()
        if row is None:
            hash_password(password)  # same cost either way: do not reveal which emails exist
            return None
        if not check_password(password, row.password_hash):
            return None
        row.last_login_at = _now()
        return _view(row)


def set_password(engine: Engine, email: str, password: str) -> User:
    """Replace a user's password."""
    if len(password) < MIN_PASSWORD:
        raise InvalidInput(f"password needs at least {MIN_PASSWORD} characters", where="password")
    with Session(engine) as s, s.begin():
        row = s.scalars(select(UserRow).where(UserRow.email == email.strip().lower())).first()
        if row is None:
            raise NotFound(f"no user {email}", where="email")
        row.password_hash = hash_password(password)
        return _view(row)


def set_role(engine: Engine, email: str, role: str) -> User:
    """Change a user's role (admin, marketer or viewer)."""
    if role not in ROLES:
        raise InvalidInput(f"role must be one of {', '.join(ROLES)}, not {role!r}", where="role")
    with Session(engine) as s, s.begin():
        row = s.scalars(select(UserRow).where(UserRow.email == email.strip().lower())).first()
        if row is None:
            raise NotFound(f"no user {email}", where="email")
        row.role = role
        return _view(row)


def can_edit(user: User | None) -> bool:
    """Whether a user may save segments and change settings (admin and marketer; not viewer)."""
    return user is not None and user.role in EDITOR_ROLES


def ensure_user(engine: Engine, email: str, *, role: str = "admin") -> tuple[User, str]:
    """Create the user or give it a new random password; returns the user and that password."""
    password = secrets.token_urlsafe(12)
    try:
        return create_user(engine, email, password, role=role), password
    except Conflict:
        return set_password(engine, email, password), password
