"""Rows of a table (CSV, Parquet, a database query) mapped to events or profile traits, inside DuckDB.

The mapping runs as one SQL query over a DuckDB relation named `src`, so millions of rows are mapped
without a Python loop: ids and names are cast to text, the timestamp is parsed by column type, the
other columns become the properties (or traits) JSON, and rows without a message id get a
deterministic one: `imp_` + md5 of the mapped values, so the same row imported twice (from the same
file or another) is the same event and is stored once.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import duckdb
import orjson
import pyarrow as pa
import pyarrow.compute as pc
import yaml
from pydantic import BaseModel, Field, ValidationError, model_validator

from segmint.errors import InvalidInput
from segmint.store.base import ProfileUpdate, WriteBatch
from segmint.store.schema import EVENT_SCHEMA, REJECTED_SCHEMA
from segmint.store.sqltext import quote_ident

FIELDS = ("user_id", "anonymous_id", "event", "timestamp", "message_id")
# Column names recognised without a mapping, per field.
AUTO_NAMES = {
    "user_id": ("user_id", "userId", "userid"),
    "anonymous_id": ("anonymous_id", "anonymousId"),
    "event": ("event", "event_name"),
    "timestamp": ("timestamp", "ts", "event_time", "time"),
    "message_id": ("message_id", "messageId"),
}
REASON_COL = "_reason"
FIELD_COL = "_field"
PAYLOAD_COL = "_payload"


class ColumnMapping(BaseModel):
    """How the columns of a table become events (`type: track`) or profile traits (`type: identify`)."""

    type: Literal["track", "identify"] = "track"
    event: str | None = Field(default=None, description="Constant event name for every row (track).")
    columns: dict[str, str] = Field(
        default_factory=dict,
        description="column -> field: user_id, anonymous_id, event, timestamp, "
        "message_id, properties.NAME / traits.NAME, or '-' to ignore",
    )
    properties: list[str] | None = Field(
        default=None, description="Columns kept as properties/traits (default: all unmapped)."
    )

    @model_validator(mode="after")
    def _known_fields(self) -> ColumnMapping:
        for col, fld in self.columns.items():
            if fld in FIELDS or fld == "-" or fld.startswith(("properties.", "traits.")):
                continue
            raise ValueError(
                f"column {col!r} maps to unknown field {fld!r}; use one of {', '.join(FIELDS)}, "
                "properties.NAME, traits.NAME or -"
            )
        return self


def parse_map_options(pairs: list[str]) -> dict[str, str]:
    """`--map col=field` options as a dict (errors name the bad option)."""
    out: dict[str, str] = {}
    for pair in pairs:
        col, sep, fld = pair.partition("=")
        if not sep or not col or not fld:
            raise InvalidInput(f"expected COLUMN=FIELD, got {pair!r}", where="--map")
        out[col] = fld
    return out


def load_mapping(
    path: Path | None,
    *,
    pairs: list[str] = (),
    type_: str | None = None,
    event: str | None = None,
    where: str = "mapping",
) -> ColumnMapping:
    """A mapping from a YAML file and/or command-line options (the options win)."""
    data: dict[str, Any] = {}
    if path is not None:
        try:
            data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise InvalidInput(f"cannot read mapping: {exc}", where=str(path)) from None
        if not isinstance(data, dict):
            raise InvalidInput(
                "a mapping file holds a YAML object (type, event, columns, properties)", where=str(path)
            )
        where = str(path)
    if pairs:
        data["columns"] = {**data.get("columns", {}), **parse_map_options(list(pairs))}
    if type_:
        data["type"] = type_
    if event:
        data["event"] = event
    try:
        return ColumnMapping.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = ".".join(str(p) for p in err["loc"])
        raise InvalidInput(f"{loc}: {err['msg'].removeprefix('Value error, ')}", where=where) from None


@dataclass
class Resolved:
    """A mapping resolved against the actual columns of one table."""

    fields: dict[str, str]  # field -> column
    props: list[tuple[str, str]]  # (property name, column)


def resolve(mapping: ColumnMapping, columns: list[str], where: str) -> Resolved:
    """Check the mapping against the table's columns and fill in the recognised ones."""
    listed = ", ".join(columns)
    for col in [*mapping.columns, *(mapping.properties or [])]:
        if col not in columns:
            raise InvalidInput(
                f"unknown column {col!r} in the mapping; the columns are: {listed}", where=where
            )
    fields: dict[str, str] = {}
    renamed: dict[str, str] = {}
    for col, fld in mapping.columns.items():
        if fld in FIELDS:
            fields[fld] = col
        elif fld != "-":
            renamed[col] = fld.split(".", 1)[1]
    for fld, names in AUTO_NAMES.items():
        if fld not in fields and not (fld == "event" and mapping.event):
            for name in names:
                if name in columns and name not in mapping.columns:
                    fields[fld] = name
                    break
    if "user_id" not in fields and "anonymous_id" not in fields:
        raise InvalidInput(
            f"no user id column: map one with --map COLUMN=user_id (or anonymous_id); "
            f"the columns are: {listed}",
            where=where,
        )
    if mapping.type == "track" and "event" not in fields and not mapping.event:
        raise InvalidInput(
            f"no event column: map one with --map COLUMN=event or give --event NAME; "
            f"the columns are: {listed}",
            where=where,
        )
    used = set(fields.values()) | {c for c, f in mapping.columns.items() if f == "-"}
    if mapping.properties is not None:
        keep = list(mapping.properties) + [c for c in renamed if c not in mapping.properties]
    else:
        keep = [c for c in columns if c not in used]
    props = [(renamed.get(c, c), c) for c in keep if c not in used]
    return Resolved(fields, props)


