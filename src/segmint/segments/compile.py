"""Segment tree -> ONE SQL query (sqlglot expressions) returning member user_ids as of a time.

Every condition is evaluated in a *scope*: the top scope has one row per user (the `profiles` table);
inside `with ... as NAME` the scope has one row per bound anchor event (per outer anchor row when nested).
Scope rows carry key columns (user_id, _sk1.._skN: the message ids of the bound anchors, outermost first).

    WITH ev AS (events pruned by name and time: event IN (...) AND ts <= as_of),
         <keyed CTEs: one row per scope key> ...,
         agg AS (top scope: one scan of ev with a conditional aggregate per event condition)
    SELECT p.user_id FROM profiles AS p LEFT JOIN agg AS agg ... LEFT JOIN <keyed CTEs of the top scope>
    WHERE <boolean over the aggregates, traits and keyed CTE columns>

Keyed CTEs: per-anchor aggregates (per-user groups pre-aggregated by the event-side keys of the
anchor-dependent conjuncts, hash-joined to the anchor rows; see anchored_count), anchors (`with`: events
picked per outer scope row), sequences, streaks, interval ratios, `each` windows, and aggregates used
inside event filters (joined into the scan that filters). docs/segment-engine.md lists how every node compiles.

Values are bound parameters (DuckDB `$pN`, ClickHouse `{pN:Type}`); names are quoted identifiers or
bound JSON paths. Every condition compiles to a non-NULL boolean (COALESCE(..., FALSE)) so NOT agrees
with the reference evaluator's two-valued logic. The population is the `profiles` table (the stores
create a profile for every user who has events).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, available_timezones

from sqlglot import exp

from segmint.errors import InvalidInput, NotFound, SegmintError
from segmint.segments import model as m
from segmint.segments.reference import DATETIME_TEXT
from segmint.store.schema import is_safe_name, property_column

NUMERIC_TEXT = r"^[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?$"
CH_TYPES = {"str": "String", "num": "Float64", "bool": "Bool", "ts": "DateTime64(6, 'UTC')", "int": "Int64"}


class UnsupportedInSQL(SegmintError):
    """A node the SQL compiler does not handle yet (the reference evaluator does)."""

    code = "segment_unsupported"


@functools.lru_cache(maxsize=16)
def _ch_type_cached(kind: str) -> exp.DataType:
    return exp.DataType.build(CH_TYPES[kind], dialect="clickhouse")


def _ch_type(kind: str) -> exp.DataType:
    """The ClickHouse type of a parameter kind (built once: parsing a type is slow)."""
    return _ch_type_cached(kind).copy()


def _lit_bool(v: bool) -> exp.Expression:
    return exp.true() if v else exp.false()


def _and(parts: list[exp.Expression]) -> exp.Expression:
    parts = [p for p in parts if p is not None and p != exp.true()]  # a literal TRUE in a ClickHouse ON fails
    if not parts:
        return exp.true()
    return _conj(*parts, copy=False) if len(parts) > 1 else parts[0]


def _paren(e: exp.Expression, copy: bool = False) -> exp.Expression:
    """Parenthesize without copying (sqlglot's helpers deep-copy their arguments by default)."""
    return exp.paren(e, copy=copy)


def _conj(*es: exp.Expression, copy: bool = False) -> exp.Expression:
    """AND without copying."""
    return exp.and_(*es, copy=copy)


def _disj(*es: exp.Expression, copy: bool = False) -> exp.Expression:
    """OR without copying."""
    return exp.or_(*es, copy=copy)


def _neg(e: exp.Expression, copy: bool = False) -> exp.Expression:
    """NOT without copying."""
    return exp.not_(e, copy=copy)


def _safe(e: exp.Expression) -> exp.Expression:
    """Two-valued: NULL becomes FALSE."""
    return exp.Coalesce(this=_paren(e), expressions=[exp.false()])


def _kind_of(v: Any) -> str:
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, int | float):
        return "num"
    if isinstance(v, datetime):
        return "ts"
    return "str"


@dataclass
class Scope:
    """Where a condition is evaluated: the top (one row per user) or inside nested `with` anchors."""

    anchors: tuple[str, ...] = ()  # anchor CTE names, outermost first (each is also its alias)
    names: dict[str, str] = field(default_factory=dict)  # anchor name -> CTE alias

    @property
    def depth(self) -> int:
        """How many anchors are bound."""
        return len(self.anchors)

    @property
    def inner(self) -> str:
        """The innermost anchor's alias."""
        return self.anchors[-1]

    def __contains__(self, name: object) -> bool:
        return name in self.names

    def __getitem__(self, name: str) -> str:
        return self.names[name]

    def key_names(self) -> list[str]:
        """Key columns of the scope's rows: user_id, then the bound anchors' message ids."""
        return ["user_id", *(f"_sk{i}" for i in range(1, self.depth + 1))]

    def keys(self, alias: str) -> list[exp.Expression]:
        """The key columns on a row alias."""
        return [exp.column(k, table=alias) for k in self.key_names()]

    def key_selects(self, alias: str) -> list[exp.Expression]:
        """The key columns on a row alias, aliased to their key names."""
        return [exp.alias_(exp.column(k, table=alias), k) for k in self.key_names()]


