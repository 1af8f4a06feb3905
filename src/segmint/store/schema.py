"""The canonical event record and its Arrow schema: what every engine stores, column by column."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

import orjson
import pyarrow as pa

TS = pa.timestamp("us")  # naive UTC everywhere in the store

EVENT_SCHEMA = pa.schema(
    [
        ("message_id", pa.string()),
        ("type", pa.string()),  # track | identify | page | screen | group | alias
        ("event", pa.string()),  # track name, or "$identify", "$page", ... for the other types
        ("user_id", pa.string()),  # resolved user (after identify/alias), null while anonymous
        ("anonymous_id", pa.string()),
        ("ts", TS),  # event time in UTC, corrected for client clock skew
        ("received_at", TS),
        ("properties", pa.string()),  # JSON text
        ("context", pa.string()),  # JSON text
        ("source", pa.string()),  # http | import | sync | segmint
    ]
)

REJECTED_SCHEMA = pa.schema(
    [
        ("received_at", TS),
        ("source", pa.string()),
        ("reason", pa.string()),
        ("field", pa.string()),
        ("message_index", pa.int32()),
        ("payload", pa.string()),
    ]
)

# Taxonomy-declared properties become typed columns named PROPERTY_PREFIX + name.
PROPERTY_PREFIX = "p_"
PROPERTY_TYPES = {"string": "VARCHAR", "number": "DOUBLE", "integer": "BIGINT", "boolean": "BOOLEAN",
                  "datetime": "TIMESTAMP"}

NON_TRACK_EVENT = {"identify": "$identify", "page": "$page", "screen": "$screen", "group": "$group",
                   "alias": "$alias"}

_SAFE_NAME = re.compile(r"^[^\x00-\x1f\"]{1,128}$")


def property_column(name: str) -> str:
    """Column name of a typed property column (always used as a quoted identifier)."""
    return PROPERTY_PREFIX + name


def is_safe_name(name: str) -> bool:
    """Whether a user-supplied name may become a quoted identifier (no control chars, no quotes)."""
    return bool(_SAFE_NAME.match(name))


def to_utc_naive(value: datetime) -> datetime:
    """Convert an aware datetime to naive UTC (aware required; naive is taken as UTC)."""
    if value.tzinfo is None:
        return value
    return value.astimezone(UTC).replace(tzinfo=None)


def dumps(value: Any) -> str:
    """Compact JSON text for the properties/context columns."""
    return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS, default=str).decode()


def events_to_arrow(records: Iterable[Mapping[str, Any]]) -> pa.Table:
    """Build an Arrow table in EVENT_SCHEMA from normalized event dicts (see ingest.normalize)."""
    cols: dict[str, list[Any]] = {f.name: [] for f in EVENT_SCHEMA}
    for r in records:
        cols["message_id"].append(r["message_id"])
        cols["type"].append(r["type"])
        cols["event"].append(r["event"])
        cols["user_id"].append(r.get("user_id"))
        cols["anonymous_id"].append(r.get("anonymous_id"))
        cols["ts"].append(to_utc_naive(r["ts"]))
        cols["received_at"].append(to_utc_naive(r["received_at"]))
        props = r.get("properties")
        cols["properties"].append(props if isinstance(props, str) else dumps(props or {}))
        ctx = r.get("context")
        cols["context"].append(ctx if isinstance(ctx, str) else dumps(ctx or {}))
        cols["source"].append(r.get("source", "http"))
    return pa.table(cols, schema=EVENT_SCHEMA)


TRANSITION_KINDS = ("enter", "exit")
TRANSITION_CAUSES = ("event", "time", "edit", "manual", "backfill")
TRANSITION_SCHEMA = pa.schema(
    [
        ("id", pa.string()),  # deterministic: same transition recorded twice -> same id (dedupe key)
        ("segment", pa.string()),  # saved segment name
        ("version", pa.int32()),  # saved segment version the membership was computed with
        ("user_id", pa.string()),
        ("ts", pa.timestamp("us")),  # when membership changed (as-of time of the change), naive UTC
        ("kind", pa.string()),  # TRANSITION_KINDS
        ("cause", pa.string()),  # TRANSITION_CAUSES
        ("recorded_at", pa.timestamp("us")),  # wall-clock time it was written
    ]
)


def transitions_to_arrow(rows: list[dict[str, Any]]) -> pa.Table:
    """Membership transitions (dicts with TRANSITION_SCHEMA keys) as an Arrow table for WriteBatch.transitions."""
    return pa.Table.from_pylist([{k: r.get(k) for k in TRANSITION_SCHEMA.names} for r in rows],
                                schema=TRANSITION_SCHEMA)