def _ts_expr(col: str, sqltype: str) -> str:
    """SQL turning a column of this DuckDB type into naive UTC (NULL where unparseable)."""
    q = quote_ident(col)
    t = sqltype.upper()
    if t.startswith("TIMESTAMP") or t == "DATE":
        return f"CAST({q} AS TIMESTAMP)"  # TIMESTAMPTZ casts in the session zone, which is UTC
    if t in (
        "BIGINT",
        "INTEGER",
        "HUGEINT",
        "DOUBLE",
        "FLOAT",
        "SMALLINT",
        "UBIGINT",
        "UINTEGER",
    ) or t.startswith("DECIMAL"):
        # epoch seconds, or milliseconds when the magnitude says so
        return (
            f"CAST(CASE WHEN abs({q}) > 100000000000 THEN to_timestamp({q} / 1000.0) "
            f"ELSE to_timestamp({q}) END AS TIMESTAMP)"
        )
    return f"CAST(TRY_CAST(CAST({q} AS VARCHAR) AS TIMESTAMPTZ) AS TIMESTAMP)"


def _always_parses(sqltype: str) -> bool:
    """Whether every non-NULL value of a column of this DuckDB type converts to a timestamp."""
    t = sqltype.upper()
    return t.startswith("TIMESTAMP") or t == "DATE"


def _text(col: str) -> str:
    q = quote_ident(col)
    return f"NULLIF(trim(CAST({q} AS VARCHAR)), '')"