@dataclass
class Compiler:
    """Compiles one tree for one dialect; collects bound parameters and CTEs as it goes."""

    dialect: str  # duckdb | clickhouse
    as_of: datetime
    typed: dict[str, str] = field(default_factory=dict)
    workspace_tz: str = "Asia/Seoul"
    resolve: Callable[[str], Any] | None = None
    params: dict[str, Any] = field(default_factory=dict)
    ctes: list[tuple[str, exp.Expression]] = field(default_factory=list)
    keyed: dict[str, list[str]] = field(default_factory=dict)  # CTE -> key columns (joined where used)
    direct: dict[str, exp.Expression] = field(default_factory=dict)  # CTE -> ON (at most one row per scope row)
    collect: list[set[str]] = field(default_factory=list)  # event names met by the predicates being built
    main_events: set[str] | None = field(default_factory=set)  # events the `agg` columns read
    main_aggs: list[exp.Expression] = field(default_factory=list)  # columns of `agg` (top scope)
    scans: list[Scope] = field(default_factory=list)  # scopes of the event predicates being compiled
    events: set[str] = field(default_factory=set)
    stack: tuple[str, ...] = ()  # saved segments being inlined
    anchor_cols: dict[str, dict[tuple[str, ...], int]] = field(default_factory=dict)  # anchor -> paths read
    anchor_used: dict[str, dict[tuple[str, ...], set[str]]] = field(default_factory=dict)  # -> kinds read
    _names: dict[tuple[str, str, Any], str] = field(default_factory=dict)
    _n: int = 0
    _calendar: dict[str, exp.Expression] = field(default_factory=dict)  # per-user calendar start, by unit

    # ---- parameters and dialect bits

    @property
    def ch(self) -> bool:
        """Whether the target is ClickHouse."""
        return self.dialect == "clickhouse"

    def param(self, value: Any, kind: str | None = None) -> exp.Expression:
        """A bound parameter for a value (never pasted into the SQL text)."""
        kind = kind or _kind_of(value)
        value = float(value) if kind == "num" else value
        key = (kind, type(value).__name__, value)
        name = self._names.get(key)
        if name is None:
            name = self._names[key] = f"p{len(self.params) + 1}"
            self.params[name] = value
        if self.ch:
            return exp.Placeholder(this=name, kind=_ch_type(kind))
        return exp.Placeholder(this=name)

    def fn(self, duck: str, ch: str, *args: exp.Expression) -> exp.Expression:
        """A function call named per dialect."""
        return exp.Anonymous(this=ch if self.ch else duck, expressions=list(args))

    def json_type(self, obj: exp.Expression, path: list[str]) -> exp.Expression:
        """The JSON type name at a path: normalized to 'str', 'num', 'bool', or other/NULL."""
        if self.ch:
            t = exp.Anonymous(this="JSONType", expressions=[obj, *(self.param(k, "str") for k in path)])
            t = exp.cast(t, "String")
            return exp.Case(
                ifs=[
                    exp.If(this=t.copy().eq(exp.Literal.string("String")), true=exp.Literal.string("str")),
                    exp.If(
                        this=exp.In(
                            this=t.copy(),
                            expressions=[exp.Literal.string(x) for x in ("Int64", "UInt64", "Double")],
                        ),
                        true=exp.Literal.string("num"),
                    ),
                    exp.If(this=t.copy().eq(exp.Literal.string("Bool")), true=exp.Literal.string("bool")),
                ],
                default=exp.Literal.string("other"),
            )
        t = exp.Anonymous(this="json_type", expressions=[obj, self.json_path(path)])
        return exp.Case(
            ifs=[
                exp.If(this=t.copy().eq(exp.Literal.string("VARCHAR")), true=exp.Literal.string("str")),
                exp.If(
                    this=exp.In(
                        this=t.copy(),
                        expressions=[exp.Literal.string(x) for x in ("BIGINT", "UBIGINT", "DOUBLE", "HUGEINT")],
                    ),
                    true=exp.Literal.string("num"),
                ),
                exp.If(this=t.copy().eq(exp.Literal.string("BOOLEAN")), true=exp.Literal.string("bool")),
            ],
            default=exp.Literal.string("other"),
        )

    def json_path(self, path: list[str]) -> exp.Expression:
        """A DuckDB JSON path for nested keys, as a bound parameter."""
        for k in path:
            if not is_safe_name(k):
                raise InvalidInput(f"property name {k!r} contains a quote or control character", where=".".join(path))
        return self.param("$" + "".join(f'."{k}"' for k in path), "str")

    def json_text(self, obj: exp.Expression, path: list[str]) -> exp.Expression:
        """The value at a path as text (strings unquoted)."""
        if self.ch:
            return exp.Anonymous(this="JSONExtractString", expressions=[obj, *(self.param(k, "str") for k in path)])
        return exp.Anonymous(this="json_extract_string", expressions=[obj, self.json_path(path)])

    def json_raw(self, obj: exp.Expression, path: list[str]) -> exp.Expression:
        """The value at a path as JSON text (for distinct counting)."""
        if self.ch:
            return exp.Anonymous(this="JSONExtractRaw", expressions=[obj, *(self.param(k, "str") for k in path)])
        return exp.cast(exp.Anonymous(this="json_extract", expressions=[obj, self.json_path(path)]), "VARCHAR")

    def to_double(self, e: exp.Expression) -> exp.Expression:
        """Text -> DOUBLE or NULL."""
        if self.ch:
            return exp.Anonymous(this="toFloat64OrNull", expressions=[e])
        return exp.TryCast(this=e, to=exp.DataType.build("DOUBLE"))

    def regex_full(self, e: exp.Expression, pattern: str) -> exp.Expression:
        """Whole-string regex match."""
        if self.ch:
            return exp.Anonymous(this="match", expressions=[e, exp.Literal.string(pattern)])
        return exp.Anonymous(this="regexp_full_match", expressions=[e, exp.Literal.string(pattern)])

    # ---- typed values of a JSON path (the reference's coercion rules)

    def value_as(self, obj: exp.Expression, path: list[str], kind: str, col: exp.Expression | None) -> exp.Expression:
        """The value at a path coerced to a kind (str/num/bool), NULL when it cannot be."""
        if col is not None:
            return col
        typ = self.json_type(obj, path)
        text = self.json_text(obj, path)
        if kind == "str":
            return exp.If(this=typ.eq(exp.Literal.string("str")), true=text, false=exp.null())
        if kind == "num":
            return exp.Case(
                ifs=[
                    exp.If(this=typ.eq(exp.Literal.string("num")), true=self.to_double(text)),
                    exp.If(
                        this=_conj(
                            typ.copy().eq(exp.Literal.string("str")),
                            self.regex_full(text.copy(), NUMERIC_TEXT),
                        ),
                        true=self.to_double(text.copy()),
                    ),
                ],
                default=exp.null(),
            )
        if kind == "bool":
            return exp.If(
                this=typ.eq(exp.Literal.string("bool")),
                true=text.copy().eq(exp.Literal.string("true")),
                false=exp.null(),
            )
        raise UnsupportedInSQL(f"comparing a property with a {kind} value", where=".".join(path))

    def prop(self, alias: str, path: list[str], kind: str) -> exp.Expression:
        """An event property of a row alias, typed column when declared with a matching type."""
        col = None
        if len(path) == 1 and path[0] in self.typed:
            t = self.typed[path[0]]
            if (
                (kind == "num" and t == "number")
                or (kind == "str" and t == "string")
                or (kind == "bool" and t == "boolean")
            ):
                col = exp.column(property_column(path[0]), table=alias, quoted=True)
            elif t == "integer" and kind == "num":  # the JSON only when the integer column has no value
                icol = exp.column(property_column(path[0]), table=alias, quoted=True)
                return exp.If(
                    this=exp.Not(this=exp.Is(this=icol, expression=exp.null())),
                    true=exp.cast(icol.copy(), "DOUBLE"),
                    false=self.value_as(exp.column("properties", table=alias), path, kind, None),
                )
            elif t == "string":  # string-typed properties hold JSON strings (or nothing): no JSON parse needed
                text = exp.column(property_column(path[0]), table=alias, quoted=True)
                if kind == "bool":
                    return exp.null()
                if kind == "num":
                    return exp.If(
                        this=self.regex_full(text, NUMERIC_TEXT), true=self.to_double(text.copy()), false=exp.null()
                    )
        return self.value_as(exp.column("properties", table=alias), path, kind, col)

    def prop_kind(self, alias: str, path: list[str]) -> exp.Expression:
        """The JSON kind ('str', 'num', 'bool', 'other') of an event property of a row alias."""
        if len(path) == 1 and self.typed.get(path[0]) == "string":
            col = exp.column(property_column(path[0]), table=alias, quoted=True)
            return exp.If(
                this=exp.Is(this=col, expression=exp.null()),
                true=exp.Literal.string("other"),
                false=exp.Literal.string("str"),
            )
        return self.json_type(exp.column("properties", table=alias), path)

    # ---- comparisons

    def compare(self, actual: Any, op: str, v: Any, v2: Any, b: Scope) -> exp.Expression:
        """actual(kind) op operand; `actual` is a function kind -> typed SQL value."""
        if op == "exists":
            return actual(None)
        if op == "not_exists":
            return _neg(actual(None))
        if isinstance(v, m.ValueList):
            kind = _kind_of(v.values[0])
            a = actual(kind)
            inn = exp.In(this=a, expressions=[self.param(x, kind) for x in v.values])
            return _conj(
                exp.Not(this=exp.Is(this=a.copy(), expression=exp.null())),
                inn if op == "in" else _neg(inn),
            )
        if op == "between" and any(isinstance(x, m.AnchorRef) and x.factor is None for x in (v, v2)):
            return self.between_anchor(actual, v, v2, b)
        if isinstance(v, m.AnchorRef) and v.factor is None:
            return self.compare_anchor(actual, op, v, b)
        if op == "between" and (self.operand_kinds(v) != self.operand_kinds(v2) or self.operand_kinds(v) == ("bool",)):
            return exp.false()  # before binding the bounds (an unused parameter is an error in DuckDB)
        kind, right = self.operand(v, b)
        if op in ("contains", "starts_with"):
            if kind != "str":
                return exp.false()
            a = actual("str")
            if op == "starts_with":
                return exp.StartsWith(this=a, expression=right)
            return exp.GT(this=exp.StrPosition(this=a, substr=right), expression=exp.Literal.number(0))
        a = actual(kind)
        if op == "between":
            kind2, right2 = self.operand(v2, b)
            if kind2 != kind or kind == "bool":
                return exp.false()
            return _conj(exp.GTE(this=a, expression=right), exp.LTE(this=a.copy(), expression=right2))
        if kind == "bool" and op not in ("eq", "ne"):
            return exp.false()
        cls = {"eq": exp.EQ, "ne": exp.NEQ, "gt": exp.GT, "gte": exp.GTE, "lt": exp.LT, "lte": exp.LTE}[op]
        return cls(this=a, expression=right)

    def anchor_value(self, alias: str, path: list[str], kind: str) -> exp.Expression:
        """An anchor property's JSON kind ('k') or value as str/num/bool: a column computed once per anchor."""
        reg = self.anchor_cols.get(alias)
        if reg is None:  # not an anchor CTE being built (cannot happen from the tree; kept exact anyway)
            obj = exp.column("properties", table=alias)
            return self.json_type(obj, path) if kind == "k" else self.value_as(obj, path, kind, None)
        i = reg.setdefault(tuple(path), len(reg))
        self.anchor_used.setdefault(alias, {}).setdefault(tuple(path), set()).add(kind[0])
        return exp.column(f"_a{i}{kind[0]}", table=alias)

    def value_kinds(self, path: list[str]) -> tuple[str, ...]:
        """The JSON kinds a property can have: a string-typed column holds JSON strings only (or nothing)."""
        if len(path) == 1 and self.typed.get(path[0]) == "string":
            return ("str",)
        return ("str", "num", "bool")

    def compare_anchor(self, actual: Any, op: str, v: m.AnchorRef, b: Scope) -> exp.Expression:
        """Compare with an anchor event's property: the anchor value's JSON type decides the comparison."""
        alias = self.bound(v.anchor, b)
        kinds = self.value_kinds(v.path)
        if kinds == ("str",) and op not in ("between",):
            # one possible kind: the plain comparison (NULL when the anchor has no value), which engines
            # can use as a hash-join key instead of a CASE evaluated per anchor x event pair
            right = self.anchor_value(alias, v.path, "str")
            a = actual("str")
            if op == "starts_with":
                return exp.StartsWith(this=a, expression=right)
            if op == "contains":
                return exp.GT(this=exp.StrPosition(this=a, substr=right), expression=exp.Literal.number(0))
            cls = {"eq": exp.EQ, "ne": exp.NEQ, "gt": exp.GT, "gte": exp.GTE, "lt": exp.LT, "lte": exp.LTE}[op]
            return cls(this=a, expression=right)
        typ = self.anchor_value(alias, v.path, "k")
        parts = []
        for kind in kinds:
            right = self.anchor_value(alias, v.path, kind)
            if kind == "bool" and op not in ("eq", "ne"):
                continue
            if op in ("contains", "starts_with"):
                if kind != "str":
                    continue
                a = actual("str")
                test = (
                    exp.StartsWith(this=a, expression=right)
                    if op == "starts_with"
                    else exp.GT(this=exp.StrPosition(this=a, substr=right), expression=exp.Literal.number(0))
                )
            else:
                cls = {
                    "eq": exp.EQ,
                    "ne": exp.NEQ,
                    "gt": exp.GT,
                    "gte": exp.GTE,
                    "lt": exp.LT,
                    "lte": exp.LTE,
                }[op]
                test = cls(this=actual(kind), expression=right)
            parts.append(exp.If(this=typ.copy().eq(exp.Literal.string(kind)), true=test))
        # a CASE (not OR of ANDs): engines evaluate only the branch of the anchor's kind, so the event
        # side's JSON is not parsed per anchor x event pair when the kind is served by a typed column
        return exp.Case(ifs=parts, default=exp.false()) if parts else exp.false()

    def bound_options(self, v: Any, b: Scope) -> list[tuple[str, exp.Expression | None, exp.Expression]]:
        """(kind, test that the operand has that kind or None when it always has, value) per possible kind."""
        if isinstance(v, m.AnchorRef) and v.factor is None:
            alias = self.bound(v.anchor, b)
            kinds = self.value_kinds(v.path)
            if len(kinds) == 1:
                return [(kinds[0], None, self.anchor_value(alias, v.path, kinds[0]))]
            typ = self.anchor_value(alias, v.path, "k")
            return [(k, typ.copy().eq(exp.Literal.string(k)), self.anchor_value(alias, v.path, k)) for k in kinds]
        kind, right = self.operand(v, b)
        return [(kind, None, right)]

    def operand_kinds(self, v: Any) -> tuple[str, ...]:
        """The kinds a right-hand side can have (without compiling it: no parameters are bound)."""
        if isinstance(v, m.AnchorRef) and v.factor is None:
            return self.value_kinds(v.path)
        if isinstance(v, m.Value):
            return (_kind_of(v.value),)
        if isinstance(v, m.DateTimeValue):
            return ("ts",)
        return ("num",)  # scaled anchor values, traits and aggregates compare as numbers

    def between_anchor(self, actual: Any, v: Any, v2: Any, b: Scope) -> exp.Expression:
        """`between` with an anchor property as a bound: both bounds must have one (ordered) kind."""
        common = [k for k in self.operand_kinds(v) if k in self.operand_kinds(v2) and k != "bool"]
        if not common:  # decided before compiling the bounds: an unused parameter is an error in DuckDB
            return exp.false()
        parts = []
        for k1, c1, low in self.bound_options(v, b):
            for k2, c2, high in self.bound_options(v2, b):
                if k1 != k2 or k1 not in common:
                    continue
                a = actual(k1)
                test = _conj(exp.GTE(this=a, expression=low), exp.LTE(this=a.copy(), expression=high))
                parts.append(_and([x for x in (c1, c2) if x is not None] + [_paren(test)]))
        if not parts:
            return exp.false()
        return _paren(_disj(*[_paren(_safe(p)) for p in parts]))

    def date_us(self, text: exp.Expression) -> exp.Expression:
        """Date text (reference.DATETIME_TEXT) as microseconds since the epoch (UTC), NULL for other text."""
        pattern = DATETIME_TEXT

        def group(i: int) -> exp.Expression:
            if self.ch:
                return exp.Anonymous(
                    this="arrayElement",
                    expressions=[
                        exp.Anonymous(this="extractGroups", expressions=[text.copy(), exp.Literal.string(pattern)]),
                        exp.Literal.number(i),
                    ],
                )
            return exp.Anonymous(
                this="regexp_extract", expressions=[text.copy(), exp.Literal.string(pattern), exp.Literal.number(i)]
            )

        def num(e: exp.Expression) -> exp.Expression:
            if self.ch:
                return exp.Anonymous(this="toInt64OrZero", expressions=[e])
            return exp.Coalesce(
                this=exp.TryCast(this=e, to=exp.DataType.build("BIGINT")), expressions=[exp.Literal.number(0)]
            )

        if self.ch:
            day = exp.Anonymous(this="toDate32OrNull", expressions=[group(1)])
            day_text = exp.Anonymous(this="toString", expressions=[day])
            day_us = exp.Anonymous(
                this="toUnixTimestamp64Micro",
                expressions=[
                    exp.Anonymous(
                        this="toDateTime64",
                        expressions=[day.copy(), exp.Literal.number(6), exp.Literal.string("UTC")],
                    )
                ],
            )
            frac = exp.Anonymous(
                this="rightPad", expressions=[group(5), exp.Literal.number(6), exp.Literal.string("0")]
            )
        else:
            day = exp.TryCast(this=group(1), to=exp.DataType.build("DATE"))
            day_text = exp.cast(day, "VARCHAR")
            day_us = exp.Anonymous(this="epoch_us", expressions=[exp.cast(day.copy(), "TIMESTAMP")])
            frac = exp.Anonymous(this="rpad", expressions=[group(5), exp.Literal.number(6), exp.Literal.string("0")])

        def lit(n: int) -> exp.Expression:
            return exp.Literal.number(n)

        secs = exp.Add(
            this=exp.Add(
                this=exp.Mul(this=num(group(2)), expression=lit(3600)),
                expression=exp.Mul(this=num(group(3)), expression=lit(60)),
            ),
            expression=num(group(4)),
        )
        off = exp.Add(
            this=exp.Mul(this=num(group(7)), expression=lit(3600)),
            expression=exp.Mul(this=num(group(8)), expression=lit(60)),
        )
        signed_off = exp.Case(
            ifs=[exp.If(this=group(6).eq(exp.Literal.string("-")), true=exp.Neg(this=_paren(off.copy())))],
            default=off,
        )
        total = exp.Add(
            this=exp.Add(
                this=day_us,
                expression=exp.Mul(
                    this=_paren(exp.Sub(this=secs, expression=_paren(signed_off))), expression=lit(10**6)
                ),
            ),
            expression=num(frac),
        )
        ok = _conj(self.regex_full(text.copy(), pattern), day_text.eq(group(1)))
        return exp.Case(ifs=[exp.If(this=ok, true=total)], default=exp.null())

    def bound(self, name: str, b: Scope) -> str:
        """Row alias of an anchor bound by an enclosing `with`."""
        if name not in b:
            raise SegmintError(f"{name!r} is not bound by an enclosing 'with ... as {name}'", where=name)
        return b[name]

    def operand(self, v: Any, b: Scope) -> tuple[str, exp.Expression]:
        """(kind, SQL) of a right-hand side."""
        if isinstance(v, m.Value):
            return _kind_of(v.value), self.param(v.value)
        if isinstance(v, m.DateTimeValue):  # times compare as microseconds since the epoch (see date_us)
            return "ts", self.param(self.us_value(v.value), "int")
        if isinstance(v, m.AnchorRef):
            alias = self.bound(v.anchor, b)
            val = self.anchor_value(alias, v.path, "num")
            return "num", exp.Mul(this=val, expression=self.param(v.factor, "num"))
        if isinstance(v, m.TraitRef):
            obj = exp.column("traits", table="p")
            if v.factor is None:  # the raw trait: only a JSON number compares with a number
                text = self.json_text(obj, [v.name])
                is_num = self.json_type(obj, [v.name]).eq(exp.Literal.string("num"))
                return "num", exp.If(this=is_num, true=self.to_double(text), false=exp.null())
            val = self.value_as(obj, [v.name], "num", None)
            return "num", exp.Mul(this=val, expression=self.param(v.factor, "num"))
        if isinstance(v, m.AggregateExpr):
            val = self.aggregate(v, b)
            return "num", val if v.factor is None else exp.Mul(this=val, expression=self.param(v.factor, "num"))
        raise UnsupportedInSQL(f"operand {type(v).__name__}")

    # ---- windows and event predicates

    def window(self, w: Any, ts: exp.Expression, b: Scope) -> exp.Expression:
        """Whether ts is inside the window (ts <= as_of is applied by the event source)."""
        if isinstance(w, m.EverWindow):
            return exp.true()
        if isinstance(w, m.LastWindow):
            return exp.GT(this=ts, expression=self.param(self.as_of - w.duration.to_timedelta(), "ts"))
        if isinstance(w, m.EachWindow):  # outside `performed`: the whole span of the periods
            return exp.GT(this=ts, expression=self.param(self.as_of - _each_span(w), "ts"))
        if isinstance(w, m.AgoWindow):
            return exp.LTE(this=ts, expression=self.param(self.as_of - w.duration.to_timedelta(), "ts"))
        if isinstance(w, m.CalendarWindow):
            return exp.GTE(this=ts, expression=self.calendar_start(w))
        if isinstance(w, m.BetweenWindow):
            parts = []
            if w.start is not None:
                parts.append(exp.GTE(this=ts, expression=self.param(w.start, "ts")))
            if w.end is not None:
                parts.append(exp.LT(this=ts.copy(), expression=self.param(w.end, "ts")))
            return _and(parts)
        if isinstance(w, m.AfterAnchorWindow | m.BeforeAnchorWindow):
            at = exp.column("ts", table=self.bound(w.anchor, b))
            after = isinstance(w, m.AfterAnchorWindow)
            parts = [exp.GT(this=ts, expression=at) if after else exp.LT(this=ts, expression=at)]
            if w.within is not None:
                span = exp.Interval(
                    this=exp.Literal.number(int(w.within.to_timedelta().total_seconds())),
                    unit=exp.Var(this="SECOND"),
                )
                parts.append(
                    exp.LTE(this=ts.copy(), expression=exp.Add(this=at.copy(), expression=span))
                    if after
                    else exp.GTE(this=ts.copy(), expression=exp.Sub(this=at.copy(), expression=span))
                )
            return _and(parts)
        raise UnsupportedInSQL(f"{getattr(w, 'kind', w)} windows are not compiled to SQL yet")

    def calendar_start(self, w: m.CalendarWindow) -> exp.Expression:
        """Start of the current day/week/month as UTC: a parameter, or per user zone a CASE on p.timezone.

        The user's zone is resolved at compile time for every zone the tz database knows (zones that
        start the period at the same instant share one branch); unknown or empty zones use the workspace's.
        """
        ws = _calendar_start(self.as_of, w.unit, self.workspace_tz)
        if w.zone == "workspace":
            return self.param(ws, "ts")
        cached = self._calendar.get(w.unit)
        if cached is not None:
            return cached.copy()
        ifs = []
        for start, zones in _zone_groups(self.as_of, w.unit, self.workspace_tz):
            if start == ws:
                continue
            # zone names are tz-database constants (not user input): literals keep the query small
            zone_list = [exp.Literal.string(z) for z in zones]
            ifs.append(
                exp.If(
                    this=exp.In(this=exp.column("timezone", table="p"), expressions=zone_list),
                    true=self.param(start, "ts"),
                )
            )
        case = exp.Case(ifs=ifs, default=self.param(ws, "ts")) if ifs else self.param(ws, "ts")
        self._calendar[w.unit] = case
        return case.copy()

    def matches(self, alias: str, event: str, where: list[m.PropertyFilter], b: Scope) -> exp.Expression:
        """Event name equal and every filter true, on a row alias."""
        self.events.add(event)
        for names in self.collect:
            names.add(event)
        parts: list[exp.Expression] = [exp.column("event", table=alias).eq(self.param(event, "str"))]
        for f in where:
            parts.append(self.filter(alias, f, b))
        return _and(parts)

    def filter(self, alias: str, f: m.PropertyFilter, b: Scope) -> exp.Expression:
        """One property filter (aggregates on the right are joined into the scan as keyed CTEs)."""

        def actual(kind: str | None) -> exp.Expression:
            if kind is None:  # existence
                return self._exists(alias, f.path)
            if kind == "ts":
                return self.date_us(self.prop(alias, f.path, "str"))
            return self.prop(alias, f.path, kind)

        return _safe(self.compare(actual, f.op, f.value, f.value2, b))

    def _exists(self, alias: str, path: list[str]) -> exp.Expression:
        return self._exists_obj(exp.column("properties", table=alias), path)

    def _exists_obj(self, obj: exp.Expression, path: list[str]) -> exp.Expression:
        """A non-null value is at the path."""
        if self.ch:
            t = exp.cast(
                exp.Anonymous(this="JSONType", expressions=[obj, *(self.param(k, "str") for k in path)]),
                "String",
            )
            return exp.NEQ(this=t, expression=exp.Literal.string("Null"))
        t = exp.Anonymous(this="json_type", expressions=[obj, self.json_path(path)])
        return _safe(exp.NEQ(this=t, expression=exp.Literal.string("NULL")))

    # ---- scopes, scans and keyed CTEs

    def name(self, prefix: str) -> str:
        """A fresh CTE or row alias."""
        self._n += 1
        return f"{prefix}{self._n}"

    def add_cte(self, name: str, body: exp.Expression, keys: list[str] | None = None) -> None:
        """Add a CTE; keyed CTEs (one row per scope key) are LEFT JOINed wherever their columns are used."""
        self.ctes.append((name, body))
        if keys is not None:
            self.keyed[name] = keys

    def us(self, ts: exp.Expression) -> exp.Expression:
        """Microseconds since the epoch (an integer)."""
        return self.fn("epoch_us", "toUnixTimestamp64Micro", ts)

    def attach(
        self, sel: exp.Select, key_alias: str, exprs: list[exp.Expression], skip: tuple[str, ...] = ()
    ) -> exp.Select:
        """LEFT JOIN `profiles AS p` and the keyed CTEs that exprs use, on the keys of key_alias."""
        used = _tables(*exprs)
        if "p" in used and "p" not in skip:
            sel = sel.join(
                exp.table_("profiles", alias="p"),
                on=exp.column("user_id", table="p").eq(exp.column("user_id", table=key_alias)),
                join_type="left",
                copy=False,
            )
        for name, keys in self.keyed.items():
            if name in used and name not in skip:
                on = _and([exp.column(k, table=name).eq(exp.column(k, table=key_alias)) for k in keys])
                sel = sel.join(exp.table_(name, alias=name), on=on, join_type="left", copy=False)
        for name, on in self.direct.items():  # their ON reads the scope's anchor rows, which are in FROM
            if name in used and name not in skip:
                sel = sel.join(exp.table_(name, alias=name), on=on.copy(), join_type="left", copy=False)
        return sel

    def scope_rows(self, s: Scope, driver: tuple[str, str] | None = None) -> exp.Select:
        """FROM the scope's rows (innermost anchor joined to the outer ones); driver = (CTE, alias) first."""
        sel = exp.Select()
        if driver is not None:
            sel = sel.from_(exp.table_(driver[0], alias=driver[1]), copy=False)
            if s.depth:
                on = _and([exp.column(k, table=s.inner).eq(exp.column(k, table=driver[1])) for k in s.key_names()])
                sel = sel.join(exp.table_(s.inner, alias=s.inner), on=on, join_type="inner", copy=False)
        else:
            sel = sel.from_(exp.table_(s.inner, alias=s.inner), copy=False)
        for i, outer in enumerate(s.anchors[:-1], 1):
            keys = ["user_id", *(f"_sk{j}" for j in range(1, i + 1))]
            on = _and([exp.column(k, table=outer).eq(exp.column(k, table=s.inner)) for k in keys])
            sel = sel.join(exp.table_(outer, alias=outer), on=on, join_type="inner", copy=False)
        return sel

    def key_alias(self, s: Scope, r: str) -> str:
        """The alias whose columns hold the scope keys in a scan with event row r."""
        return s.inner if s.depth else r

    def scan(self, s: Scope, r: str, pred: exp.Expression, *, left: bool) -> exp.Select:
        """The scope's rows joined to the user's events `ev AS r` satisfying pred (no projection yet).

        Top scope: FROM ev AS r ... WHERE pred. Inside anchors: anchor rows [LEFT] JOIN ev AS r ON user_id
        AND pred, so the predicate (name, time, filters) prunes events in the join itself.
        """
        if not s.depth:
            sel = exp.Select().from_(exp.table_("ev", alias=r), copy=False)
            return self.attach(sel, r, [pred]).where(pred, copy=False)
        sel = self.attach(self.scope_rows(s), s.inner, [pred])
        on = _and([exp.column("user_id", table=r).eq(exp.column("user_id", table=s.inner)), pred])
        return sel.join(exp.table_("ev", alias=r), on=on, join_type="left" if left else "inner", copy=False)

    def in_scan(self, s: Scope, build: Callable[[], exp.Expression]) -> exp.Expression:
        """Compile an event predicate: aggregates met inside it become keyed CTEs joined into the scan."""
        self.scans.append(s)
        try:
            return build()
        finally:
            self.scans.pop()

    def scope_value(
        self,
        s: Scope,
        pred_fn: Callable[[str], exp.Expression],
        agg_fn: Callable[[str, exp.Expression], exp.Expression],
        *,
        count: bool = False,
        exists: bool = False,
        fn: str | None = None,
    ) -> exp.Expression:
        """A per-scope-row aggregate over the user's events: a column of `agg` (top) or of a keyed CTE.

        fn names the aggregate agg_fn computes (sum/avg/min/max/count_distinct): inside anchors it lets the
        value come from per-user pre-aggregated groups (anchored_count) instead of an anchor x event join.
        """
        if not s.depth and not self.scans:
            self.collect.append(set())
            try:
                pred = self.in_scan(s, lambda: pred_fn("ev"))
            finally:
                names = self.collect.pop()
            if self.main_events is not None:  # the `agg` scan reads only these events (None: all of `ev`)
                self.main_events = self.main_events | names if names else None
            name = f"c{len(self.main_aggs)}"
            self.main_aggs.append(exp.alias_(agg_fn("ev", pred), name))
            return exp.column(name, table="agg")
        r = self.name("r")
        pred = self.in_scan(s, lambda: pred_fn(r))
        if (count or fn is not None) and s.depth:
            counted = self.anchored_count(s, r, pred, exists=exists, agg=None if count else (fn, agg_fn))
            if counted is not None:
                return counted
        matched = (
            exp.true()
            if not s.depth
            else exp.Not(this=exp.Is(this=exp.column("message_id", table=r), expression=exp.null()))
        )
        ka = self.key_alias(s, r)
        sel = (
            self.scan(s, r, pred, left=True)
            .select(*s.key_selects(ka), exp.alias_(agg_fn(r, matched), "v"), copy=False)
            .group_by(*s.keys(ka), copy=False)
        )
        name = self.name("g")
        self.add_cte(name, sel, s.key_names())
        return exp.column("v", table=name)

    def anchored_count(
        self,
        s: Scope,
        r: str,
        pred: exp.Expression,
        *,
        exists: bool = False,
        agg: tuple[str, Callable[[str, exp.Expression], exp.Expression]] | None = None,
    ) -> exp.Expression | None:
        """How many of the user's events satisfy pred, per anchor row, without an anchor x event product.

        The predicate's conjuncts on the event alone (name, constant filters and windows) filter the events;
        the event-side parts of the other conjuncts (e.g. the category compared with the anchor's) become
        group keys of a per-user pre-count. Anchor rows then join those groups (a few per user, instead of
        every event) on user_id plus the anchor-dependent conjuncts:
        - when those conjuncts are equalities binding every group key, an anchor row meets at most one
          group: the pre-count is LEFT JOINed straight into the rows that read it (a hash join on user_id
          and the keys, no per-anchor GROUP BY);
        - when only existence is tested (`exists`: did / did not) and one key is compared by an inequality
          (e.g. `after cart`: ts > anchor ts), the groups keep the max (or min) of that key instead of
          grouping by it, and the inequality tests that extreme;
        - otherwise the joined groups' counts are summed per anchor row.
        With `agg` = (fn, agg_fn) the groups hold agg_fn over their events instead of a count: exact when an
        anchor row meets one group; otherwise combined (sum of sums, min of mins, max of maxes), and for
        avg / count_distinct (not combinable) None: the caller joins the events.
        """
        conj = _conjuncts(pred)
        static = [c for c in conj if _tables(c) <= {r}]
        dynamic = [c for c in conj if not _tables(c) <= {r}]
        x = self.name("pc")
        keys: dict[str, tuple[str, exp.Expression]] = {}

        def lift(node: exp.Expression) -> exp.Expression:
            if isinstance(node, exp.If | exp.Ordered | exp.Star) or not isinstance(node, exp.Expression):
                return node
            tables = _tables(node)
            if tables != {r}:
                return node
            sql = node.sql(dialect=self.dialect)
            if sql not in keys:
                keys[sql] = (f"k{len(keys)}", node.copy())
            return exp.column(keys[sql][0], table=x)

        lifted = [c.transform(lift) for c in dynamic]
        if any(isinstance(e, exp.Column) and e.name == "properties" for _, e in keys.values()):
            return None  # a JSON document as a group key would not group anything: join the events instead
        all_keys = {k for k, _ in keys.values()}
        eq_keys: set[str] = set()
        rest: list[exp.Expression] = []
        for c in lifted:
            k = _key_eq(c, x)
            if k is None:
                rest.append(c)
            else:
                eq_keys.add(k)
        direct = all(_tables(c) <= {x, *s.anchors} for c in lifted)
        mode = "sum"
        extreme: tuple[str, bool] | None = None
        if direct and not rest and eq_keys == all_keys:
            mode = "unique"
        elif (
            direct
            and exists
            and len(rest) == 1
            and (extreme := _key_cmp(rest[0], x)) is not None
            and extreme[0] not in eq_keys
            and eq_keys | {extreme[0]} == all_keys
        ):
            mode = "extreme"
        if agg is not None and mode != "unique" and agg[0] not in ("sum", "min", "max"):
            return None
        user = exp.alias_(exp.column("user_id", table=r), "user_id")
        if mode == "extreme":
            assert extreme is not None
            kt, use_max = extreme
            grouped = [(k, e) for k, e in keys.values() if k != kt]
            kt_expr = next(e for k, e in keys.values() if k == kt)
            agg = exp.Max(this=kt_expr.copy()) if use_max else exp.Min(this=kt_expr.copy())
            pre = exp.select(user, *[exp.alias_(e, k) for k, e in grouped], exp.alias_(agg, kt))
        else:
            grouped = list(keys.values())
            value = exp.Count(this=exp.Star()) if agg is None else agg[1](r, exp.true())
            pre = exp.select(user, *[exp.alias_(e, k) for k, e in grouped], exp.alias_(value, "n"))
        pre = pre.from_(exp.table_("ev", alias=r), copy=False)
        if static:
            pre = pre.where(_and(static), copy=False)
        pre = pre.group_by(exp.column("user_id", table=r), *[e.copy() for _, e in grouped], copy=False)
        self.add_cte(x, pre)
        on = _and([exp.column("user_id", table=x).eq(exp.column("user_id", table=s.inner)), *lifted])
        if mode == "unique":
            self.direct[x] = on
            return exp.column("n", table=x)
        if mode == "extreme":
            self.direct[x] = _and(
                [
                    exp.column("user_id", table=x).eq(exp.column("user_id", table=s.inner)),
                    *[c for c in lifted if c is not rest[0]],
                ]
            )
            return exp.Case(ifs=[exp.If(this=rest[0], true=exp.Literal.number(1))], default=exp.Literal.number(0))
        sel = self.attach(self.scope_rows(s), s.inner, lifted)
        sel = sel.join(exp.table_(x, alias=x), on=on, join_type="left", copy=False)
        combine = {"min": exp.Min, "max": exp.Max}.get(agg[0], exp.Sum) if agg is not None else exp.Sum
        sel = sel.select(
            *s.key_selects(s.inner), exp.alias_(combine(this=exp.column("n", table=x)), "v"), copy=False
        ).group_by(*s.keys(s.inner), copy=False)
        name = self.name("g")
        self.add_cte(name, sel, s.key_names())
        return exp.column("v", table=name)

    # ---- aggregates

    def agg_expr(self, fn: str, value: exp.Expression | None, pred: exp.Expression) -> exp.Expression:
        """fn over the rows where pred holds (pred TRUE: every row)."""
        always = pred == exp.true()
        if fn == "count":
            return exp.Count(this=exp.Star()) if always else exp.CountIf(this=pred)
        cond_val = value if always else exp.If(this=pred, true=value, false=exp.null())
        if fn == "count_distinct":
            return exp.Count(this=exp.Distinct(expressions=[cond_val]))
        return {"sum": exp.Sum, "avg": exp.Avg, "min": exp.Min, "max": exp.Max}[fn](this=cond_val)

    def aggregate(self, a: m.AggregateExpr, b: Scope) -> exp.Expression:
        """An AggregateExpr's value (NULL when undefined, like the reference)."""

        def pred_fn(r: str) -> exp.Expression:
            return _and([self.matches(r, a.event, a.where, b), self.window(a.window, exp.column("ts", table=r), b)])

        def agg_fn(r: str, pred: exp.Expression) -> exp.Expression:
            value = None
            if a.fn == "count_distinct":
                value = self.json_raw(exp.column("properties", table=r), a.property or [])
                if self.ch:
                    value = exp.If(
                        this=exp.In(this=value, expressions=[exp.Literal.string(""), exp.Literal.string("null")]),
                        true=exp.null(),
                        false=value.copy(),
                    )
            elif a.fn != "count":
                value = self.prop(r, a.property or [], "num")
            if a.fn == "sum":
                value = exp.Coalesce(this=value, expressions=[exp.Literal.number(0)])
            return self.agg_expr(a.fn, value, pred)

        ref = self.scope_value(b, pred_fn, agg_fn, count=a.fn == "count", fn=a.fn)
        if a.fn in ("count", "count_distinct", "sum"):
            return exp.Coalesce(this=ref, expressions=[exp.Literal.number(0)])
        return ref

    # ---- conditions

    def cond(self, c: Any, b: Scope) -> exp.Expression:
        """A condition as a non-NULL boolean expression over the scope's row."""
        method = getattr(self, "c_" + type(c).__name__, None)
        if method is None:
            raise UnsupportedInSQL(f"{c.kind} conditions are not compiled to SQL yet", where=c.kind)
        return method(c, b)

    def c_And(self, c: m.And, b: Scope) -> exp.Expression:
        return _conj(*(_paren(self.cond(i, b)) for i in c.items))

    def c_Or(self, c: m.Or, b: Scope) -> exp.Expression:
        return _paren(_disj(*(_paren(self.cond(i, b)) for i in c.items)))

    def c_Not(self, c: m.Not, b: Scope) -> exp.Expression:
        return _neg(_paren(self.cond(c.item, b)))

    def c_TraitCondition(self, c: m.TraitCondition, b: Scope) -> exp.Expression:
        if c.source == "profile":
            col = exp.column(c.name, table="p")
            if c.name == "timezone":
                return _safe(
                    self.compare(lambda k: col if k in ("str", None) else exp.null(), c.op, c.value, c.value2, b)
                    if c.op not in ("exists", "not_exists")
                    else (
                        exp.Not(this=exp.Is(this=col, expression=exp.null()))
                        if c.op == "exists"
                        else exp.Is(this=col, expression=exp.null())
                    )
                )
            if c.op in ("within_last", "older_than"):
                d = c.duration.to_timedelta()  # type: ignore[union-attr]
                if c.op == "within_last":
                    return _safe(
                        _conj(
                            exp.GT(this=col, expression=self.param(self.as_of - d, "ts")),
                            exp.LTE(this=col.copy(), expression=self.param(self.as_of, "ts")),
                        )
                    )
                return _safe(exp.LTE(this=col, expression=self.param(self.as_of - d, "ts")))
            if c.op == "exists":
                return exp.Not(this=exp.Is(this=col, expression=exp.null()))
            if c.op == "not_exists":
                return exp.Is(this=col, expression=exp.null())
            return _safe(self.compare(lambda k: self.us(col) if k == "ts" else exp.null(), c.op, c.value, c.value2, b))
        obj = exp.column("traits", table="p")
        if c.op in ("within_last", "older_than"):  # a trait holding date text (reference.DATETIME_TEXT)
            t = self.date_us(self.value_as(obj, [c.name], "str", None))
            d = c.duration.to_timedelta()  # type: ignore[union-attr]
            start = self.param(self.us_value(self.as_of - d), "int")
            if c.op == "within_last":
                return _safe(
                    _conj(
                        exp.GT(this=t, expression=start),
                        exp.LTE(this=t.copy(), expression=self.param(self.us_value(self.as_of), "int")),
                    )
                )
            return _safe(exp.LTE(this=t, expression=start))
        if c.op in ("exists", "not_exists"):
            e = self._exists_obj(obj, [c.name])
            return e if c.op == "exists" else _neg(e)

        def actual(kind: str | None) -> exp.Expression:
            if kind == "ts":
                return self.date_us(self.value_as(obj, [c.name], "str", None))
            return self.value_as(obj, [c.name], kind or "str", None)

        return _safe(self.compare(actual, c.op, c.value, c.value2, b))

    def _count_test(self, n: exp.Expression, c: m.CountSpec) -> exp.Expression:
        if c.op == "gte":
            return exp.GTE(this=n, expression=exp.Literal.number(c.n))
        if c.op == "lte":
            return exp.LTE(this=n, expression=exp.Literal.number(c.n))
        if c.op == "eq":
            return exp.EQ(this=n, expression=exp.Literal.number(c.n))
        return exp.Between(this=n, low=exp.Literal.number(c.n), high=exp.Literal.number(c.n2))

    def _old_enough(self, c: m.Performed, test: exp.Expression) -> exp.Expression:
        """new_profiles=exclude: the profile must start at or before the window's start."""
        if c.new_profiles != "exclude" or not isinstance(c.window, m.LastWindow | m.EachWindow):
            return test
        span = c.window.duration.to_timedelta() if isinstance(c.window, m.LastWindow) else _each_span(c.window)
        start = self.param(self.as_of - span, "ts")
        return _conj(_safe(exp.LTE(this=exp.column("first_seen", table="p"), expression=start)), _paren(test))

    def c_Performed(self, c: m.Performed, b: Scope) -> exp.Expression:
        if isinstance(c.window, m.EachWindow):
            return self._each(c, b)

        def pred_fn(r: str) -> exp.Expression:
            return _and([self.matches(r, c.event, c.where, b), self.window(c.window, exp.column("ts", table=r), b)])

        n = self.scope_value(
            b, pred_fn, lambda r, pred: self.agg_expr("count", None, pred), count=True, exists=_existence(c.count)
        )
        test = self._count_test(exp.Coalesce(this=n, expressions=[exp.Literal.number(0)]), c.count)
        return _safe(self._old_enough(c, test))

    def _each(self, c: m.Performed, b: Scope) -> exp.Expression:
        """In each of the last K periods: events bucketed by period (0 = latest), counts tested per bucket."""
        w = c.window
        assert isinstance(w, m.EachWindow)
        r = self.name("r")
        pred = self.in_scan(
            b, lambda: _and([self.matches(r, c.event, c.where, b), self.window(w, exp.column("ts", table=r), b)])
        )
        ka = self.key_alias(b, r)
        unit_us = m.UNIT_SECONDS[w.unit] * 1_000_000
        bucket = exp.IntDiv(
            this=_paren(
                exp.Sub(
                    this=self.param(self.us_value(self.as_of), "int"), expression=self.us(exp.column("ts", table=r))
                )
            ),
            expression=self.param(unit_us, "int"),
        )
        per = (
            self.scan(b, r, pred, left=False)
            .select(
                *b.key_selects(ka), exp.alias_(bucket, "bk"), exp.alias_(exp.Count(this=exp.Star()), "n"), copy=False
            )
            .group_by(*b.keys(ka), bucket.copy(), copy=False)
        )
        per_name = self.name("eb")
        self.add_cte(per_name, per)
        name = self.name("each")
        bad = exp.Sum(
            this=exp.If(
                this=self._count_test(exp.column("n"), c.count), true=exp.Literal.number(0), false=exp.Literal.number(1)
            )
        )
        body = (
            exp.select(
                *[exp.column(k) for k in b.key_names()],
                exp.alias_(exp.Count(this=exp.Star()), "ne"),
                exp.alias_(bad, "bad"),
            )
            .from_(exp.table_(per_name), copy=False)
            .group_by(*[exp.column(k) for k in b.key_names()], copy=False)
        )
        self.add_cte(name, body, b.key_names())
        no_bad = exp.EQ(
            this=exp.Coalesce(this=exp.column("bad", table=name), expressions=[exp.Literal.number(0)]),
            expression=exp.Literal.number(0),
        )
        test = no_bad
        if not c.count.holds(0):  # empty periods fail: every period must have events
            test = _conj(
                no_bad,
                exp.EQ(
                    this=exp.Coalesce(this=exp.column("ne", table=name), expressions=[exp.Literal.number(0)]),
                    expression=exp.Literal.number(w.periods),
                ),
            )
        return _safe(self._old_enough(c, test))

    def us_value(self, t: datetime) -> int:
        """Microseconds since the epoch of a naive UTC time."""
        return (t - datetime(1970, 1, 1)) // timedelta(microseconds=1)

    def c_AggregateCondition(self, c: m.AggregateCondition, b: Scope) -> exp.Expression:
        value = self.aggregate(c.agg, b)
        return _safe(self.compare(lambda k: value if k == "num" else exp.null(), c.op, c.value, c.value2, b))

    def _first_last(self, c: m.FirstCondition | m.LastCondition, b: Scope) -> exp.Expression:
        def agg_fn(r: str, pred: exp.Expression) -> exp.Expression:
            ts = exp.column("ts", table=r)
            val = ts if pred == exp.true() else exp.If(this=pred, true=ts, false=exp.null())
            return exp.Min(this=val) if c.kind == "first" else exp.Max(this=val)

        t = self.scope_value(
            b, lambda r: self.matches(r, c.event, c.where, b), agg_fn, fn="min" if c.kind == "first" else "max"
        )
        return _safe(_conj(exp.Not(this=exp.Is(this=t, expression=exp.null())), self.window(c.window, t.copy(), b)))

    c_FirstCondition = _first_last
    c_LastCondition = _first_last

    def _hit(self, name: str) -> exp.Expression:
        return _safe(exp.column("hit", table=name))

    def c_Sequence(self, c: m.Sequence, b: Scope) -> exp.Expression:
        """Steps chained by the earliest next matching event (greedy is exact for 'then')."""
        s0 = c.steps[0]
        r = self.name("r")
        pred = self.in_scan(
            b,
            lambda: _and([self.matches(r, s0.event, s0.where, b), self.window(c.window, exp.column("ts", table=r), b)]),
        )
        ka = self.key_alias(b, r)
        start = self.scan(b, r, pred, left=False).select(
            *b.key_selects(ka),
            exp.alias_(exp.column("message_id", table=r), "sid"),
            exp.alias_(exp.column("ts", table=r), "t0"),
            exp.alias_(exp.column("ts", table=r), "t"),
            copy=False,
        )
        prev = self.name("sq")
        self.add_cte(prev, start)
        within_us = None if c.within is None else c.within.to_timedelta() // timedelta(microseconds=1)
        steps = c.steps[1:]
        for i, step in enumerate(steps):
            q = self.name("q")
            rk = self.name("r")
            last = not c.followed or i == len(steps) - 1

            def step_pred(q: str = q, rk: str = rk, step: m.Step = step) -> exp.Expression:
                parts = [
                    exp.GT(this=exp.column("ts", table=rk), expression=exp.column("t", table=q)),
                    self.matches(rk, step.event, step.where, b),
                ]
                if within_us is not None:
                    parts.insert(
                        1,
                        exp.LTE(
                            this=self.us(exp.column("ts", table=rk)),
                            expression=exp.Add(
                                this=self.us(exp.column("t0", table=q)), expression=self.param(within_us, "int")
                            ),
                        ),
                    )
                return _and(parts)

            sp = self.in_scan(b, step_pred)
            sel = self.attach(
                self.scope_rows(b, (prev, q)) if b.depth else exp.Select().from_(exp.table_(prev, alias=q), copy=False),
                q,
                [sp],
            )
            on = _and([exp.column("user_id", table=rk).eq(exp.column("user_id", table=q)), sp])
            group = [*b.keys(q), exp.column("sid", table=q), exp.column("t0", table=q)]
            if c.followed:
                sel = (
                    sel.join(exp.table_("ev", alias=rk), on=on, join_type="inner", copy=False)
                    .select(
                        *b.key_selects(q),
                        exp.alias_(exp.column("sid", table=q), "sid"),
                        exp.alias_(exp.column("t0", table=q), "t0"),
                        exp.alias_(exp.Min(this=exp.column("ts", table=rk)), "t"),
                        copy=False,
                    )
                    .group_by(*group, copy=False)
                )
            else:
                sel = (
                    sel.join(exp.table_("ev", alias=rk), on=on, join_type="left", copy=False)
                    .select(*b.key_selects(q), exp.alias_(exp.column("sid", table=q), "sid"), copy=False)
                    .group_by(*group, copy=False)
                    .having(
                        exp.EQ(
                            this=exp.CountIf(
                                this=exp.Not(
                                    this=exp.Is(this=exp.column("message_id", table=rk), expression=exp.null())
                                )
                            ),
                            expression=exp.Literal.number(0),
                        ),
                        copy=False,
                    )
                )
            prev = self.name("sq")
            self.add_cte(prev, sel)
            if last:
                break
        name = self.name("seq")
        keys = [exp.column(k) for k in b.key_names()]
        self.add_cte(
            name,
            exp.select(*keys, exp.alias_(exp.true(), "hit")).distinct(copy=False).from_(exp.table_(prev), copy=False),
            b.key_names(),
        )
        return self._hit(name)

    def c_Streak(self, c: m.Streak, b: Scope) -> exp.Expression:
        """The last N sends of the channel (by ts, message_id) exist and none has a response."""
        self.events.update((c.sent_event, c.response_event))
        r = "r"
        ref_path = ["message_id_ref"]

        def is_str(path: list[str]) -> exp.Expression:
            return _safe(self.json_type(exp.column("properties", table=r), path).eq(exp.Literal.string("str")))

        ref = exp.If(
            this=is_str(ref_path),
            true=self.json_text(exp.column("properties", table=r), ref_path),
            false=exp.column("message_id", table=r),
        )
        rn = exp.Window(
            this=exp.RowNumber(),
            partition_by=[exp.column("user_id", table=r)],
            order=exp.Order(
                expressions=[
                    exp.Ordered(this=exp.column("ts", table=r), desc=True),
                    exp.Ordered(this=exp.column("message_id", table=r), desc=True),
                ]
            ),
        )
        channel = _safe(self.prop(r, ["channel"], "str").eq(self.param(c.channel, "str")))
        sends = (
            exp.select(
                exp.alias_(exp.column("user_id", table=r), "user_id"), exp.alias_(ref, "ref"), exp.alias_(rn, "rn")
            )
            .from_(exp.table_("ev", alias=r), copy=False)
            .where(_and([exp.column("event", table=r).eq(self.param(c.sent_event, "str")), channel]), copy=False)
        )
        s_name = self.name("ss")
        self.add_cte(s_name, sends)
        resp = (
            exp.select(
                exp.alias_(exp.column("user_id", table=r), "user_id"),
                exp.alias_(self.json_text(exp.column("properties", table=r), ref_path), "ref"),
            )
            .distinct(copy=False)
            .from_(exp.table_("ev", alias=r), copy=False)
            .where(
                _and([exp.column("event", table=r).eq(self.param(c.response_event, "str")), is_str(ref_path)]),
                copy=False,
            )
        )
        r_name = self.name("sr")
        self.add_cte(r_name, resp)
        n = exp.Literal.number(c.n)
        body = (
            exp.select(exp.alias_(exp.column("user_id", table="s"), "user_id"), exp.alias_(exp.true(), "hit"))
            .from_(exp.table_(s_name, alias="s"), copy=False)
            .join(
                exp.table_(r_name, alias="x"),
                on=_conj(
                    exp.column("user_id", table="x").eq(exp.column("user_id", table="s")),
                    exp.column("ref", table="x").eq(exp.column("ref", table="s")),
                ),
                join_type="left",
                copy=False,
            )
            .where(exp.LTE(this=exp.column("rn", table="s"), expression=n), copy=False)
            .group_by(exp.column("user_id", table="s"), copy=False)
            .having(
                _conj(
                    exp.EQ(this=exp.Count(this=exp.Star()), expression=n.copy()),
                    exp.EQ(this=exp.Count(this=exp.column("ref", table="x")), expression=exp.Literal.number(0)),
                ),
                copy=False,
            )
        )
        name = self.name("streak")
        self.add_cte(name, body, ["user_id"])
        return self._hit(name)

    def c_IntervalRatio(self, c: m.IntervalRatio, b: Scope) -> exp.Expression:
        """Gaps between consecutive matching events (sorted by ts); exact median of the gaps."""
        r = self.name("r")
        pred = self.in_scan(b, lambda: self.matches(r, c.event, c.where, b))
        ka = self.key_alias(b, r)
        part = b.keys(ka)
        ts = exp.column("ts", table=r)
        order = exp.Order(expressions=[exp.Ordered(this=ts.copy())])
        prev_ts = exp.Window(
            this=exp.Max(this=ts.copy()),
            partition_by=[k.copy() for k in part],
            order=order.copy(),
            spec=exp.WindowSpec(
                kind="ROWS",
                start=exp.Literal.number(1),
                start_side="PRECEDING",
                end=exp.Literal.number(1),
                end_side="PRECEDING",
            ),
        )
        rn = exp.Window(this=exp.RowNumber(), partition_by=[k.copy() for k in part], order=order.copy())
        x = self.scan(b, r, pred, left=False).select(
            *b.key_selects(ka), exp.alias_(ts.copy(), "t"), exp.alias_(prev_ts, "pt"), exp.alias_(rn, "rn"), copy=False
        )
        x_name = self.name("ix")
        self.add_cte(x_name, x)
        keys = [exp.column(k) for k in b.key_names()]
        gap = exp.Div(
            this=exp.cast(
                _paren(exp.Sub(this=self.us(exp.column("t")), expression=self.us(exp.column("pt")))), "DOUBLE"
            ),
            expression=exp.Literal.number("1000000.0"),
        )
        g = (
            exp.select(
                *keys,
                exp.column("t"),
                exp.alias_(gap, "gap"),
                exp.alias_(
                    exp.Window(
                        this=exp.RowNumber(),
                        partition_by=[k.copy() for k in keys],
                        order=exp.Order(expressions=[exp.Ordered(this=gap.copy())]),
                    ),
                    "gr",
                ),
                exp.alias_(exp.Window(this=exp.Count(this=exp.Star()), partition_by=[k.copy() for k in keys]), "gn"),
            )
            .from_(exp.table_(x_name), copy=False)
            .where(exp.GT(this=exp.column("rn"), expression=exp.Literal.number(1)), copy=False)
        )
        g_name = self.name("ig")
        self.add_cte(g_name, g)
        two_gr = exp.Mul(this=exp.Literal.number(2), expression=exp.column("gr"))
        gn = exp.column("gn")

        def pick(offsets: tuple[int, int]) -> exp.Expression:
            hit = exp.In(
                this=two_gr.copy(),
                expressions=[exp.Add(this=gn.copy(), expression=exp.Literal.number(o)) for o in offsets],
            )
            return exp.Max(this=exp.If(this=hit, true=exp.column("gap"), false=exp.null()))

        med = exp.Div(
            this=_paren(exp.Add(this=pick((0, 1)), expression=pick((1, 2)))), expression=exp.Literal.number("2.0")
        )
        h = (
            exp.select(
                *keys,
                exp.alias_(exp.Max(this=gn.copy()), "n"),
                exp.alias_(exp.Max(this=exp.column("t")), "last"),
                exp.alias_(med, "med"),
            )
            .from_(exp.table_(g_name), copy=False)
            .group_by(*[k.copy() for k in keys], copy=False)
        )
        name = self.name("ir")
        self.add_cte(name, h, b.key_names())
        since = exp.Div(
            this=exp.cast(
                _paren(
                    exp.Sub(
                        this=self.param(self.us_value(self.as_of), "int"),
                        expression=self.us(exp.column("last", table=name)),
                    )
                ),
                "DOUBLE",
            ),
            expression=exp.Literal.number("1000000.0"),
        )
        return _safe(
            _conj(
                exp.GTE(this=exp.column("n", table=name), expression=exp.Literal.number(c.min_gaps)),
                exp.GTE(
                    this=since,
                    expression=exp.Mul(this=self.param(c.factor, "num"), expression=exp.column("med", table=name)),
                ),
            )
        )

    def c_InSegment(self, c: m.InSegment, b: Scope) -> exp.Expression:
        """Inline the saved segment's tree (cycles rejected like the reference evaluator)."""
        from segmint.segments.reference import SegmentCycleError

        if c.segment in self.stack:
            raise SegmentCycleError(" -> ".join([*self.stack, c.segment]), where=f"segment {c.segment!r}")
        if self.resolve is None:
            raise NotFound(f"segment {c.segment!r}: no segment resolver given", where=f"segment {c.segment!r}")
        tree = self.resolve(c.segment)
        self.stack = (*self.stack, c.segment)
        try:
            return self.cond(tree, b)
        finally:
            self.stack = self.stack[:-1]

    def c_Correlated(self, c: m.Correlated, b: Scope) -> exp.Expression:
        """Anchor rows per outer scope row (first/last by row_number over ts, message_id), then a new scope."""
        a = c.anchor
        r = self.name("r")
        pred = self.in_scan(
            b, lambda: _and([self.matches(r, a.event, a.where, b), self.window(a.window, exp.column("ts", table=r), b)])
        )
        ka = self.key_alias(b, r)
        d = b.depth + 1
        cols: list[exp.Expression] = [
            exp.alias_(exp.column(k, table=r), k) for k in ("user_id", "message_id", "event", "ts", "properties")
        ]
        cols += [
            exp.alias_(exp.column(property_column(k), table=r, quoted=True), property_column(k), quoted=True)
            for k in sorted(self.typed)
        ]
        cols += [exp.alias_(exp.column(k, table=ka), k) for k in b.key_names()[1:]]
        cols.append(exp.alias_(exp.column("message_id", table=r), f"_sk{d}"))
        anc = self.name("anc")
        slot = len(self.ctes)
        self.add_cte(anc, exp.select("*"))  # filled below, once the body says which anchor values it reads
        self.anchor_cols[anc] = {}
        s2 = Scope((*b.anchors, anc), {**b.names, a.name: anc})
        body = self.cond(c.condition, s2)
        used = self.anchor_used.pop(anc, {})
        for path, i in self.anchor_cols.pop(anc).items():
            want = used.get(path, set())
            if "k" in want:
                cols.append(exp.alias_(self.prop_kind(r, list(path)), f"_a{i}k"))
            for kind in ("str", "num", "bool"):
                if kind[0] in want:
                    cols.append(exp.alias_(self.prop(r, list(path), kind), f"_a{i}{kind[0]}"))
        inner = self.scan(b, r, pred, left=False).select(*cols, copy=False)
        if a.pick in ("first", "last"):
            order = [
                exp.Ordered(this=exp.column("ts", table=r), desc=a.pick == "last"),
                exp.Ordered(this=exp.column("message_id", table=r), desc=a.pick == "last"),
            ]
            rn = exp.Window(this=exp.RowNumber(), partition_by=b.keys(ka), order=exp.Order(expressions=order))
            inner = (
                exp.select("*")
                .from_(
                    exp.Subquery(
                        this=inner.select(exp.alias_(rn, "_rn")), alias=exp.TableAlias(this=exp.to_identifier("x"))
                    ),
                    copy=False,
                )
                .where(exp.column("_rn").eq(exp.Literal.number(1)), copy=False)
            )
        self.ctes[slot] = (anc, inner)
        sel = self.attach(self.scope_rows(s2), anc, [body]).where(body, copy=False)
        sel = sel.select(
            *[exp.alias_(exp.column(k, table=anc), k) for k in b.key_names()], exp.alias_(exp.true(), "hit"), copy=False
        ).distinct(copy=False)
        name = self.name("w")
        self.add_cte(name, sel, b.key_names())
        return self._hit(name)


