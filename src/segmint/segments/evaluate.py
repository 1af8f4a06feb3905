"""Evaluate a segment tree on an event store: members, count, and a preview for the CLI, UI and API."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from segmint.errors import InvalidInput
from segmint.segments.compile import compile_segment
from segmint.store.base import EventStore


def _as_of(as_of: datetime | None) -> datetime:
    if as_of is None:
        return datetime.now(UTC).replace(tzinfo=None)
    return as_of if as_of.tzinfo is None else as_of.astimezone(UTC).replace(tzinfo=None)


def compile_for(
    store: EventStore, tree: Any, as_of: datetime | None = None, engine: str | None = None,
    workspace_tz: str | None = None,
) -> tuple[str, dict[str, Any]]:
    """The members SQL and parameters for a store (its dialect unless engine says otherwise); calendar windows
    in `workspace_tz`, by default the zone of the workspace the store belongs to."""
    dialect = engine or store.dialect
    if dialect not in ("duckdb", "clickhouse"):
        raise InvalidInput(f"unknown engine {dialect!r} (duckdb or clickhouse)", where="engine")
    return compile_segment(tree, _as_of(as_of), dialect=dialect, typed=store.property_columns(),
                           workspace_tz=workspace_tz or store.workspace_tz)


def evaluate(
    store: EventStore, tree: Any, as_of: datetime | None = None, engine: str | None = None,
    workspace_tz: str | None = None,
) -> list[str]:
    """Member user_ids of a segment as of a time (default now), sorted; calendar windows in workspace_tz."""
    sql, params = compile_for(store, tree, as_of, engine, workspace_tz)
    table = store.query(sql, params)
    return [str(u) for u in table.column(0).to_pylist()] if table.num_rows else []


def count(store: EventStore, tree: Any, as_of: datetime | None = None, engine: str | None = None) -> int:
    """How many users are members."""
    return len(evaluate(store, tree, as_of, engine))


def preview(
    store: EventStore, tree: Any, as_of: datetime | None = None, engine: str | None = None, sample: int = 20
) -> dict[str, Any]:
    """Count, a sample of members, the SQL and how long it took."""
    sql, params = compile_for(store, tree, as_of, engine)
    start = time.perf_counter()
    table = store.query(sql, params)
    elapsed = (time.perf_counter() - start) * 1000
    ids = [str(u) for u in table.column(0).to_pylist()] if table.num_rows else []
    return {
        "count": len(ids),
        "sample": ids[:sample],
        "sql": sql,
        "params": params,
        "elapsed_ms": round(elapsed, 2),
    }
