"""Segment tree -> ONE SQL query (sqlglot expressions) returning member user_ids as of a time.

Shape of the query (both dialects):

    WITH ev AS (events pruned by name and time, ts <= as_of),
         agg AS (one row per user: conditional aggregates for every top-level event condition),
         anc_k AS (anchor events of `with` conditions, first/last picked with row_number)
    SELECT p.user_id FROM profiles AS p LEFT JOIN agg AS a ON a.user_id = p.user_id
    WHERE <boolean over the aggregates, traits, and EXISTS over anchors>

Conditions inside `with` refer to the anchor row and compile to correlated subqueries over `ev`.
Values are bound parameters (DuckDB `$pN`, ClickHouse `{pN:Type}`); names are quoted identifiers or
bound JSON paths. Every condition compiles to a non-NULL boolean (COALESCE(..., FALSE)) so NOT agrees
with the reference evaluator's two-valued logic. The population is the `profiles` table (the stores
create a profile for every user who has events).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlglot import exp

from segmint.errors import InvalidInput, SegmintError
from segmint.segments import model as m
from segmint.store.schema import is_safe_name, property_column

NUMERIC_TEXT = r"^[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?$"
CH_TYPES = {"str": "String", "num": "Float64", "bool": "Bool", "ts": "DateTime64(6, 'UTC')", "int": "Int64"}


class UnsupportedInSQL(SegmintError):
    """A node the SQL compiler does not handle yet (the reference evaluator does)."""

    code = "segment_unsupported"


def _lit_bool(v: bool) -> exp.Expression:
    return exp.true() if v else exp.false()


def _and(parts: list[exp.Expression]) -> exp.Expression:
    parts = [p for p in parts if p is not None]
    if not parts:
        return exp.true()
    return exp.and_(*parts) if len(parts) > 1 else parts[0]


def _safe(e: exp.Expression) -> exp.Expression:
    """Two-valued: NULL becomes FALSE."""
    return exp.Coalesce(this=exp.paren(e), expressions=[exp.false()])


def _kind_of(v: Any) -> str:
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, int | float):
        return "num"
    if isinstance(v, datetime):
        return "ts"
    return "str"


@dataclass
class Compiler:
    """Compiles one tree for one dialect; collects bound parameters as it goes."""

    dialect: str  # duckdb | clickhouse
    as_of: datetime
    typed: dict[str, str] = field(default_factory=dict)
    params: dict[str, Any] = field(default_factory=dict)
    aggs: list[exp.Expression] = field(default_factory=list)
    ctes: list[tuple[str, exp.Expression]] = field(default_factory=list)
    events: set[str] = field(default_factory=set)
    _names: dict[tuple[str, str, Any], str] = field(default_factory=dict)
    agg_alias: str = "a"

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
            return exp.Placeholder(this=name, kind=exp.DataType.build(CH_TYPES[kind], dialect="clickhouse"))
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
                        this=exp.and_(
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
        return self.value_as(exp.column("properties", table=alias), path, kind, col)

    # ---- comparisons

    def compare(self, actual: Any, op: str, v: Any, v2: Any, b: dict[str, str]) -> exp.Expression:
        """actual(kind) op operand; `actual` is a function kind -> typed SQL value."""
        if op == "exists":
            return actual(None)
        if op == "not_exists":
            return exp.not_(actual(None))
        if isinstance(v, m.ValueList):
            kind = _kind_of(v.values[0])
            a = actual(kind)
            inn = exp.In(this=a, expressions=[self.param(x, kind) for x in v.values])
            return exp.and_(
                exp.Not(this=exp.Is(this=a.copy(), expression=exp.null())),
                inn if op == "in" else exp.not_(inn),
            )
        if isinstance(v, m.AnchorRef) and v.factor is None:
            return self.compare_anchor(actual, op, v, b)
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
            return exp.and_(exp.GTE(this=a, expression=right), exp.LTE(this=a.copy(), expression=right2))
        if kind == "bool" and op not in ("eq", "ne"):
            return exp.false()
        cls = {"eq": exp.EQ, "ne": exp.NEQ, "gt": exp.GT, "gte": exp.GTE, "lt": exp.LT, "lte": exp.LTE}[op]
        return cls(this=a, expression=right)

    def compare_anchor(self, actual: Any, op: str, v: m.AnchorRef, b: dict[str, str]) -> exp.Expression:
        """Compare with an anchor event's property: the anchor value's JSON type decides the comparison."""
        alias = self.bound(v.anchor, b)
        obj = exp.column("properties", table=alias)
        typ = self.json_type(obj, v.path)
        parts = []
        for kind in ("str", "num", "bool"):
            right = self.value_as(obj, v.path, kind, None)
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
            elif op == "between":
                raise UnsupportedInSQL("between with an anchor property", where=v.anchor)
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
            parts.append(exp.and_(typ.copy().eq(exp.Literal.string(kind)), exp.paren(test)))
        return exp.or_(*parts) if parts else exp.false()

    def bound(self, name: str, b: dict[str, str]) -> str:
        """Row alias of an anchor bound by an enclosing `with`."""
        if name not in b:
            raise SegmintError(f"{name!r} is not bound by an enclosing 'with ... as {name}'", where=name)
        return b[name]

    def operand(self, v: Any, b: dict[str, str]) -> tuple[str, exp.Expression]:
        """(kind, SQL) of a right-hand side."""
        if isinstance(v, m.Value):
            return _kind_of(v.value), self.param(v.value)
        if isinstance(v, m.DateTimeValue):
            return "ts", self.param(v.value, "ts")
        if isinstance(v, m.AnchorRef):
            alias = self.bound(v.anchor, b)
            val = self.value_as(exp.column("properties", table=alias), v.path, "num", None)
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

    def window(self, w: Any, ts: exp.Expression, b: dict[str, str]) -> exp.Expression:
        """Whether ts is inside the window (ts <= as_of is applied by the event source)."""
        if isinstance(w, m.EverWindow):
            return exp.true()
        if isinstance(w, m.LastWindow):
            return exp.GT(this=ts, expression=self.param(self.as_of - w.duration.to_timedelta(), "ts"))
        if isinstance(w, m.AgoWindow):
            return exp.LTE(this=ts, expression=self.param(self.as_of - w.duration.to_timedelta(), "ts"))
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

    def matches(self, alias: str, event: str, where: list[m.PropertyFilter], b: dict[str, str]) -> exp.Expression:
        """Event name equal and every filter true, on a row alias."""
        self.events.add(event)
        parts: list[exp.Expression] = [exp.column("event", table=alias).eq(self.param(event, "str"))]
        for f in where:
            parts.append(self.filter(alias, f, b))
        return _and(parts)

    def filter(self, alias: str, f: m.PropertyFilter, b: dict[str, str]) -> exp.Expression:
        """One property filter."""

        def actual(kind: str | None) -> exp.Expression:
            if kind is None:  # existence
                return self._exists(alias, f.path)
            if kind == "ts":
                raise UnsupportedInSQL("comparing an event property with a date", where=".".join(f.path))
            return self.prop(alias, f.path, kind)

        if isinstance(f.value, m.AggregateExpr) or isinstance(f.value2, m.AggregateExpr):
            # The per-user aggregate is not in scope inside the event scan yet (reference handles it).
            raise UnsupportedInSQL("an event property compared with an aggregate", where=".".join(f.path))
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

    # ---- aggregates: a column of `agg` at top level, a correlated subquery under anchors

    def agg_column(self, expr: exp.Expression) -> exp.Expression:
        """Add an aggregate to the current scope's CTE (`agg` per user, or `gK` per anchor event)."""
        name = f"c{len(self.aggs)}"
        self.aggs.append(exp.alias_(expr, name))
        return exp.column(name, table=self.agg_alias)

    def event_agg(
        self, fn: str, value: exp.Expression | None, pred: exp.Expression, b: dict[str, str]
    ) -> exp.Expression:
        """fn over the user's events satisfying pred (count and sum never NULL)."""
        if fn == "count":
            agg: exp.Expression = exp.CountIf(this=pred)
        else:
            cond_val = exp.If(this=pred, true=value, false=exp.null())
            agg = (
                {"sum": exp.Sum, "avg": exp.Avg, "min": exp.Min, "max": exp.Max}[fn](this=cond_val)
                if fn != "count_distinct"
                else exp.Count(this=exp.Distinct(expressions=[cond_val]))
            )
        ref = self.agg_column(agg)
        if fn in ("count", "count_distinct", "sum"):
            return exp.Coalesce(this=ref, expressions=[exp.Literal.number(0)])
        return ref

    def row(self, b: dict[str, str]) -> str:
        """Alias of the event row inside aggregates: `e2` under anchors, `ev` at top level."""
        return "e2" if b else "ev"

    def aggregate(self, a: m.AggregateExpr, b: dict[str, str]) -> exp.Expression:
        """An AggregateExpr's value (NULL when undefined, like the reference)."""
        r = self.row(b)
        pred = _and([self.matches(r, a.event, a.where, b), self.window(a.window, exp.column("ts", table=r), b)])
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
        return self.event_agg(a.fn, value, pred, b)

    # ---- conditions

    def cond(self, c: Any, b: dict[str, str]) -> exp.Expression:
        """A condition as a non-NULL boolean expression."""
        method = getattr(self, "c_" + type(c).__name__, None)
        if method is None:
            raise UnsupportedInSQL(
                f"{c.kind} conditions are not compiled to SQL yet (the reference evaluator "
                "and `segmint segment explain` handle them)",
                where=c.kind,
            )
        return method(c, b)

    def c_And(self, c: m.And, b: dict[str, str]) -> exp.Expression:
        return exp.and_(*(exp.paren(self.cond(i, b)) for i in c.items))

    def c_Or(self, c: m.Or, b: dict[str, str]) -> exp.Expression:
        return exp.paren(exp.or_(*(exp.paren(self.cond(i, b)) for i in c.items)))

    def c_Not(self, c: m.Not, b: dict[str, str]) -> exp.Expression:
        return exp.not_(exp.paren(self.cond(c.item, b)))

    def c_TraitCondition(self, c: m.TraitCondition, b: dict[str, str]) -> exp.Expression:
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
                        exp.and_(
                            exp.GT(this=col, expression=self.param(self.as_of - d, "ts")),
                            exp.LTE(this=col.copy(), expression=self.param(self.as_of, "ts")),
                        )
                    )
                return _safe(exp.LTE(this=col, expression=self.param(self.as_of - d, "ts")))
            if c.op == "exists":
                return exp.Not(this=exp.Is(this=col, expression=exp.null()))
            if c.op == "not_exists":
                return exp.Is(this=col, expression=exp.null())
            return _safe(self.compare(lambda k: col if k == "ts" else exp.null(), c.op, c.value, c.value2, b))
        if c.op in ("within_last", "older_than"):
            raise UnsupportedInSQL("date tests on traits", where=c.name)
        obj = exp.column("traits", table="p")
        if c.op in ("exists", "not_exists"):
            e = self._exists_obj(obj, [c.name])
            return e if c.op == "exists" else exp.not_(e)

        def actual(kind: str | None) -> exp.Expression:
            if kind == "ts":
                raise UnsupportedInSQL("comparing a trait with a date", where=c.name)
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

    def c_Performed(self, c: m.Performed, b: dict[str, str]) -> exp.Expression:
        if isinstance(c.window, m.EachWindow):
            raise UnsupportedInSQL("'each' windows are not compiled to SQL yet", where=c.event)
        r = self.row(b)
        pred = _and([self.matches(r, c.event, c.where, b), self.window(c.window, exp.column("ts", table=r), b)])
        test = self._count_test(self.event_agg("count", None, pred, b), c.count)
        if c.new_profiles == "exclude" and isinstance(c.window, m.LastWindow):
            first = exp.column("first_seen", table="p")
            start = self.param(self.as_of - c.window.duration.to_timedelta(), "ts")
            test = exp.and_(_safe(exp.LTE(this=first, expression=start)), exp.paren(test))
        return _safe(test)

    def c_AggregateCondition(self, c: m.AggregateCondition, b: dict[str, str]) -> exp.Expression:
        value = self.aggregate(c.agg, b)
        return _safe(self.compare(lambda k: value if k == "num" else exp.null(), c.op, c.value, c.value2, b))

    def _first_last(self, c: m.FirstCondition | m.LastCondition, b: dict[str, str]) -> exp.Expression:
        r = self.row(b)
        pred = self.matches(r, c.event, c.where, b)
        ts = exp.column("ts", table=r)
        agg = (
            exp.Min(this=exp.If(this=pred, true=ts, false=exp.null()))
            if c.kind == "first"
            else exp.Max(this=exp.If(this=pred, true=ts, false=exp.null()))
        )
        t = self.agg_column(agg)
        return _safe(exp.and_(exp.Not(this=exp.Is(this=t, expression=exp.null())), self.window(c.window, t.copy(), b)))

    c_FirstCondition = _first_last
    c_LastCondition = _first_last

    def c_Correlated(self, c: m.Correlated, b: dict[str, str]) -> exp.Expression:
        a = c.anchor
        if b:
            raise UnsupportedInSQL("nested 'with' conditions are not compiled to SQL yet", where=a.name)
        name = f"anc{len(self.ctes)}"
        inner = (
            exp.select("*")
            .from_(exp.table_("ev", alias="ev"))
            .where(
                _and(
                    [
                        self.matches("ev", a.event, a.where, {}),
                        self.window(a.window, exp.column("ts", table="ev"), {}),
                    ]
                )
            )
        )
        if a.pick in ("first", "last"):
            order = [
                exp.Ordered(this=exp.column("ts"), desc=a.pick == "last"),
                exp.Ordered(this=exp.column("message_id"), desc=a.pick == "last"),
            ]
            rn = exp.Window(
                this=exp.RowNumber(), partition_by=[exp.column("user_id")], order=exp.Order(expressions=order)
            )
            inner = (
                exp.select("*")
                .from_(
                    exp.Subquery(
                        this=inner.select(exp.alias_(rn, "rn")),
                        alias=exp.TableAlias(this=exp.to_identifier("x")),
                    )
                )
                .where(exp.column("rn").eq(exp.Literal.number(1)))
            )
        self.ctes.append((name, inner))
        saved, saved_alias = self.aggs, self.agg_alias
        self.aggs, self.agg_alias = [], f"g{name}"
        body = self.cond(c.condition, {a.name: name})
        inner_aggs, self.aggs, self.agg_alias = self.aggs, saved, saved_alias
        anc = exp.table_(name)
        on_user = exp.column("user_id", table="p").eq(exp.column("user_id", table=name))
        members = (
            exp.select(exp.column("user_id", table=name))
            .from_(anc)
            .join(exp.table_("profiles", alias="p"), on=on_user, join_type="left")
        )
        if inner_aggs:
            # One row per anchor event: its aggregates over the user's events (a join, not correlated).
            g = (
                exp.select(exp.alias_(exp.column("message_id", table=name), "aid"), *inner_aggs)
                .from_(exp.table_(name))
                .join(
                    exp.table_("ev", alias="e2"),
                    on=exp.column("user_id", table="e2").eq(exp.column("user_id", table=name)),
                    join_type="left",
                )
                .join(exp.table_("profiles", alias="p"), on=on_user.copy(), join_type="left")
                .group_by(exp.column("message_id", table=name))
            )
            self.ctes.append((f"g{name}", g))
            members = members.join(
                exp.table_(f"g{name}"),
                on=exp.column("aid", table=f"g{name}").eq(exp.column("message_id", table=name)),
                join_type="left",
            )
        members = members.where(body)
        return _safe(exp.In(this=exp.column("user_id", table="p"), query=exp.Subquery(this=members)))


