"""ClickHouse engine on chDB (embedded ClickHouse): for testing the compiled SQL until a server is configured.

chDB allows one data path per process, so sessions are kept per path at module level; several stores may
share a path by using different databases inside it.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa

from segmint.errors import InvalidInput, SegmintError, WorkspaceError
from segmint.store.base import EventCount, EventStore, TraitWrite, WriteBatch
from segmint.store.schema import PROPERTY_TYPES, property_column
from segmint.store.sqltext import quote_ident

CH_TYPES = {
    "string": "Nullable(String)",
    "number": "Nullable(Float64)",
    "integer": "Nullable(Int64)",
    "boolean": "Nullable(Bool)",
    "datetime": "Nullable(DateTime64(6, 'UTC'))",
}
ARROW_TYPES = {
    "string": pa.string(),
    "number": pa.float64(),
    "integer": pa.int64(),
    "boolean": pa.bool_(),
    "datetime": pa.timestamp("us"),
}

TS64 = "DateTime64(6, 'UTC')"
DDL = [
    f"""CREATE TABLE IF NOT EXISTS events (
        message_id String, type LowCardinality(String), event LowCardinality(String),
        user_id Nullable(String), anonymous_id Nullable(String), ts {TS64}, received_at {TS64},
        properties String, context String, source LowCardinality(String))
        ENGINE = MergeTree ORDER BY (event, ifNull(user_id, ''), ts) SETTINGS allow_nullable_key = 1""",
    f"""CREATE TABLE IF NOT EXISTS profiles (
        user_id String, traits String, first_seen Nullable({TS64}), last_seen Nullable({TS64}),
        timezone Nullable(String), updated_at {TS64})
        ENGINE = MergeTree ORDER BY user_id""",
    "CREATE TABLE IF NOT EXISTS identities (anonymous_id String, user_id String) "
    "ENGINE = MergeTree ORDER BY anonymous_id",
    """CREATE TABLE IF NOT EXISTS rejected (received_at DateTime64(6, 'UTC'), source String, reason String,
        field Nullable(String), message_index Nullable(Int32), payload String)
        ENGINE = MergeTree ORDER BY received_at""",
    "CREATE TABLE IF NOT EXISTS store_state (key String, value String) ENGINE = MergeTree ORDER BY key",
    "CREATE TABLE IF NOT EXISTS property_columns (name String, type String) ENGINE = MergeTree ORDER BY name",
    """CREATE TABLE IF NOT EXISTS segment_transitions (id String, segment String, version Int32, user_id String,
        ts DateTime64(6, 'UTC'), kind LowCardinality(String), cause LowCardinality(String),
        recorded_at DateTime64(6, 'UTC')) ENGINE = ReplacingMergeTree ORDER BY (segment, user_id, ts, id)""",
]
EVENT_COLUMNS = [
    "message_id",
    "type",
    "event",
    "user_id",
    "anonymous_id",
    "ts",
    "received_at",
    "properties",
    "context",
    "source",
]
# Computed traits (segmint.traits): created on the first trait write; trait_runs keeps the newest row per run_id.
TRAIT_DDL = [
    f"""CREATE TABLE IF NOT EXISTS trait_runs (
        run_id Int64, started_at {TS64}, finished_at Nullable({TS64}), as_of {TS64}, families Array(String),
        published Nullable(Bool), users Nullable(Int64), rows Nullable(Int64), status String,
        error Nullable(String), notes Nullable(String), kind Nullable(String), trigger Nullable(String),
        version {TS64}) ENGINE = ReplacingMergeTree(version) ORDER BY run_id""",
    f"""CREATE TABLE IF NOT EXISTS computed_traits (run_id Int64, user_id String, name String, value String,
        as_of {TS64}, computed_at {TS64}) ENGINE = MergeTree ORDER BY (run_id, user_id)""",
]
PROFILE_COLUMNS = ["user_id", "traits", "first_seen", "last_seen", "timezone", "updated_at"]

_SESSIONS: dict[str, Any] = {}
_LOCK = threading.RLock()


def _session(path: str) -> Any:
    """The one chDB session of this process for a data path (chDB allows one path per process)."""
    from chdb import session as chs

    with _LOCK:
        if path not in _SESSIONS:
            if _SESSIONS:
                other = next(iter(_SESSIONS))
                raise WorkspaceError(
                    f"chDB already uses {other} in this process (one data path per process)", where=path
                )
            _SESSIONS[path] = chs.Session(path)
        return _SESSIONS[path]


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def ch_param(value: Any) -> Any:
    """A Python value as chDB wants it for a server-side `{name:Type}` parameter."""
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            value = value.astimezone(UTC).replace(tzinfo=None)
        return value.strftime("%Y-%m-%d %H:%M:%S.%f")
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):  # parameter values are read in ClickHouse's escaped (TSV) format
        return value.translate(_ESCAPES)
    return value


_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r", "\0": "\\0", "\b": "\\b", "\f": "\\f"})


class ClickHouseEventStore(EventStore):
    """EventStore on an embedded chDB database: MergeTree events sorted by (event, user_id, ts)."""

    dialect = "clickhouse"

    def __init__(self, path: Path | str, *, database: str = "segmint", read_only: bool = False) -> None:
        self.path = str(path)
        Path(self.path).mkdir(parents=True, exist_ok=True)
        self.database = database
        self._sess = _session(self.path)
        self._lock = threading.RLock()
        self._raw(f"CREATE DATABASE IF NOT EXISTS {quote_ident(database)}")
        if not read_only:
            for stmt in DDL:
                self._exec(stmt)

    # -- plumbing --------------------------------------------------------------------------------
    def _raw(self, sql: str, fmt: str = "CSV", params: dict[str, Any] | None = None) -> Any:
        try:
            return self._sess.query(sql, fmt, params=params or None)
        except RuntimeError as exc:
            raise SegmintError(f"ClickHouse: {str(exc).strip()[:2000]}", where="clickhouse") from exc

    def _exec(self, sql: str, params: dict[str, Any] | None = None, fmt: str = "CSV") -> Any:
        with _LOCK:
            self._raw(f"USE {quote_ident(self.database)}")
            return self._raw(sql, fmt, params)

    def _arrow(self, sql: str, params: dict[str, Any] | None = None) -> pa.Table:
        table = self._exec(sql, {k: ch_param(v) for k, v in (params or {}).items()}, fmt="ArrowTable")
        return table if isinstance(table, pa.Table) else pa.table({})

    def _insert(self, table_name: str, data: pa.Table) -> None:
        """Insert an Arrow table through chDB's Python() table function (no row-by-row inserts)."""
        if not data.num_rows:
            return
        cols = ", ".join(quote_ident(c) for c in data.column_names)
        _segmint_batch = data
        self._exec(f"INSERT INTO {quote_ident(table_name)} ({cols}) SELECT {cols} FROM Python(_segmint_batch)")

    def _with_ids(self, ids: list[str], sql: str, fmt: str = "ArrowTable") -> Any:
        """Run SQL where `{ids}` stands for a subquery over a list of ids passed as an Arrow table."""
        _segmint_ids = pa.table({"id": pa.array(ids, pa.string())})
        return self._exec(sql.replace("{ids}", "(SELECT id FROM Python(_segmint_ids))"), fmt=fmt)

    # -- writing ---------------------------------------------------------------------------------
    def write(self, batch: WriteBatch) -> int:
        """Write events (deduped by message_id), identities, profiles, rejects and state."""
        with self._lock:
            inserted = 0
            if batch.identities:
                known = self.identities()
                new = {a: u for a, u in batch.identities.items() if a not in known}
                if new:
                    self._insert("identities", pa.table({"anonymous_id": list(new), "user_id": list(new.values())}))
                    for anon, uid in new.items():  # events sent while anonymous now belong to the user
                        self._exec(
                            "ALTER TABLE events UPDATE user_id = {u:String} WHERE user_id IS NULL "
                            "AND anonymous_id = {a:String} SETTINGS mutations_sync = 1",
                            {"u": uid, "a": anon},
                        )
            if batch.events is not None and batch.events.num_rows:
                inserted = self._insert_events(batch.events)
            if batch.profiles:
                self._merge_profiles(batch)
            if batch.rejected is not None and batch.rejected.num_rows:
                self._insert("rejected", batch.rejected)
            if batch.transitions is not None and batch.transitions.num_rows:
                ids = batch.transitions.column("id").to_pylist()
                seen = {r["id"] for r in self._with_ids(ids, "SELECT id FROM segment_transitions WHERE id IN {ids}")
                        .to_pylist()}
                fresh = batch.transitions.filter(pa.array([i not in seen for i in ids]))
                if fresh.num_rows:
                    self._insert("segment_transitions", fresh)
            for key, value in batch.state.items():
                self._exec("DELETE FROM store_state WHERE key = {k:String}", {"k": key})
                self._insert("store_state", pa.table({"key": [key], "value": [value]}))
            return inserted

    def write_traits(self, write: TraitWrite) -> int:
        """Record the run (newest row per run_id wins), append values to computed_traits, merge into profiles.

        The history rows are made in ClickHouse from the Arrow tables (one INSERT ... SELECT per table, values
        JSON-encoded by toJSONString); publishing rewrites profiles with one patch per user built from those
        rows. chDB has no transactions, so the run record is written last: a run whose record says ok has
        all its values."""
        with self._lock:
            for stmt in TRAIT_DDL:
                self._exec(stmt)
            run, now = dict(write.run), _now()
            for table in write.tables:
                self._trait_history(table, run, now)
            k = 0
            if write.tables:
                k = int(self._arrow("SELECT count() FROM computed_traits WHERE run_id = {r:Int64}",
                                    {"r": run["run_id"]}).column(0)[0].as_py())
            if write.publish and write.tables:
                keys = list(dict.fromkeys(n for t in write.tables for n in t.column_names if n != "user_id"))
                self._publish_traits(run["run_id"], keys)
            if write.keep_runs:
                self._exec("DELETE FROM computed_traits WHERE run_id <= {r:Int64}",
                           {"r": run["run_id"] - write.keep_runs})
            run["version"] = now
            self._insert("trait_runs", pa.Table.from_pylist([run]).cast(self._trait_run_schema(list(run))))
            return k

    def _trait_history(self, table: pa.Table, run: dict[str, Any], now: datetime) -> None:
        """Append one row per non-null value of a trait table to computed_traits, in one INSERT ... SELECT."""
        names = [n for n in table.column_names if n != "user_id"]
        if not names or not table.num_rows:
            return
        _segmint_traits, exprs = _json_ready(table, names)
        params = {f"n{i}": n for i, n in enumerate(names)}
        pairs = ", ".join(f"tuple({{n{i}:String}}, {e})" for i, e in enumerate(exprs))
        self._exec(
            f"""INSERT INTO computed_traits (run_id, user_id, name, value, as_of, computed_at)
            SELECT {{r:Int64}}, user_id, kv.1, assumeNotNull(kv.2), {{a:{TS64}}}, {{t:{TS64}}}
            FROM Python(_segmint_traits) ARRAY JOIN [{pairs}] AS kv
            WHERE kv.2 IS NOT NULL AND kv.2 != 'null' {_JSON_SETTINGS}""",
            {**{k: ch_param(v) for k, v in params.items()},
             "r": run["run_id"], "a": ch_param(run["as_of"]), "t": ch_param(now)})

    def _publish_traits(self, run_id: int, keys: list[str]) -> None:
        """Merge a run's values into profiles.traits: every profile loses the run's keys, then gets its own
        non-null values (RFC 7396 with null for a missing value, as DuckDB's json_merge_patch does)."""
        cur = self._arrow(
            """SELECT p.*, x.patch AS _patch FROM profiles p LEFT JOIN (
                 SELECT user_id, concat('{', arrayStringConcat(groupArray(concat(toJSONString(name), ':', value)),
                                                               ','), '}') AS patch
                 FROM computed_traits WHERE run_id = {r:Int64} GROUP BY user_id) x ON x.user_id = p.user_id
               SETTINGS join_use_nulls = 1, output_format_json_escape_forward_slashes = 0""", {"r": run_id})
        if not cur.num_rows:
            return
        loads, dumps, drop = orjson.loads, orjson.dumps, set(keys)
        merged = []
        for old, patch in zip(cur.column("traits").to_pylist(), cur.column("_patch").to_pylist(), strict=True):
            traits = {k: v for k, v in loads(old).items() if k not in drop} if old else {}
            if patch:
                traits.update(loads(patch))
            merged.append(dumps(traits).decode())
        # one chunk per column: chDB's Python() reader over-counts the memory of a many-chunk table chDB returned
        # itself (25 chunks of 200,000 profiles hit its 21 GiB limit)
        table = cur.select(PROFILE_COLUMNS).combine_chunks()
        table = table.set_column(PROFILE_COLUMNS.index("traits"), "traits", pa.array(merged, pa.string()))
        ts = pa.timestamp("us")
        table = table.cast(pa.schema([f.with_type(ts) if pa.types.is_timestamp(f.type) else f for f in table.schema]))
        self._exec("TRUNCATE TABLE profiles")
        self._insert("profiles", table)

    @staticmethod
    def _trait_run_schema(cols: list[str]) -> pa.Schema:
        ts = pa.timestamp("us")
        types = {"run_id": pa.int64(), "started_at": ts, "finished_at": ts, "as_of": ts, "version": ts,
                 "families": pa.list_(pa.string()), "published": pa.bool_(), "users": pa.int64(),
                 "rows": pa.int64()}
        return pa.schema([(c, types.get(c, pa.string())) for c in cols])

    def _insert_events(self, events: pa.Table) -> int:
        events = events.select(EVENT_COLUMNS)
        ids = events.column("message_id").to_pylist()
        seen = self.existing_message_ids(ids)
        keep, fresh = [], set()
        links = self.identities()
        user_ids = events.column("user_id").to_pylist()
        anon = events.column("anonymous_id").to_pylist()
        for i, mid in enumerate(ids):
            if mid in seen or mid in fresh:
                continue
            fresh.add(mid)
            keep.append(i)
        events = events.take(pa.array(keep, pa.int64()))
        resolved = [user_ids[i] if user_ids[i] is not None else links.get(anon[i]) for i in keep]
        events = events.set_column(EVENT_COLUMNS.index("user_id"), "user_id", pa.array(resolved, pa.string()))
        typed = self.property_columns()
        if typed:
            props = events.column("properties").to_pylist()
            for name, typ in typed.items():
                events = events.append_column(property_column(name), _typed_column(props, name, typ))
        self._insert("events", events)
        self._touch_profiles(events)
        return events.num_rows

    def _touch_profiles(self, events: pa.Table) -> None:
        """Create profiles for users first seen in events and widen first/last seen."""
        spans: dict[str, tuple[datetime, datetime]] = {}
        for uid, ts in zip(events.column("user_id").to_pylist(), events.column("ts").to_pylist(), strict=True):
            if uid is None:
                continue
            lo, hi = spans.get(uid, (ts, ts))
            spans[uid] = (min(lo, ts), max(hi, ts))
        if spans:
            self._upsert_profiles({u: ({}, lo, hi, None) for u, (lo, hi) in spans.items()}, replace_traits=False)

    def _merge_profiles(self, batch: WriteBatch) -> None:
        merged: dict[str, tuple[dict[str, Any], datetime, datetime | None, str | None]] = {}
        for upd in sorted(batch.profiles, key=lambda u: u.ts):
            ts = upd.ts if upd.ts.tzinfo is None else upd.ts.astimezone(UTC).replace(tzinfo=None)
            traits, first, last, zone = merged.get(upd.user_id, ({}, ts, None, None))
            traits.update(upd.traits)
            merged[upd.user_id] = (traits, first, last, upd.timezone or zone)
        self._upsert_profiles(merged, replace_traits=True)

    def load_profiles(self, profiles: pa.Table) -> int:
        """Bulk-merge profiles (user_id, traits JSON text, first_seen, timezone) through the same merge."""
        rows: dict[str, tuple[dict[str, Any], datetime, datetime | None, str | None]] = {}
        for r in profiles.select(["user_id", "traits", "first_seen", "timezone"]).to_pylist():
            traits = orjson.loads(r["traits"]) if r["traits"] else {}
            rows[r["user_id"]] = (traits, r["first_seen"], None, r["timezone"])
        self._upsert_profiles(rows, replace_traits=True)
        return len(rows)

    def _upsert_profiles(
        self, rows: dict[str, tuple[dict[str, Any], datetime, datetime | None, str | None]], *, replace_traits: bool
    ) -> None:
        """Merge rows into profiles the way DuckDB's ON CONFLICT merge does.

        Rewrites the whole (small, test-sized) profiles table: chDB's DELETE mutations are slow and the
        ClickHouse engine is for testing the compiled SQL, not for serving writes.
        """
        current = self._profiles_for(None)
        out: dict[str, list[Any]] = {c: [] for c in PROFILE_COLUMNS}
        now = _now()
        for uid, (traits, first, last, zone) in rows.items():
            old = current.get(uid)
            if old is not None:
                old_traits = orjson.loads(old["traits"] or "{}")
                if replace_traits:
                    old_traits = _merge_patch(old_traits, traits)
                traits = old_traits
                first = min(x for x in (first, old["first_seen"]) if x is not None)
                last = max((x for x in (last, old["last_seen"]) if x is not None), default=None)
                zone = zone or old["timezone"]
            out["user_id"].append(uid)
            out["traits"].append(orjson.dumps(traits, default=str).decode())
            out["first_seen"].append(first)
            out["last_seen"].append(last)
            out["timezone"].append(zone)
            out["updated_at"].append(now if replace_traits or old is None else old["updated_at"])
        for uid, old in current.items():
            if uid not in rows:
                for c in PROFILE_COLUMNS:
                    out[c].append(old[c])
        self._exec("TRUNCATE TABLE profiles")
        ts = pa.timestamp("us")
        self._insert(
            "profiles",
            pa.table(
                {
                    "user_id": pa.array(out["user_id"], pa.string()),
                    "traits": pa.array(out["traits"], pa.string()),
                    "first_seen": pa.array(out["first_seen"], ts),
                    "last_seen": pa.array(out["last_seen"], ts),
                    "timezone": pa.array(out["timezone"], pa.string()),
                    "updated_at": pa.array(out["updated_at"], ts),
                }
            ),
        )

    def _profiles_for(self, ids: list[str] | None) -> dict[str, dict[str, Any]]:
        if ids is None:
            table = self._arrow("SELECT * FROM profiles")
        elif not ids:
            return {}
        else:
            table = self._with_ids(ids, "SELECT * FROM profiles WHERE user_id IN {ids}")
        rows = table.to_pylist()
        for r in rows:
            for k in ("first_seen", "last_seen", "updated_at"):
                if r.get(k) is not None:
                    r[k] = r[k].replace(tzinfo=None)
        return {r["user_id"]: r for r in rows}

    def copy_from(self, source: EventStore, *, batch_rows: int = 1_000_000) -> int:
        """Replace this store's events and profiles by a copy of another store's (typed columns included)."""
        with self._lock:
            typed = source.property_columns()
            self._exec("TRUNCATE TABLE events")
            self._exec("TRUNCATE TABLE profiles")
            self._exec("TRUNCATE TABLE property_columns")
            self._ensure_columns_ddl(typed)
            if typed:
                self._insert("property_columns", pa.table({"name": list(typed), "type": list(typed.values())}))
            cols = EVENT_COLUMNS + [property_column(n) for n in typed]
            sel = ", ".join(
                f"CAST({quote_ident(c)} AS VARCHAR) AS {quote_ident(c)}"
                if c in ("properties", "context")
                else quote_ident(c)
                for c in cols
            )
            total = source.query("SELECT count(*) AS n FROM events").column(0)[0].as_py()
            cursor = getattr(source, "_cursor", None)
            if cursor is not None:  # DuckDB: stream record batches (no sort, no OFFSET rescans of big stores)
                cur = cursor()
                try:
                    reader = cur.sql(f"SELECT {sel} FROM events").to_arrow_reader(batch_rows)
                    for batch in reader:
                        self._insert("events", pa.Table.from_batches([batch]))
                finally:
                    cur.close()
            else:
                offset = 0
                while offset < total:
                    chunk = source.query(
                        f"SELECT {sel} FROM events ORDER BY message_id LIMIT ? OFFSET ?", [batch_rows, offset]
                    )
                    self._insert("events", chunk)
                    offset += batch_rows
            prof = source.query(
                "SELECT user_id, CAST(traits AS VARCHAR) AS traits, first_seen, last_seen, timezone, "
                "coalesce(updated_at, TIMESTAMP '1970-01-01') AS updated_at FROM profiles"
            )
            self._insert("profiles", prof)
            return int(total)

    # -- reading ---------------------------------------------------------------------------------
    def existing_message_ids(self, ids: Sequence[str]) -> set[str]:
        """Which of the given message ids are stored already."""
        if not ids:
            return set()
        t = self._with_ids(list(ids), "SELECT DISTINCT message_id FROM events WHERE message_id IN {ids}")
        return set(t.column(0).to_pylist()) if t.num_rows else set()

    def recent_message_ids(self, since: datetime) -> Iterator[str]:
        """Message ids received since a time."""
        t = self._arrow(f"SELECT message_id FROM events WHERE received_at >= {{s:{TS64}}}", {"s": since})
        yield from (t.column(0).to_pylist() if t.num_rows else [])

    def identities(self) -> dict[str, str]:
        """All anonymous_id -> user_id links."""
        t = self._arrow("SELECT anonymous_id, user_id FROM identities")
        return dict(zip(t.column(0).to_pylist(), t.column(1).to_pylist(), strict=True)) if t.num_rows else {}

    def get_state(self, key: str) -> str | None:
        """A value stored by a WriteBatch."""
        t = self._arrow("SELECT value FROM store_state WHERE key = {k:String} LIMIT 1", {"k": key})
        return t.column(0)[0].as_py() if t.num_rows else None

    def event_counts(self) -> list[EventCount]:
        """Counts per event name and type, most frequent first."""
        t = self._arrow("""SELECT type, event, count() AS n, uniqExact(user_id) AS users, min(ts) AS first,
            max(ts) AS last FROM events GROUP BY type, event ORDER BY n DESC, event""")
        return [EventCount(r["type"], r["event"], r["n"], r["users"], r["first"], r["last"]) for r in t.to_pylist()]

    def rejected(self, limit: int = 100) -> list[dict[str, Any]]:
        """Most recent rejected messages."""
        return self._arrow(
            "SELECT * FROM rejected ORDER BY received_at DESC LIMIT {n:UInt32}", {"n": limit}
        ).to_pylist()

    def property_columns(self) -> dict[str, str]:
        """Typed property columns declared so far."""
        t = self._arrow("SELECT name, type FROM property_columns ORDER BY name")
        return dict(zip(t.column(0).to_pylist(), t.column(1).to_pylist(), strict=True)) if t.num_rows else {}

    def _ensure_columns_ddl(self, columns: dict[str, str]) -> None:
        existing = set(
            self._arrow(
                "SELECT name FROM system.columns WHERE database = {d:String} AND table = 'events'", {"d": self.database}
            )
            .column(0)
            .to_pylist()
        )
        for name, typ in columns.items():
            col = property_column(name)
            if col not in existing:
                self._exec(f"ALTER TABLE events ADD COLUMN {quote_ident(col)} {CH_TYPES[typ]}")

    def ensure_property_columns(self, columns: dict[str, str]) -> list[str]:
        """Add typed columns for declared properties, backfilled from the JSON by rewriting the table."""
        existing = self.property_columns()
        added = []
        with self._lock:
            for name, typ in columns.items():
                if typ not in PROPERTY_TYPES:
                    raise InvalidInput(
                        f"unknown property type {typ!r}; use one of {sorted(PROPERTY_TYPES)}",
                        where=f"properties.{name}",
                    )
                if name not in existing:
                    added.append(name)
            if not added:
                return []
            self._ensure_columns_ddl({n: columns[n] for n in added})
            self._insert("property_columns", pa.table({"name": added, "type": [columns[n] for n in added]}))
            old = self._arrow("SELECT * FROM events")
            if old.num_rows:
                props = old.column("properties").to_pylist()
                for name in added:
                    col = property_column(name)
                    idx = old.column_names.index(col)
                    old = old.set_column(idx, col, _typed_column(props, name, columns[name]))
                old = old.cast(
                    pa.schema(
                        [f.with_type(pa.timestamp("us")) if pa.types.is_timestamp(f.type) else f for f in old.schema]
                    )
                )
                self._exec("TRUNCATE TABLE events")
                self._insert("events", old)
        return added

    def query(self, sql: str, params: Sequence[Any] | dict[str, Any] | None = None) -> pa.Table:
        """Run ClickHouse SQL with server-side `{name:Type}` parameters; returns an Arrow table."""
        if params is not None and not isinstance(params, dict):
            raise InvalidInput("ClickHouse takes named parameters ({name:Type}), not positional ones", where="params")
        return self._arrow(sql, params)

    def summary(self) -> dict[str, Any]:
        """Headline figures."""
        r = self._arrow("""SELECT count() AS events, uniqExact(user_id) AS users, min(ts) AS first_event,
            max(ts) AS last_event FROM events""").to_pylist()[0]
        r["profiles"] = self._arrow("SELECT count() FROM profiles").column(0)[0].as_py()
        r["rejected"] = self._arrow("SELECT count() FROM rejected").column(0)[0].as_py()
        return r

    def close(self) -> None:
        """Nothing to release per store: the process-wide chDB session stays open for its path."""