def _tables(*es: exp.Expression) -> set[str]:
    """Table aliases referenced by columns in expressions."""
    out: set[str] = set()
    for e in es:
        for col in e.find_all(exp.Column):
            if col.table:
                out.add(col.table)
    return out


def _conjuncts(e: exp.Expression) -> list[exp.Expression]:
    """The conjuncts of a predicate used as a filter, through parentheses, ANDs and COALESCE(x, FALSE)
    (a filter drops NULL and FALSE alike, so the COALESCE is not needed at the top)."""
    if isinstance(e, exp.Paren):
        return _conjuncts(e.this)
    if isinstance(e, exp.And):
        return _conjuncts(e.this) + _conjuncts(e.expression)
    if isinstance(e, exp.Coalesce) and len(e.expressions) == 1 and e.expressions[0] == exp.false():
        return _conjuncts(e.this)
    if e == exp.true():
        return []
    return [e]


def _key_col(e: exp.Expression, alias: str) -> str | None:
    """The column name when e is a bare column of alias."""
    return e.name if isinstance(e, exp.Column) and e.table == alias else None


def _key_eq(c: exp.Expression, alias: str) -> str | None:
    """The key when c is `alias.key = <expression not reading alias>` (either side)."""
    if not isinstance(c, exp.EQ):
        return None
    for a, b in ((c.this, c.expression), (c.expression, c.this)):
        k = _key_col(a, alias)
        if k is not None and alias not in _tables(b):
            return k
    return None