def compile_segment(
    tree: Any, as_of: datetime, *, dialect: str = "duckdb", typed: dict[str, str] | None = None
) -> tuple[str, dict[str, Any]]:
    """The members query for a tree as of a time, in a dialect; returns (sql_text, params)."""
    if dialect not in ("duckdb", "clickhouse"):
        raise InvalidInput(f"unknown SQL dialect {dialect!r} (duckdb or clickhouse)", where="engine")
    as_of = (
        as_of.replace(tzinfo=None)
        if as_of.tzinfo is None
        else as_of.astimezone(__import__("datetime").UTC).replace(tzinfo=None)
    )
    comp = Compiler(dialect, as_of, dict(typed or {}))
    where = comp.cond(tree, {})
    as_of_p = comp.param(as_of, "ts")
    source_pred = [
        exp.Not(this=exp.Is(this=exp.column("user_id"), expression=exp.null())),
        exp.LTE(this=exp.column("ts"), expression=as_of_p),
    ]
    if comp.events:
        source_pred.append(
            exp.In(this=exp.column("event"), expressions=[comp.param(e, "str") for e in sorted(comp.events)])
        )
    ev = exp.select("*").from_("events").where(_and(source_pred))
    q = exp.select(exp.column("user_id", table="p")).from_(exp.table_("profiles", alias="p"))
    q = q.with_("ev", as_=ev)
    for name, body in comp.ctes:
        q = q.with_(name, as_=body)
    if comp.aggs:
        agg = exp.select(exp.column("user_id"), *comp.aggs).from_(exp.table_("ev")).group_by(exp.column("user_id"))
        q = q.with_("agg", as_=agg)
        q = q.join(
            exp.table_("agg", alias="a"),
            on=exp.column("user_id", table="a").eq(exp.column("user_id", table="p")),
            join_type="left",
        )
    q = q.where(where).order_by(exp.column("user_id", table="p"))
    sql = q.sql(dialect=dialect)
    if dialect == "clickhouse":
        sql += " SETTINGS join_use_nulls = 1"
    return sql, comp.params


def duckdb_params(params: dict[str, Any]) -> dict[str, Any]:
    """DuckDB takes the same named parameters ($pN)."""
    return params


_ = timedelta
