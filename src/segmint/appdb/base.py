"""Declarative base and engine factory for the app-state database."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import DeclarativeBase


class Base(DeclarativeBase):
    """Base class of every app-state table; modules register their tables by importing this."""


def make_engine(url: str, base: Path) -> Engine:
    """Engine for `sqlite:///relative.sqlite` (relative to the workspace) or any SQLAlchemy URL."""
    if url.startswith("sqlite:///") and not url.startswith("sqlite:////"):
        url = "sqlite:///" + str(base / url.removeprefix("sqlite:///"))
    engine = create_engine(url, future=True)
    if engine.dialect.name == "sqlite":

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_con, _record):  # type: ignore[no-untyped-def]
            cur = dbapi_con.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=FULL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()

    return engine


def create_all(engine: Engine) -> None:
    """Create every registered table that does not exist yet."""
    # Import modules that define tables so they register with Base.metadata.
    from segmint.appdb import campaigns, inapp, keys, segments, users  # noqa: F401

    Base.metadata.create_all(engine)
