"""The segment text language: parse text into the condition tree, and print a tree back as text.

parse(to_text(tree)) == tree for every valid tree (tested with hypothesis). Grammar: segment.lark.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from importlib import resources
from typing import Any

from lark import Lark, Token, Transformer, Tree, v_args
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken, VisitError
from pydantic import ValidationError

from segmint.segments import model as m
from segmint.segments.errors import SegmentSyntaxError

_BARE = re.compile(r"^\$?[^\W\d]\w*$")
_UNIT = re.compile(r"^(second|minute|hour|day|week|month)s?$")

# Friendly names for terminals in "expected ..." messages.
_TERMINAL_TEXT = {"NAME": "a name", "QNAME": "a `quoted name`", "STRING": 'a "string"', "NUMBER": "a number",
                  "INT": "a whole number", "DATETIME": "a date (2026-03-01 or 2026-03-01T09:00)",
                  "UNIT": "a unit (minutes, hours, days, weeks, months)", "$END": "end of text"}


@cache
def _parser() -> Lark:
    text = resources.files("segmint.segments").joinpath("segment.lark").read_text(encoding="utf-8")
    return Lark(text, parser="lalr", propagate_positions=True, maybe_placeholders=False)


@cache
def keywords() -> frozenset[str]:
    """Words of the language; a name spelled like one must be written `quoted`."""
    words = set()
    for t in _parser().terminals:
        pat = t.pattern
        if pat.type == "str" and pat.value.replace("_", "").isalpha():
            words.add(pat.value)
    return frozenset(words)


# ---------------------------------------------------------------- names found while parsing


@dataclass(frozen=True)
class NameUse:
    """Where the text names an event, property or trait (for checks against a catalog)."""

    kind: str  # event | property | trait | anchor
    name: str
    line: int
    column: int
    event: str | None = None  # for properties: the event they belong to, when known


def _tok_text(tok: Token) -> str:
    if tok.type == "QNAME":
        return re.sub(r"\\(.)", r"\1", tok.value[1:-1], flags=re.S)
    return str(tok.value)


@dataclass(frozen=True)
class _Name:
    text: str
    line: int
    column: int


@dataclass(frozen=True)
class _Path:
    parts: list[str]
    line: int
    column: int


@dataclass(frozen=True)
class _Where:
    filters: list[m.PropertyFilter]
    paths: list[_Path]


class _Count(m.CountSpec):
    pass


class _Within(m.Duration):
    pass


class _NewProfiles:
    pass


def _duration(tok_n: Token, tok_unit: Token) -> m.Duration:
    unit = str(tok_unit).lower()
    unit = unit if unit.endswith("s") else unit + "s"
    return m.Duration(amount=int(tok_n), unit=unit)


def _number(text: str) -> int | float:
    return int(text) if re.fullmatch(r"-?\d+", text) else float(text)


def _dt(tok: Token) -> datetime:
    return datetime.fromisoformat(str(tok))


@v_args(inline=True)
class _Build(Transformer):
    """Turns the lark parse tree into model nodes, recording names with their positions."""

    def __init__(self) -> None:
        super().__init__()
        self.uses: list[NameUse] = []

    # ---- names and paths
    @v_args(tree=True)
    def name(self, t: Tree) -> _Name:
        tok = t.children[0]
        return _Name(_tok_text(tok), tok.line, tok.column)

    def path(self, *names: _Name) -> _Path:
        return _Path([n.text for n in names], names[0].line, names[0].column)

    def _types(self, line: int, column: int, op: str, v: Any, v2: Any, numeric_left: bool = False) -> None:
        """Record mistyped comparisons with their place (check_text reports them)."""
        from segmint.segments.validate import typed_issues  # late import: validate imports this module

        for problem in typed_issues(op, v, v2, numeric_left):
            self.uses.append(NameUse("typed", problem, line, column))

    def _event(self, n: _Name, where: _Where | None) -> str:
        self.uses.append(NameUse("event", n.text, n.line, n.column))
        for p in where.paths if where else []:
            self.uses.append(NameUse("property", p.parts[0], p.line, p.column, n.text))
        return n.text

    # ---- values
    def string(self, tok: Token) -> m.Value:
        return m.Value(value=json.loads(tok))

    def number(self, tok: Token) -> m.Value:
        return m.Value(value=_number(str(tok)))

    def datetime(self, tok: Token) -> m.DateTimeValue:
        return m.DateTimeValue(value=_dt(tok))

    def true(self) -> m.Value:
        return m.Value(value=True)

    def false(self) -> m.Value:
        return m.Value(value=False)

    def list(self, *items: m.Value) -> m.ValueList:
        return m.ValueList(values=[i.value for i in items])

    def anchor_ref(self, n: _Name, p: _Path) -> m.AnchorRef:
        self.uses.append(NameUse("anchor", n.text, n.line, n.column))
        self.uses.append(NameUse("property", p.parts[0], p.line, p.column))
        return m.AnchorRef(anchor=n.text, path=p.parts)

    def trait_ref(self, n: _Name) -> m.TraitRef:
        self.uses.append(NameUse("trait", n.text, n.line, n.column))
        return m.TraitRef(name=n.text)

    def agg_ref(self, a: m.AggregateExpr) -> m.AggregateExpr:
        return a

    def scaled(self, tok: Token, ref: Any) -> Any:
        return ref.model_copy(update={"factor": float(tok)})

    # ---- filters
    def cmp(self, tok: Token) -> str:
        return {"=": "eq", "!=": "ne", ">": "gt", ">=": "gte", "<": "lt", "<=": "lte"}[str(tok)]

    def t_cmp(self, op: str, v: Any) -> tuple:
        return (op, v, None)

    def t_between(self, a: Any, b: Any) -> tuple:
        return ("between", a, b)

    def t_in(self, v: m.ValueList) -> tuple:
        return ("in", v, None)

    def t_not_in(self, v: m.ValueList) -> tuple:
        return ("not_in", v, None)

    def t_contains(self, v: Any) -> tuple:
        return ("contains", v, None)

    def t_starts(self, v: Any) -> tuple:
        return ("starts_with", v, None)

    def t_exists(self) -> tuple:
        return ("exists", None, None)

    def t_not_exists(self) -> tuple:
        return ("not_exists", None, None)

    def filter(self, p: _Path, test: tuple) -> tuple[_Path, m.PropertyFilter]:
        op, v, v2 = test
        self._types(p.line, p.column, op, v, v2)
        return p, m.PropertyFilter(path=p.parts, op=op, value=v, value2=v2)

    def where(self, *fs: tuple[_Path, m.PropertyFilter]) -> _Where:
        return _Where([f for _, f in fs], [p for p, _ in fs])

    # ---- time
    def duration(self, n: Token, unit: Token) -> m.Duration:
        return _duration(n, unit)

    def within(self, d: m.Duration) -> _Within:
        return _Within(amount=d.amount, unit=d.unit)

    def w_ever(self) -> m.EverWindow:
        return m.EverWindow()

    def w_last(self, d: m.Duration) -> m.LastWindow:
        return m.LastWindow(duration=d)

    def w_ago(self, d: m.Duration) -> m.AgoWindow:
        return m.AgoWindow(duration=d)

    def w_between(self, a: Token, b: Token) -> m.BetweenWindow:
        return m.BetweenWindow(start=_dt(a), end=_dt(b))

    def w_since(self, a: Token) -> m.BetweenWindow:
        return m.BetweenWindow(start=_dt(a))

    def w_until(self, b: Token) -> m.BetweenWindow:
        return m.BetweenWindow(end=_dt(b))

    def _anchor_w(self, cls: type, n: _Name, within: _Within | None) -> Any:
        self.uses.append(NameUse("anchor", n.text, n.line, n.column))
        return cls(anchor=n.text, within=_plain(within))

    def w_after(self, n: _Name, within: _Within | None = None) -> m.AfterAnchorWindow:
        return self._anchor_w(m.AfterAnchorWindow, n, within)

    def w_before(self, n: _Name, within: _Within | None = None) -> m.BeforeAnchorWindow:
        return self._anchor_w(m.BeforeAnchorWindow, n, within)

    def w_each(self, n: Token, unit: Token) -> m.EachWindow:
        d = _duration(n, unit)
        return m.EachWindow(periods=d.amount, unit=d.unit)

    def zone(self) -> str:
        return "workspace"

    def w_today(self, zone: str = "user") -> m.CalendarWindow:
        return m.CalendarWindow(unit="day", zone=zone)

    def w_this_week(self, zone: str = "user") -> m.CalendarWindow:
        return m.CalendarWindow(unit="week", zone=zone)

    def w_this_month(self, zone: str = "user") -> m.CalendarWindow:
        return m.CalendarWindow(unit="month", zone=zone)

    # ---- counts
    def times(self) -> None:
        return None

    def count_gte(self, n: Token, _t: None = None) -> _Count:
        return _Count(op="gte", n=int(n))

    def count_lte(self, n: Token, _t: None = None) -> _Count:
        return _Count(op="lte", n=int(n))

    def count_eq(self, n: Token, _t: None = None) -> _Count:
        return _Count(op="eq", n=int(n))

    def count_between(self, n: Token, n2: Token, _t: None = None) -> _Count:
        return _Count(op="between", n=int(n), n2=int(n2))

    def new_profiles(self) -> _NewProfiles:
        return _NewProfiles()

    # ---- conditions
    @staticmethod
    def _split(parts: tuple) -> tuple[_Where | None, _Count | None, Any, bool, _Within | None]:
        where = next((p for p in parts if isinstance(p, _Where)), None)
        count = next((p for p in parts if isinstance(p, _Count)), None)
        within = next((p for p in parts if isinstance(p, _Within)), None)
        window = next((p for p in parts if isinstance(p, m.EverWindow | m.LastWindow | m.AgoWindow
                                                        | m.BetweenWindow | m.AfterAnchorWindow
                                                        | m.BeforeAnchorWindow | m.EachWindow
                                                        | m.CalendarWindow)), None)
        excl = any(isinstance(p, _NewProfiles) for p in parts)
        return where, count, window, excl, within

    def performed(self, n: _Name, *parts: Any) -> m.Performed:
        where, count, window, excl, _ = self._split(parts)
        return m.Performed(event=self._event(n, where), where=where.filters if where else [],
                           count=m.CountSpec(op=count.op, n=count.n, n2=count.n2) if count else m.CountSpec(),
                           window=window or m.EverWindow(), new_profiles="exclude" if excl else "include")

    def did_not(self, n: _Name, *parts: Any) -> m.Performed:
        where, _, window, excl, _ = self._split(parts)
        return m.Performed(event=self._event(n, where), where=where.filters if where else [],
                           count=m.CountSpec(op="eq", n=0), window=window or m.EverWindow(),
                           new_profiles="exclude" if excl else "include")

    def then_step(self, n: _Name, where: _Where | None = None) -> m.Step:
        return m.Step(event=self._event(n, where), where=where.filters if where else [])

    def sequence(self, n: _Name, *parts: Any) -> m.Sequence:
        where, _, window, _, within = self._split(parts)
        first = m.Step(event=self._event(n, where), where=where.filters if where else [])
        steps = [first, *(p for p in parts if isinstance(p, m.Step))]
        return m.Sequence(steps=steps, within=_plain(within), window=window or m.EverWindow())

    def not_followed(self, n: _Name, *parts: Any) -> m.Sequence:
        # parts: [where] [window] name2 [where2] [within]
        i = 0
        where1 = parts[i] if i < len(parts) and isinstance(parts[i], _Where) else None
        i += where1 is not None
        window = parts[i] if i < len(parts) and not isinstance(parts[i], _Name) else None
        i += window is not None
        n2 = parts[i]
        rest = parts[i + 1:]
        where2 = next((p for p in rest if isinstance(p, _Where)), None)
        within = next((p for p in rest if isinstance(p, _Within)), None)
        s1 = m.Step(event=self._event(n, where1), where=where1.filters if where1 else [])
        s2 = m.Step(event=self._event(n2, where2), where=where2.filters if where2 else [])
        return m.Sequence(steps=[s1, s2], within=_plain(within), window=window or m.EverWindow(),
                          followed=False)

    def first_cond(self, n: _Name, *parts: Any) -> m.FirstCondition:
        where, _, window, _, _ = self._split(parts)
        return m.FirstCondition(event=self._event(n, where), where=where.filters if where else [],
                                window=window)

    def last_cond(self, n: _Name, *parts: Any) -> m.LastCondition:
        where, _, window, _, _ = self._split(parts)
        return m.LastCondition(event=self._event(n, where), where=where.filters if where else [],
                               window=window)

    def streak_from(self, n: _Name) -> tuple[str, str]:
        self.uses.append(NameUse("event", n.text, n.line, n.column))
        return ("from", n.text)

    def resp_opened(self) -> tuple[str, str]:
        return ("resp", "message_opened")

    def resp_clicked(self) -> tuple[str, str]:
        return ("resp", "message_clicked")

    def resp_event(self, n: _Name) -> tuple[str, str]:
        self.uses.append(NameUse("event", n.text, n.line, n.column))
        return ("resp", n.text)

    def streak(self, n: Token, channel: Token, *parts: tuple[str, str]) -> m.Streak:
        opts = dict(parts)
        return m.Streak(channel=json.loads(channel), n=int(n), sent_event=opts.get("from", "message_sent"),
                        response_event=opts["resp"])

    def min_gaps(self, n: Token) -> int:
        return int(n)

    def interval(self, n: _Name, *parts: Any) -> m.IntervalRatio:
        where = next((p for p in parts if isinstance(p, _Where)), None)
        factor = next(p for p in parts if isinstance(p, Token))
        gaps = next((p for p in parts if isinstance(p, int) and not isinstance(p, Token)), 2)
        return m.IntervalRatio(event=self._event(n, where), where=where.filters if where else [],
                               factor=float(factor), min_gaps=gaps)

    def in_segment(self, tok: Token) -> m.InSegment:
        return m.InSegment(segment=json.loads(tok))

    def trait_src(self, tok: Token) -> str:
        return str(tok)

    def t_within(self, d: m.Duration) -> tuple:
        return ("within_last", d)

    def t_older(self, d: m.Duration) -> tuple:
        return ("older_than", d)

    def trait_cond(self, src: str, n: _Name, test: tuple) -> m.TraitCondition:
        if src == "trait":
            self.uses.append(NameUse("trait", n.text, n.line, n.column))
        if test[0] in ("within_last", "older_than"):
            return m.TraitCondition(name=n.text, source=src, op=test[0], duration=test[1])
        self._types(n.line, n.column, *test)
        return m.TraitCondition(name=n.text, source=src, op=test[0], value=test[1], value2=test[2])

    # ---- aggregates
    def agg_fn(self, tok: Token) -> str:
        return str(tok)

    def _agg(self, fn: str, p: _Path | None, n: _Name, parts: tuple) -> m.AggregateExpr:
        where, _, window, _, _ = self._split(parts)
        self._event(n, where)
        if p is not None:
            self.uses.append(NameUse("property", p.parts[0], p.line, p.column, n.text))
        return m.AggregateExpr(fn=fn, event=n.text, property=p.parts if p else None,
                               where=where.filters if where else [], window=window or m.EverWindow())

    def agg_prop(self, fn: str, p: _Path, n: _Name, *parts: Any) -> m.AggregateExpr:
        return self._agg(fn, p, n, parts)

    def agg_distinct(self, p: _Path, n: _Name, *parts: Any) -> m.AggregateExpr:
        return self._agg("count_distinct", p, n, parts)

    def agg_count(self, n: _Name, *parts: Any) -> m.AggregateExpr:
        return self._agg("count", None, n, parts)

    @v_args(meta=True)
    def aggregate_cmp(self, meta: Any, children: list) -> m.AggregateCondition:
        a, op, v = children
        self._types(meta.line, meta.column, op, v, None, True)
        return m.AggregateCondition(agg=a, op=op, value=v)

    @v_args(meta=True)
    def aggregate_between(self, meta: Any, children: list) -> m.AggregateCondition:
        a, v, v2 = children
        self._types(meta.line, meta.column, "between", v, v2, True)
        return m.AggregateCondition(agg=a, op="between", value=v, value2=v2)

    # ---- correlated and boolean
    def pick(self, tok: Token) -> str:
        return str(tok)

    def with_expr(self, pick: str, n: _Name, *parts: Any) -> m.Correlated:
        body = parts[-1]
        where = parts[0] if isinstance(parts[0], _Where) else None
        rest = parts[1:-1] if where else parts[:-1]
        alias: _Name = rest[0]
        window = rest[1] if len(rest) > 1 else m.EverWindow()
        anchor = m.Anchor(name=alias.text, pick=pick, event=self._event(n, where),
                          where=where.filters if where else [], window=window)
        return m.Correlated(anchor=anchor, condition=body)

    def or_(self, *items: Any) -> Any:
        return items[0] if len(items) == 1 else m.Or(items=list(items))

    def and_(self, *items: Any) -> Any:
        return items[0] if len(items) == 1 else m.And(items=list(items))

    def not_(self, item: Any) -> m.Not:
        return m.Not(item=item)

    def start(self, e: Any) -> Any:
        return e


def _plain(d: m.Duration | None) -> m.Duration | None:
    return None if d is None else m.Duration(amount=d.amount, unit=d.unit)


def _expected(exc: UnexpectedInput) -> str:
    exp = sorted(getattr(exc, "expected", None) or getattr(exc, "allowed", None) or [])
    words = []
    for t in exp:
        if t in _TERMINAL_TEXT:
            words.append(_TERMINAL_TEXT[t])
            continue
        term = next((x for x in _parser().terminals if x.name == t), None)
        if term is not None and term.pattern.type == "str":
            words.append(repr(term.pattern.value).replace("'", '"'))
    words = sorted(set(words))
    return ", ".join(words[:14]) + (" ..." if len(words) > 14 else "")


def parse_with_names(text: str) -> tuple[m.Condition, list[NameUse]]:
    """Parse segment text into a tree, plus every event/property/trait name with its position."""
    try:
        ptree = _parser().parse(text)
    except UnexpectedEOF as exc:
        lines = text.splitlines() or [""]
        raise SegmentSyntaxError(f"the text ends too early; expected {_expected(exc)}", text=text,
                                 line=len(lines), column=len(lines[-1]) + 1) from None
    except UnexpectedToken as exc:
        tok = exc.token
        if tok.type == "$END":
            lines = text.splitlines() or [""]
            raise SegmentSyntaxError(f"the text ends too early; expected {_expected(exc)}", text=text,
                                     line=len(lines), column=len(lines[-1]) + 1) from None
        shown = str(tok)
        hint = ""
        if shown in keywords() and ("NAME" in exc.expected or "QNAME" in exc.expected):
            hint = f"; {shown!r} is a word of the language, write `{shown}` to use it as a name"
        raise SegmentSyntaxError(f"unexpected {shown!r}; expected {_expected(exc)}{hint}", text=text,
                                 line=tok.line, column=tok.column, width=len(shown)) from None
    except UnexpectedCharacters as exc:
        ch = text[exc.pos_in_stream] if exc.pos_in_stream < len(text) else ""
        raise SegmentSyntaxError(f"unexpected character {ch!r}; expected {_expected(exc)}", text=text,
                                 line=exc.line, column=exc.column) from None
    build = _Build()
    try:
        tree = build.transform(ptree)
    except VisitError as exc:
        orig = exc.orig_exc
        meta = getattr(exc.obj, "meta", None)
        line = getattr(meta, "line", 1) or 1
        col = getattr(meta, "column", 1) or 1
        if isinstance(orig, ValidationError):
            err = orig.errors()[0]
            msg = str(err.get("msg", orig)).removeprefix("Value error, ")
        else:
            msg = str(orig)
        raise SegmentSyntaxError(msg, text=text, line=line, column=col) from None
    return tree, build.uses


def parse(text: str, catalog: Any = None) -> m.Condition:
    """Parse segment text; with a Catalog, unknown events/properties/traits are errors with suggestions."""
    tree, uses = parse_with_names(text)
    from segmint.segments.validate import check_text  # late import: validate imports this module

    check_text(text, tree, uses, catalog)
    return tree


# ---------------------------------------------------------------- printing


def quote_name(name: str) -> str:
    """A name as written in the language: bare when safe, else `back-quoted` with \\ escapes."""
    if _BARE.fullmatch(name) and name not in keywords() and not _UNIT.fullmatch(name):
        return name
    return "`" + name.replace("\\", "\\\\").replace("`", "\\`") + "`"


def _path(p: list[str]) -> str:
    return ".".join(quote_name(x) for x in p)


def _scalar(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return repr(v)
    return json.dumps(v, ensure_ascii=False)


def _dtext(d: datetime) -> str:
    if d.hour == d.minute == d.second == d.microsecond == 0:
        return d.date().isoformat()
    return d.isoformat()


def _num_text(f: float) -> str:
    return str(int(f)) if f.is_integer() and abs(f) < 1e15 else repr(f)


def _factor(f: float | None) -> str:
    return "" if f is None else f"{_num_text(f)} * "


def _operand(o: Any) -> str:
    if isinstance(o, m.Value):
        return _scalar(o.value)
    if isinstance(o, m.ValueList):
        return "[" + ", ".join(_scalar(v) for v in o.values) + "]"
    if isinstance(o, m.DateTimeValue):
        return _dtext(o.value)
    if isinstance(o, m.AnchorRef):
        return f"{_factor(o.factor)}{quote_name(o.anchor)}.{_path(o.path)}"
    if isinstance(o, m.TraitRef):
        return f"{_factor(o.factor)}trait {quote_name(o.name)}"
    if isinstance(o, m.AggregateExpr):
        return f"{_factor(o.factor)}({_agg(o)})"
    raise TypeError(f"unknown operand {o!r}")


_OPS = {"eq": "=", "ne": "!=", "gt": ">", "gte": ">=", "lt": "<", "lte": "<="}


def _test(op: str, v: Any, v2: Any) -> str:
    if op in _OPS:
        return f"{_OPS[op]} {_operand(v)}"
    if op == "between":
        return f"between {_operand(v)} and {_operand(v2)}"
    if op == "in":
        return f"in {_operand(v)}"
    if op == "not_in":
        return f"not in {_operand(v)}"
    if op == "contains":
        return f"contains {_operand(v)}"
    if op == "starts_with":
        return f"starts with {_operand(v)}"
    if op == "exists":
        return "exists"
    if op == "not_exists":
        return "not exists"
    raise ValueError(f"unknown operator {op}")


def _where(fs: list[m.PropertyFilter]) -> str:
    if not fs:
        return ""
    return " where " + ", ".join(f"{_path(f.path)} {_test(f.op, f.value, f.value2)}" for f in fs)


def _dur(d: m.Duration) -> str:
    unit = d.unit[:-1] if d.amount == 1 else d.unit
    return f"{d.amount} {unit}"


def _window(w: Any, omit_ever: bool = True) -> str:
    if isinstance(w, m.EverWindow):
        return "" if omit_ever else " ever"
    if isinstance(w, m.LastWindow):
        return f" in last {_dur(w.duration)}"
    if isinstance(w, m.AgoWindow):
        return f" at least {_dur(w.duration)} ago"
    if isinstance(w, m.BetweenWindow):
        if w.start is not None and w.end is not None:
            return f" from {_dtext(w.start)} to {_dtext(w.end)}"
        return f" since {_dtext(w.start)}" if w.start is not None else f" before {_dtext(w.end)}"  # type: ignore[arg-type]
    if isinstance(w, m.AfterAnchorWindow | m.BeforeAnchorWindow):
        within = f" within {_dur(w.within)}" if w.within else ""
        return f" {w.kind} {quote_name(w.anchor)}{within}"
    if isinstance(w, m.EachWindow):
        return f" in each of the last {_dur(m.Duration(amount=w.periods, unit=w.unit))}"
    if isinstance(w, m.CalendarWindow):
        word = {"day": "today", "week": "this week", "month": "this month"}[w.unit]
        return f" {word}" + (" in workspace zone" if w.zone == "workspace" else "")
    raise TypeError(f"unknown window {w!r}")


def _count(c: m.CountSpec) -> str:
    def t(n: int) -> str:
        return "time" if n == 1 else "times"

    if c.op == "gte":
        return "" if c.n == 1 else f" at least {c.n} {t(c.n)}"
    if c.op == "lte":
        return f" at most {c.n} {t(c.n)}"
    if c.op == "eq":
        return f" exactly {c.n} {t(c.n)}"
    return f" between {c.n} and {c.n2} times"


def _agg(a: m.AggregateExpr) -> str:
    tail = f" of {quote_name(a.event)}{_where(a.where)}{_window(a.window)}"
    if a.fn == "count":
        return "count" + tail
    if a.fn == "count_distinct":
        return f"count distinct {_path(a.property or [])}" + tail
    return f"{a.fn} {_path(a.property or [])}" + tail


def _child(c: Any) -> str:
    """A child of and/or/not: compound and correlated children get parentheses."""
    text = to_text(c)
    return f"({text})" if isinstance(c, m.And | m.Or | m.Correlated) else text


def to_text(c: m.Condition) -> str:
    """The text form of a condition tree (parses back to an equal tree)."""
    if isinstance(c, m.And):
        return " and ".join(_child(i) for i in c.items)
    if isinstance(c, m.Or):
        return " or ".join(_child(i) for i in c.items)
    if isinstance(c, m.Not):
        return "not " + _child(c.item)
    if isinstance(c, m.TraitCondition):
        head = f"{c.source} {quote_name(c.name)}"
        if c.op == "within_last":
            return f"{head} in last {_dur(c.duration)}"  # type: ignore[arg-type]
        if c.op == "older_than":
            return f"{head} at least {_dur(c.duration)} ago"  # type: ignore[arg-type]
        return f"{head} {_test(c.op, c.value, c.value2)}"
    if isinstance(c, m.Performed):
        excl = " excluding new profiles" if c.new_profiles == "exclude" else ""
        if c.count.op == "eq" and c.count.n == 0:
            return f"did not {quote_name(c.event)}{_where(c.where)}{_window(c.window)}{excl}"
        return f"did {quote_name(c.event)}{_where(c.where)}{_count(c.count)}{_window(c.window)}{excl}"
    if isinstance(c, m.AggregateCondition):
        if c.op == "between":
            return f"{_agg(c.agg)} between {_operand(c.value)} and {_operand(c.value2)}"
        return f"{_agg(c.agg)} {_OPS[c.op]} {_operand(c.value)}"
    if isinstance(c, m.FirstCondition | m.LastCondition):
        return f"{c.kind} {quote_name(c.event)}{_where(c.where)}{_window(c.window, omit_ever=False)}"
    if isinstance(c, m.Sequence):
        s0 = c.steps[0]
        head = f"did {quote_name(s0.event)}{_where(s0.where)}{_window(c.window)}"
        within = f" within {_dur(c.within)}" if c.within else ""
        if not c.followed:
            s1 = c.steps[1]
            return f"{head} not followed by {quote_name(s1.event)}{_where(s1.where)}{within}"
        rest = "".join(f" then {quote_name(s.event)}{_where(s.where)}" for s in c.steps[1:])
        return head + rest + within
    if isinstance(c, m.Correlated):
        a = c.anchor
        return (f"with {a.pick} {quote_name(a.event)}{_where(a.where)} as {quote_name(a.name)}"
                f"{_window(a.window)}: {to_text(c.condition)}")
    if isinstance(c, m.Streak):
        src = "" if c.sent_event == "message_sent" else f" from {quote_name(c.sent_event)}"
        resp = {"message_opened": " not opened", "message_clicked": " not clicked"}.get(
            c.response_event, f" without {quote_name(c.response_event)}")
        return f"last {c.n} messages on {_scalar(c.channel)}{src}{resp}"
    if isinstance(c, m.IntervalRatio):
        gaps = "" if c.min_gaps == 2 else f" over at least {c.min_gaps} gaps"
        return f"since last {quote_name(c.event)}{_where(c.where)} >= {_num_text(c.factor)} * usual gap{gaps}"
    if isinstance(c, m.InSegment):
        return f"in segment {_scalar(c.segment)}"
    raise TypeError(f"unknown condition {c!r}")
