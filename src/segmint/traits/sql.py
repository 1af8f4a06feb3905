"""SQL building blocks for trait queries: bound parameters, property expressions, rule CASE expressions.

Trait queries are written once with `$name` placeholders and a few dialect helpers (`Query.lag`,
`Query.median`, ...), and run on DuckDB or ClickHouse (chDB): for ClickHouse the placeholders become
typed `{name:Type}` parameters and the query runs with `join_use_nulls` (SQL NULLs for missing join rows)."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

import pyarrow as pa

from segmint.errors import InvalidInput
from segmint.store.base import EventStore
from segmint.store.schema import property_column
from segmint.store.sqltext import json_path, quote_ident
from segmint.traits.config import OPS, Rule

_PLACEHOLDER = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)")
TRAIT_DIALECTS = ("duckdb", "clickhouse")  # the engines trait queries have SQL for
CH_SETTINGS = "SETTINGS join_use_nulls = 1, cast_keep_nullable = 1"
# logical SQL types of trait queries -> ClickHouse (nullable: TRY_CAST gives NULL for bad values)
CH_CAST = {"DOUBLE": "Float64", "VARCHAR": "String", "BIGINT": "Int64", "INTEGER": "Int32"}


def missing_table(exc: BaseException) -> bool:
    """Whether a query failed because the trait tables do not exist yet (no trait run so far), on either engine."""
    import duckdb

    from segmint.errors import SegmintError

    if isinstance(exc, duckdb.CatalogException):
        return True
    return isinstance(exc, SegmintError) and "UNKNOWN_TABLE" in str(exc)


def trait_runs_table(store: EventStore) -> str:
    """`trait_runs` as a FROM clause: on ClickHouse with FINAL (the newest row per run_id of the
    ReplacingMergeTree)."""
    return "trait_runs FINAL" if getattr(store, "dialect", None) == "clickhouse" else "trait_runs"


def ch_type(value: Any) -> str:
    """The ClickHouse parameter type for a bound Python value."""
    if isinstance(value, bool):
        return "Bool"
    if isinstance(value, int):
        return "Int64"
    if isinstance(value, float):
        return "Float64"
    if isinstance(value, datetime):
        return "DateTime64(6, 'UTC')"
    if value is None:
        return "Nullable(String)"
    if isinstance(value, str):
        return "String"
    raise InvalidInput(f"cannot bind a {type(value).__name__} value in a ClickHouse trait query", where="traits")


def for_dialect(store: EventStore, sql: str, params: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """SQL written with `$name` placeholders, as the store's dialect wants it (ClickHouse: `{name:Type}`)."""
    if getattr(store, "dialect", "duckdb") != "clickhouse":
        return sql, params
    used = set(_PLACEHOLDER.findall(sql))
    missing = used - set(params)
    if missing:
        raise InvalidInput(f"unbound parameters {sorted(missing)}", where="traits")
    text = _PLACEHOLDER.sub(lambda m: "{" + m.group(1) + ":" + ch_type(params[m.group(1)]) + "}", sql)
    return text, {k: v for k, v in params.items() if k in used}


def run_sql(store: EventStore, sql: str, params: dict[str, Any] | None = None) -> Any:
    """Run SQL written with `$name` placeholders on any trait-capable store; returns an Arrow table."""
    text, bound = for_dialect(store, sql, params or {})
    if getattr(store, "dialect", "duckdb") != "clickhouse":
        return store.query(text, bound)
    return _like_duckdb(store.query(f"{text} {CH_SETTINGS}", bound))


def _like_duckdb(table: pa.Table) -> pa.Table:
    """ClickHouse results in DuckDB's types: naive UTC microsecond timestamps, signed 64-bit counts."""
    fields = []
    for f in table.schema:
        t = f.type
        if pa.types.is_timestamp(t):
            t = pa.timestamp("us")
        elif pa.types.is_unsigned_integer(t):
            t = pa.int64()
        fields.append(f.with_type(t))
    return table.cast(pa.schema(fields))