def _key_cmp(c: exp.Expression, alias: str) -> tuple[str, bool] | None:
    """(key, whether its max decides) when c is `alias.key <op> <expression not reading alias>`."""
    ops = {exp.GT: True, exp.GTE: True, exp.LT: False, exp.LTE: False}
    use_max = ops.get(type(c))
    if use_max is None:
        return None
    k = _key_col(c.this, alias)
    if k is not None and alias not in _tables(c.expression):
        return k, use_max
    k = _key_col(c.expression, alias)
    if k is not None and alias not in _tables(c.this):
        return k, not use_max
    return None


def _existence(c: m.CountSpec) -> bool:
    """Whether a count test only asks whether there is a matching event (>= 1, or none)."""
    return (c.op == "gte" and c.n <= 1) or (c.op in ("eq", "lte") and c.n == 0) or (c.op == "between" and c.n2 == 0)


def _each_span(w: m.EachWindow) -> timedelta:
    return timedelta(seconds=w.periods * m.UNIT_SECONDS[w.unit])


def _zone(name: str | None) -> ZoneInfo | None:
    if not name:
        return None
    try:
        return ZoneInfo(name)
    except (ValueError, OSError):  # ZoneInfoNotFoundError is a KeyError... handled below
        return None
    except KeyError:
        return None


