"""Open the event store a workspace's config names (by URL)."""

from __future__ import annotations

from pathlib import Path

from segmint.errors import WorkspaceError
from segmint.store.base import EventStore


def open_store(url: str, base: Path, *, read_only: bool = False) -> EventStore:
    """Open `duckdb:///FILE` or `clickhouse:///DIR` (chDB; relative paths are inside the workspace folder)."""
    if url.startswith("duckdb:///"):
        from segmint.store.duckdb import DuckDBEventStore

        raw = url.removeprefix("duckdb:///")
        path = Path(raw) if raw.startswith("/") else base / raw
        return DuckDBEventStore(path, read_only=read_only)
    for prefix in ("clickhouse:///", "chdb:///"):
        if url.startswith(prefix):
            from segmint.store.clickhouse import ClickHouseEventStore

            raw = url.removeprefix(prefix)
            path = Path(raw) if raw.startswith("/") else base / raw
            return ClickHouseEventStore(path, read_only=read_only)
    raise WorkspaceError(f"unsupported store URL {url!r} (supported: duckdb:///FILE, clickhouse:///DIR, chdb:///DIR)",
                         where="store.url")