class Query:
    """Collects named parameters ($p1, $p2 ...) while a query is built; the as-of time is `$as_of`."""

    def __init__(self, store: EventStore, as_of: datetime) -> None:
        self.store = store
        self.params: dict[str, Any] = {"as_of": as_of}
        self.typed = store.property_columns()
        self.ch = getattr(store, "dialect", "duckdb") == "clickhouse"

    def bind(self, value: Any) -> str:
        """A placeholder for a value (never pasted into the SQL text)."""
        name = f"p{len(self.params)}"
        self.params[name] = value
        return "$" + name

    def cast(self, expr: str, sqltype: str) -> str:
        """TRY_CAST: the value as `sqltype`, NULL when it does not convert."""
        if self.ch:
            return f"accurateCastOrNull({expr}, '{CH_CAST[sqltype]}')"
        return f"TRY_CAST({expr} AS {sqltype})"

    def prop(self, name: str, sqltype: str) -> str:
        """A property as `sqltype`: the typed column p_<name> when the store has it, else from the JSON."""
        if name in self.typed:
            return self.cast(quote_ident(property_column(name)), sqltype)
        if self.ch:  # a missing key is NULL, as with DuckDB's json_extract_string
            key = self.bind(name)
            return self.cast(f"if(JSONHas(properties, {key}), JSONExtractString(properties, {key}), NULL)", sqltype)
        return self.cast(f"json_extract_string(properties, {self.bind(json_path(name))})", sqltype)

    def names(self, names: list[str]) -> str:
        """`(?, ?, ...)` list of bound names for IN; a never-matching list when empty."""
        return "(" + ", ".join(self.bind(n) for n in names) + ")" if names else "(NULL)"

    def events(self, names: list[str]) -> str:
        """WHERE condition: known user, as of the run time, one of these events."""
        return f"user_id IS NOT NULL AND ts <= $as_of AND event IN {self.names(names)}"

    def days_since(self, col: str) -> str:
        """Fractional days from a timestamp expression to the as-of time."""
        return f"(date_diff('second', {col}, $as_of) / 86400.0)"

    def lag(self, expr: str, over: str) -> str:
        """The previous row's value in a window (NULL on the first row)."""
        if self.ch:
            return (f"lagInFrame(toNullable({expr})) OVER ({over} "
                    "ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING)")
        return f"lag({expr}) OVER ({over})"

    def median(self, expr: str) -> str:
        """Exact median, the mean of the two middle values for an even count (DuckDB's median)."""
        if not self.ch:
            return f"median({expr})"
        a = f"arraySort(groupArray({expr}))"
        return (f"if(empty({a}), NULL, (arrayElement({a}, intDiv(length({a}) + 1, 2)) "
                f"+ arrayElement({a}, intDiv(length({a}), 2) + 1)) / 2.0)")

    def arg_max(self, value: str, key: str) -> str:
        """The value at the row with the largest key."""
        return f"argMax({value}, {key})" if self.ch else f"arg_max({value}, {key})"

    def arg_min(self, value: str, key: str) -> str:
        """The value at the row with the smallest key."""
        return f"argMin({value}, {key})" if self.ch else f"arg_min({value}, {key})"

    def any_true(self, cond: str) -> str:
        """Aggregate: whether the condition holds on any row."""
        return self.boolean(f"max({cond})") if self.ch else f"bool_or({cond})"

    def boolean(self, expr: str) -> str:
        """A condition as a (nullable) boolean value: ClickHouse comparisons give 0/1 integers."""
        return f"CAST({expr} AS Nullable(Bool))" if self.ch else expr

    def plus_days(self, ts: str, days: str) -> str:
        """A timestamp plus a fractional number of days (rounded to the microsecond)."""
        micros = f"CAST(round({days} * 86400e6) AS BIGINT)"
        if self.ch:
            return f"(toDateTime64({ts}, 6, 'UTC') + toIntervalMicrosecond({micros}))"
        return f"{ts} + to_microseconds({micros})"

    def top_list(self, value: str, score: str, k: str) -> tuple[str, str]:
        """Aggregates: the first k values by score (descending, ties by value), and the first one."""
        if self.ch:
            ordered = f"arrayMap(x -> x.2, arraySort(x -> (-x.1, x.2), groupArray(({score}, {value}))))"
            return f"arraySlice({ordered}, 1, {k})", f"{ordered}[1]"
        ordered = f"list({value} ORDER BY {score} DESC, {value})"
        return f"list_slice({ordered}, 1, {k})", f"{ordered}[1]"

    @property
    def text(self) -> str:
        """The nullable text type for CAST."""
        return "Nullable(String)" if self.ch else "VARCHAR"

    def run(self, sql: str) -> Any:
        """Run the query with the collected parameters; returns an Arrow table."""
        return run_sql(self.store, sql, self.params)


def rule_case(q: Query, rules: list[Rule], default: str | None, fields: set[str], where: str) -> str:
    """CASE expression: the first rule whose conditions all hold gives its name, else the default."""
    parts = []
    for i, rule in enumerate(rules):
        conds = []
        for fld, ops in rule.when.items():
            if fld not in fields:
                raise InvalidInput(f"unknown field {fld!r}; use one of {sorted(fields)}", where=f"{where}[{i}].when")
            conds.extend(f"{quote_ident(fld)} {OPS[op]} {q.bind(v)}" for op, v in ops.items())
        parts.append(f"WHEN {' AND '.join(conds) or 'TRUE'} THEN {q.bind(rule.name)}")
    default_sql = "NULL" if default is None else q.bind(default)
    if not parts:
        return f"CAST({default_sql} AS {q.text})"
    return f"CAST(CASE {' '.join(parts)} ELSE {default_sql} END AS {q.text})"
