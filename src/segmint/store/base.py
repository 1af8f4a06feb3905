"""The EventStore interface every engine implements, and the unit of work it writes atomically."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import pyarrow as pa


@dataclass
class ProfileUpdate:
    """Traits to merge into one user's profile, and the time the update happened."""

    user_id: str
    traits: dict[str, Any]
    ts: datetime
    timezone: str | None = None


@dataclass
class WriteBatch:
    """Everything one flush writes, in one transaction: events, profiles, identities, rejects, position."""

    events: pa.Table | None = None
    profiles: list[ProfileUpdate] = field(default_factory=list)
    identities: dict[str, str] = field(default_factory=dict)  # anonymous_id -> user_id
    rejected: pa.Table | None = None
    state: dict[str, str] = field(default_factory=dict)  # e.g. journal position, sync cursors
    violations: list[dict[str, Any]] = field(default_factory=list)  # taxonomy violations (ingest.violation_record)
    skip_stored: bool = False  # drop events whose message_id is already stored (imports, syncs)
    # segment membership transitions (schema.TRANSITION_SCHEMA); rows whose id is already stored are skipped,
    # so re-recording after a crash is harmless
    transitions: pa.Table | None = None


@dataclass
class TraitWrite:
    """One computed-trait run, written in one transaction: its trait_runs record (upserted by run_id) and its
    values (tables of user_id + one column per trait) appended to the computed_traits history and, with
    `publish`, merged into profiles.traits (every profile gets the tables' keys; null removes a stale value)."""

    run: dict[str, Any]  # trait_runs row: run_id, started_at, finished_at, as_of, families, status, ...
    tables: list[pa.Table] = field(default_factory=list)
    publish: bool = False
    keep_runs: int | None = None  # then drop the history of runs older than the last `keep_runs`


@dataclass
class EventCount:
    """Events of one name and type, with their time range."""

    type: str
    event: str
    count: int
    users: int
    first: datetime | None
    last: datetime | None


class EventStore(ABC):
    """Append-only event log plus profiles; engines differ only in SQL dialect and storage."""

    dialect: str
    # the workspace time zone: calendar windows ("today", "this week") of segments evaluated on this store
    workspace_tz: str = "Asia/Seoul"

    @abstractmethod
    def write(self, batch: WriteBatch) -> int:
        """Write a batch atomically; returns the number of events inserted (duplicates skipped)."""

    @abstractmethod
    def load_profiles(self, profiles: pa.Table) -> int:
        """Bulk-merge profiles (user_id, traits JSON text, first_seen, timezone) in one statement."""

    @abstractmethod
    def existing_message_ids(self, ids: Sequence[str]) -> set[str]:
        """Which of these message ids are already stored (dedupe for imports and retries)."""

    @abstractmethod
    def recent_message_ids(self, since: datetime) -> Iterator[str]:
        """Message ids received since a time, to warm the ingest dedupe window."""

    @abstractmethod
    def identities(self) -> dict[str, str]:
        """All anonymous_id -> user_id links."""

    @abstractmethod
    def get_state(self, key: str) -> str | None:
        """A value written through WriteBatch.state (journal position, sync cursor)."""

    @abstractmethod
    def event_counts(self) -> list[EventCount]:
        """Counts per event name, most frequent first."""

    @abstractmethod
    def rejected(self, limit: int = 100) -> list[dict[str, Any]]:
        """Most recent rejected messages with their reasons."""

    def violations(self) -> list[dict[str, Any]]:
        """Taxonomy violations counted so far, per (event, field, kind), with a few examples."""
        raise NotImplementedError(f"{type(self).__name__} does not record taxonomy violations yet")

    def write_traits(self, write: TraitWrite) -> int:
        """Record a computed-trait run and write its values (see TraitWrite); returns history rows written."""
        raise NotImplementedError(f"{type(self).__name__} does not store computed traits")

    @abstractmethod
    def property_columns(self) -> dict[str, str]:
        """Typed property columns: property name -> logical type."""

    @abstractmethod
    def ensure_property_columns(self, columns: dict[str, str]) -> list[str]:
        """Add typed columns for declared properties (backfilled from JSON); returns names added."""

    @abstractmethod
    def query(self, sql: str, params: Sequence[Any] | dict[str, Any] | None = None) -> pa.Table:
        """Run read-only SQL in this engine's dialect with bound parameters."""

    @abstractmethod
    def summary(self) -> dict[str, Any]:
        """Headline figures: events, users, profiles, rejected, time range."""

    @abstractmethod
    def close(self) -> None:
        """Release the engine (file locks, connections)."""