def mapping_sql(
    mapping: ColumnMapping, res: Resolved, types: dict[str, str], *, source: str, received_at: datetime
) -> tuple[str, dict[str, Any]]:
    """The SELECT over `src` yielding EVENT_SCHEMA columns plus _reason/_field/_payload, and parameters."""
    naive = received_at.astimezone(UTC).replace(tzinfo=None) if received_at.tzinfo else received_at
    params: dict[str, Any] = {"mtype": mapping.type, "now": naive, "source": source}
    f = res.fields
    user = _text(f["user_id"]) if "user_id" in f else "CAST(NULL AS VARCHAR)"
    anon = _text(f["anonymous_id"]) if "anonymous_id" in f else "CAST(NULL AS VARCHAR)"
    if mapping.type == "identify":
        event = "'$identify'"
    elif "event" in f:
        event = _text(f["event"])
    else:
        event = "CAST($evname AS VARCHAR)"
        params["evname"] = mapping.event
    mid = _text(f["message_id"]) if "message_id" in f else "CAST(NULL AS VARCHAR)"
    has_ts = "timestamp" in f
    if has_ts:
        ts = _ts_expr(f["timestamp"], types[f["timestamp"]])
        # The raw text is only needed to report values that do not parse; a timestamp or date column
        # always converts, so skip turning every value into text (~10% of the mapping's CPU).
        ts_raw = (
            "CAST(NULL AS VARCHAR)"
            if _always_parses(types[f["timestamp"]])
            else f"CAST({quote_ident(f['timestamp'])} AS VARCHAR)"
        )
    else:
        ts_raw, ts = "CAST(NULL AS VARCHAR)", "CAST(NULL AS TIMESTAMP)"
    if res.props:
        props = (
            "json_object(" + ", ".join(f"$k{i}, {quote_ident(c)}" for i, (_, c) in enumerate(res.props)) + ")"
        )
        params.update({f"k{i}": name for i, (name, _) in enumerate(res.props)})
    else:
        props = "'{}'"
    bad = (f"(({user}) IS NULL AND ({anon}) IS NULL OR ({event}) IS NULL "
           f"OR (({ts}) IS NULL AND {ts_raw} IS NOT NULL))")
    inner = (
        f"SELECT {user} AS user_id, {anon} AS anonymous_id, {event} AS event, {mid} AS mid, "
        f"{ts_raw} AS ts_raw, {ts} AS ts, CAST({props} AS VARCHAR) AS properties, "
        f"CASE WHEN {bad} THEN CAST(to_json(src) AS VARCHAR) END AS {PAYLOAD_COL} FROM src"
    )
    default_ts = "TIMESTAMP '1970-01-01'" if has_ts else "CAST($now AS TIMESTAMP)"
    sql = f"""SELECT
        coalesce(mid, 'imp_' || md5(concat_ws(chr(31), $mtype, event, coalesce(user_id, ''),
                 coalesce(anonymous_id, ''), coalesce(CAST(ts AS VARCHAR), ''), properties))) AS message_id,
        CAST($mtype AS VARCHAR) AS type, coalesce(event, '') AS event, user_id, anonymous_id,
        coalesce(ts, {default_ts}) AS ts, CAST($now AS TIMESTAMP) AS received_at, properties,
        '{{}}' AS context, CAST($source AS VARCHAR) AS source,
        CASE WHEN user_id IS NULL AND anonymous_id IS NULL
               THEN 'user_id or anonymous_id: one of them is required'
             WHEN event IS NULL THEN 'event: required for track'
             WHEN ts IS NULL AND ts_raw IS NOT NULL THEN 'timestamp: cannot parse ' || to_json(ts_raw)
             END AS {REASON_COL},
        CASE WHEN user_id IS NULL AND anonymous_id IS NULL THEN 'user_id'
             WHEN event IS NULL THEN 'event'
             ELSE 'timestamp' END AS {FIELD_COL},
        {PAYLOAD_COL}
      FROM ({inner}) AS m"""
    return sql, params


def check_timestamps(
    con: duckdb.DuckDBPyConnection, res: Resolved, types: dict[str, str], where: str
) -> None:
    """Fail early when the timestamp column has values but none of the first thousand parse."""
    col = res.fields.get("timestamp")
    if col is None:
        return
    q = quote_ident(col)
    row = con.execute(
        f"SELECT count({q}), count({_ts_expr(col, types[col])}), any_value(CAST({q} AS VARCHAR)) "
        f"FROM (SELECT {q} FROM src WHERE {q} IS NOT NULL LIMIT 1000)"
    ).fetchall()[0]
    if row[0] and not row[1]:
        raise InvalidInput(
            f"no value of column {col!r} parses as a timestamp (e.g. {row[2]!r}); "
            "use ISO 8601 text, a timestamp column, or epoch seconds/milliseconds",
            where=f"{where}: {col}",
        )


