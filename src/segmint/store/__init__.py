"""Event stores: the EventStore interface and its engines (DuckDB embedded default)."""

from segmint.store.base import EventStore, WriteBatch
from segmint.store.factory import open_store

__all__ = ["EventStore", "WriteBatch", "open_store"]
