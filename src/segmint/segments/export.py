"""Export segment members with chosen traits (plus first_seen/last_seen) as ids, CSV or Parquet."""

from __future__ import annotations

import io
import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from segmint.errors import InvalidInput
from segmint.segments.evaluate import compile_for
from segmint.store.base import EventStore
from segmint.store.schema import is_safe_name

FORMATS = ("ids", "csv", "parquet")
FIXED = ("user_id", "first_seen", "last_seen")
MAX_TRAITS = 100


def check_traits(traits: Sequence[str]) -> list[str]:
    """The trait names asked for, checked: no duplicates, none of the fixed columns, no control characters."""
    out: list[str] = []
    if len(traits) > MAX_TRAITS:
        raise InvalidInput(f"at most {MAX_TRAITS} traits per export", where="traits")
    for t in traits:
        if not t or not is_safe_name(t):
            raise InvalidInput(f"trait name {t!r} is empty or holds a quote or control character", where="traits")
        if t in FIXED:
            raise InvalidInput(f"{t!r} is always exported; it cannot be a trait column too", where="traits")
        if t in out:
            raise InvalidInput(f"trait {t!r} is asked for twice", where="traits")
        out.append(t)
    return out


def _column(values: list[Any]) -> pa.Array:
    """One trait column: its natural Arrow type when the values agree, else JSON/text."""
    try:
        arr = pa.array(values)
        if not pa.types.is_struct(arr.type) and not pa.types.is_list(arr.type) and not pa.types.is_null(arr.type):
            return arr
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        pass
    return pa.array([None if v is None else v if isinstance(v, str) else json.dumps(v, ensure_ascii=False)
                     for v in values], pa.string())


def member_table(store: EventStore, tree: Any, traits: Sequence[str] = (), as_of: datetime | None = None,
                 ids: Sequence[str] | None = None) -> pa.Table:
    """Members (sorted) with first_seen, last_seen and the chosen traits from profiles.traits; with `ids`
    (a static segment's frozen members) those users instead of evaluating the tree."""
    names = check_traits(traits)
    if ids is not None:
        keep = set(ids)
        rows = [r for r in store.query("SELECT user_id, traits, first_seen, last_seen FROM profiles "
                                       "ORDER BY user_id").to_pylist() if r["user_id"] in keep]
    else:
        sql, params = compile_for(store, tree, as_of)
        settings = " SETTINGS join_use_nulls = 1"
        tail = settings if sql.endswith(settings) else ""
        sql = sql.removesuffix(tail)
        rows = store.query(
            f"SELECT p.user_id, p.traits, p.first_seen, p.last_seen FROM profiles p WHERE p.user_id IN ({sql}) "
            f"ORDER BY p.user_id{tail}", params).to_pylist()
    cols: dict[str, Any] = {
        "user_id": pa.array([str(r["user_id"]) for r in rows], pa.string()),
        "first_seen": pa.array([r["first_seen"] for r in rows], pa.timestamp("us")),
        "last_seen": pa.array([r["last_seen"] for r in rows], pa.timestamp("us")),
    }
    parsed = [_traits(r["traits"]) for r in rows]
    for t in names:
        cols[t] = _column([p.get(t) for p in parsed])
    return pa.table(cols)


def _traits(raw: Any) -> dict[str, Any]:
    if isinstance(raw, dict):
        return raw
    try:
        val = json.loads(raw) if raw else {}
    except (TypeError, ValueError):
        return {}
    return val if isinstance(val, dict) else {}


def to_bytes(table: pa.Table, fmt: str) -> bytes:
    """The table as CSV (UTF-8, header row), Parquet, or newline-separated ids."""
    if fmt not in FORMATS:
        raise InvalidInput(f"format {fmt!r}; expected one of {', '.join(FORMATS)}", where="format")
    if fmt == "ids":
        ids = table.column("user_id").to_pylist()
        return ("".join(f"{u}\n" for u in ids)).encode()
    buf = io.BytesIO()
    if fmt == "csv":
        pacsv.write_csv(table, buf)
    else:
        pq.write_table(table, buf)
    return buf.getvalue()


def export_members(store: EventStore, tree: Any, fmt: str = "csv", traits: Sequence[str] = (),
                   as_of: datetime | None = None, ids: Sequence[str] | None = None) -> bytes:
    """Members of a (segments-inlined) tree, or the given ids, in a format, as bytes ready to write or send."""
    return to_bytes(member_table(store, tree, traits, as_of, ids), fmt)