@dataclass
class MappedBatch:
    """One slice of mapped rows ready for the store, with the rows that were refused."""

    batch: WriteBatch
    rows: int
    rejected: int


def stream_batches(
    con: duckdb.DuckDBPyConnection,
    mapping: ColumnMapping,
    *,
    where: str,
    source: str,
    received_at: datetime,
    batch_rows: int = 1_000_000,
    first_line: int = 1,
) -> Iterator[MappedBatch]:
    """Map the relation `src` on `con` and yield write batches (events, rejects, profile updates)."""
    desc = con.execute("DESCRIBE SELECT * FROM src").fetchall()
    types = {r[0]: r[1] for r in desc}
    res = resolve(mapping, list(types), where)
    check_timestamps(con, res, types, where)
    sql, params = mapping_sql(mapping, res, types, source=source, received_at=received_at)
    reader = con.sql(sql, params=params).to_arrow_reader(batch_rows)
    row0 = 0
    for rb in reader:
        yield _to_write_batch(
            rb, mapping, where=where, first_row=row0 + first_line, source=source, received_at=received_at
        )
        row0 += rb.num_rows


def _to_write_batch(
    rb: pa.RecordBatch,
    mapping: ColumnMapping,
    *,
    where: str,
    first_row: int,
    source: str,
    received_at: datetime,
) -> MappedBatch:
    table = pa.Table.from_batches([rb])
    bad = pc.is_valid(table[REASON_COL])
    n_bad = pc.sum(bad).as_py() or 0
    good = table.filter(pc.invert(bad)) if n_bad else table
    events = good.select(EVENT_SCHEMA.names).cast(EVENT_SCHEMA)
    batch = WriteBatch(events=events, skip_stored=True)
    if n_bad:
        idx = pc.indices_nonzero(bad).to_pylist()
        rej = table.filter(bad)
        now = received_at.astimezone(UTC).replace(tzinfo=None) if received_at.tzinfo else received_at
        batch.rejected = pa.table(
            {
                "received_at": pa.array([now] * n_bad, pa.timestamp("us")),
                "source": pa.array([source] * n_bad, pa.string()),
                "reason": rej[REASON_COL],
                "field": pa.array(
                    [
                        f"{where}:{first_row + i}: {f}"
                        for i, f in zip(idx, rej[FIELD_COL].to_pylist(), strict=True)
                    ],
                    pa.string(),
                ),
                "message_index": pa.array([first_row + i for i in idx], pa.int32()),
                "payload": pc.utf8_slice_codeunits(rej[PAYLOAD_COL].cast(pa.string()), 0, 4096),
            },
            schema=REJECTED_SCHEMA,
        )
    _collect_identities(events, batch)
    if mapping.type == "identify":
        for uid, props, ts in zip(
            events["user_id"].to_pylist(),
            events["properties"].to_pylist(),
            events["ts"].to_pylist(),
            strict=True,
        ):
            if uid is not None:
                batch.profiles.append(ProfileUpdate(uid, orjson.loads(props), ts))
    return MappedBatch(batch, table.num_rows, n_bad)


def _collect_identities(events: pa.Table, batch: WriteBatch) -> None:
    """anonymous_id -> user_id links from rows that carry both (first link wins, as in the ingestor)."""
    both = pc.and_(pc.is_valid(events["user_id"]), pc.is_valid(events["anonymous_id"]))
    if not pc.any(both).as_py():
        return
    pairs = events.filter(both).select(["anonymous_id", "user_id"])
    for anon, user in zip(pairs["anonymous_id"].to_pylist(), pairs["user_id"].to_pylist(), strict=True):
        batch.identities.setdefault(anon, user)
