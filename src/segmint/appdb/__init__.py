"""App state (keys, users, segments, campaigns, ledger) in SQLite or PostgreSQL through SQLAlchemy."""

from segmint.appdb.base import Base, make_engine

__all__ = ["Base", "make_engine"]