def _calendar_start(as_of: datetime, unit: str, zone: str | None) -> datetime:
    """Start of the current day / week (Monday) / month in a zone (workspace zone, else UTC), naive UTC."""
    tz = _zone(zone) or ZoneInfo("UTC")
    local = as_of.replace(tzinfo=UTC).astimezone(tz)
    start = local.replace(hour=0, minute=0, second=0, microsecond=0, tzinfo=None)
    if unit == "week":
        start -= timedelta(days=start.weekday())
    elif unit == "month":
        start = start.replace(day=1)
    return start.replace(tzinfo=tz).astimezone(UTC).replace(tzinfo=None)


@functools.lru_cache(maxsize=64)
def _zone_groups(as_of: datetime, unit: str, workspace_tz: str) -> list[tuple[datetime, list[str]]]:
    """Every known zone grouped by the instant its current day/week/month starts."""
    groups: dict[datetime, list[str]] = {}
    for z in sorted(available_timezones()):
        groups.setdefault(_calendar_start(as_of, unit, z), []).append(z)
    return sorted(groups.items())


def compile_segment(
    tree: Any,
    as_of: datetime,
    *,
    dialect: str = "duckdb",
    typed: dict[str, str] | None = None,
    workspace_tz: str = "Asia/Seoul",
    resolve: Callable[[str], Any] | None = None,
) -> tuple[str, dict[str, Any]]:
    """The members query for a tree as of a time, in a dialect; returns (sql_text, params).

    workspace_tz is the zone of calendar windows (and of users without a valid zone); resolve maps a
    saved segment name to its tree for `in segment` (trees from saved.segment_tree come inlined).
    """
    if dialect not in ("duckdb", "clickhouse"):
        raise InvalidInput(f"unknown SQL dialect {dialect!r} (duckdb or clickhouse)", where="engine")
    as_of = as_of.replace(tzinfo=None) if as_of.tzinfo is None else as_of.astimezone(UTC).replace(tzinfo=None)
    comp = Compiler(dialect, as_of, dict(typed or {}), workspace_tz=workspace_tz, resolve=resolve)
    top = Scope()
    where = comp.cond(tree, top)
    as_of_p = comp.param(as_of, "ts")
    source_pred = [
        exp.Not(this=exp.Is(this=exp.column("user_id"), expression=exp.null())),
        exp.LTE(this=exp.column("ts"), expression=as_of_p),
    ]
    if comp.events:
        source_pred.append(
            exp.In(this=exp.column("event"), expressions=[comp.param(e, "str") for e in sorted(comp.events)])
        )
    ctes: list[tuple[str, exp.Expression]] = [
        ("ev", exp.select("*").from_("events", copy=False).where(_and(source_pred), copy=False))
    ]
    ctes += comp.ctes
    if comp.main_aggs:
        agg = comp.attach(exp.Select().from_(exp.table_("ev", alias="ev"), copy=False), "ev", comp.main_aggs)
        if comp.main_events and comp.main_events != comp.events:
            # every `agg` column is conditional on one of these event names: other events add nothing
            agg = agg.where(
                exp.In(
                    this=exp.column("event", table="ev"),
                    expressions=[comp.param(e, "str") for e in sorted(comp.main_events)],
                ),
                copy=False,
            )
        agg = agg.select(
            exp.alias_(exp.column("user_id", table="ev"), "user_id"), *comp.main_aggs, copy=False
        ).group_by(exp.column("user_id", table="ev"), copy=False)
        ctes.append(("agg", agg))
        comp.keyed["agg"] = ["user_id"]
    q = exp.select(exp.column("user_id", table="p")).from_(exp.table_("profiles", alias="p"), copy=False)
    q = comp.attach(q, "p", [where], skip=("p",))
    # One WITH node built at once (Select.with_ copies the whole query per CTE). DuckDB would materialize
    # `ev` (JSON included) for its several readers; each reader's filters prune better on the table itself.
    q.set(
        "with_",
        exp.With(
            expressions=[
                exp.CTE(
                    this=body,
                    alias=exp.TableAlias(this=exp.to_identifier(name)),
                    materialized=False if name == "ev" and dialect == "duckdb" else None,
                )
                for name, body in ctes
            ]
        ),
    )
    q = q.where(where, copy=False).order_by(exp.column("user_id", table="p"), copy=False)
    sql = q.sql(dialect=dialect)
    if dialect == "clickhouse":
        sql += " SETTINGS join_use_nulls = 1"
    return sql, comp.params


def duckdb_params(params: dict[str, Any]) -> dict[str, Any]:
    """DuckDB takes the same named parameters ($pN)."""
    return params