def _merge_patch(target: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    """RFC 7396 JSON merge patch (what DuckDB's json_merge_patch does)."""
    out = dict(target)
    for k, v in patch.items():
        if v is None:
            out.pop(k, None)
        elif isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = _merge_patch(out[k], v)
        else:
            out[k] = v
    return out


_JSON_SETTINGS = ("SETTINGS output_format_json_quote_64bit_integers = 0, output_format_json_quote_denormals = 0, "
                  "output_format_json_escape_forward_slashes = 0")


def _json_ready(table: pa.Table, names: list[str]) -> tuple[pa.Table, list[str]]:
    """A trait table ready for ClickHouse to JSON-encode its values the way DuckDB's to_json does, and the
    SQL expression of each trait's JSON text (NULL for a missing value): times become their text without
    trailing zeros in the fraction of a second; a null list stays null (the Python() table function reads it
    as an empty array), via a null-flag column."""
    import pyarrow.compute as pc

    table = table.combine_chunks()  # one chunk per column (see _publish_traits: tables chDB returned)
    exprs = []
    for i, n in enumerate(names):
        col = table.column(n)
        if pa.types.is_timestamp(col.type):
            text = pc.replace_substring_regex(pc.cast(col.cast(pa.timestamp("us")), pa.string()), r"\.?0+$", "")
            table = table.set_column(table.column_names.index(n), n, text)
        if pa.types.is_list(col.type) or pa.types.is_large_list(col.type):
            table = table.append_column(f"_null{i}", pc.is_null(col))
            exprs.append(f"if(_null{i}, NULL, toJSONString({quote_ident(n)}))")
        else:
            exprs.append(f"toJSONString({quote_ident(n)})")
    return table, exprs


def _typed_column(props: list[str | None], name: str, typ: str) -> pa.Array:
    """Typed values of one property, cast like DuckDB's TRY_CAST(json_extract_string(...))."""
    values = []
    for raw in props:
        try:
            obj = orjson.loads(raw) if raw else {}
        except orjson.JSONDecodeError:
            obj = {}
        v = obj.get(name) if isinstance(obj, dict) else None
        values.append(_cast(v, typ))
    return pa.array(values, ARROW_TYPES[typ])


def _cast(v: Any, typ: str) -> Any:
    if v is None:
        return None
    try:
        if typ == "string":
            return v if isinstance(v, str) else orjson.dumps(v).decode()
        if typ == "number":
            return None if isinstance(v, bool) else float(v)
        if typ == "integer":
            if isinstance(v, bool):
                return None
            f = float(v)
            return round(f)
        if typ == "boolean":
            if isinstance(v, bool):
                return v
            s = str(v).strip().lower()
            return {"true": True, "false": False, "t": True, "f": False, "1": True, "0": False}.get(s)
        if typ == "datetime":
            return datetime.fromisoformat(str(v)).replace(tzinfo=None)
    except (TypeError, ValueError, OverflowError):
        return None
    return None
