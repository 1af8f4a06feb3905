"""Checks of a segment tree: names against a Catalog (with suggestions), anchors in scope, typed values,
and cycles between saved segments."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from segmint.segments import model as m
from segmint.segments.errors import SegmentError, SegmentSyntaxError, suggest
from segmint.segments.reference import SegmentCycleError


@dataclass
class Catalog:
    """What is known: event names -> property names, and trait names (from taxonomy and/or the store)."""

    events: dict[str, set[str]] = field(default_factory=dict)
    traits: set[str] = field(default_factory=set)

    def merge(self, other: Catalog) -> Catalog:
        """The union of two catalogs."""
        events = {k: set(v) for k, v in self.events.items()}
        for k, v in other.events.items():
            events.setdefault(k, set()).update(v)
        return Catalog(events, self.traits | other.traits)

    @classmethod
    def from_taxonomy(cls, tax: Any) -> Catalog:
        """Events, properties and traits declared in a Taxonomy."""
        return cls({name: set(ev.properties) for name, ev in tax.events.items()}, set(tax.traits))

    @classmethod
    def from_store(cls, store: Any, sample: int = 2000) -> Catalog:
        """Events, top-level property keys and trait keys that have arrived in an EventStore.

        DuckDB reads every key with json_keys; on ClickHouse (whose embedded build lacks JSON key
        functions) the keys come from up to `sample` events per name and `sample` profiles.
        """
        events: dict[str, set[str]] = {}
        for r in store.query("SELECT DISTINCT event FROM events").to_pylist():
            events.setdefault(r["event"], set())
        if getattr(store, "dialect", "duckdb") == "clickhouse":
            sql = f"SELECT event, properties FROM events LIMIT {int(sample)} BY event"
            for r in store.query(sql).to_pylist():
                events[r["event"]].update(_keys(r["properties"]))
            traits: set[str] = set()
            for r in store.query(f"SELECT traits FROM profiles LIMIT {int(sample)}").to_pylist():
                traits.update(_keys(r["traits"]))
            return cls(events, traits)
        sql = "SELECT DISTINCT event, unnest(json_keys(properties)) AS k FROM events"
        for r in store.query(sql).to_pylist():
            events.setdefault(r["event"], set()).add(r["k"])
        traits = {r["k"] for r in store.query(
            "SELECT DISTINCT unnest(json_keys(traits)) AS k FROM profiles").to_pylist()}
        return cls(events, traits)


def _keys(text: Any) -> set[str]:
    try:
        data = json.loads(text) if isinstance(text, str) else text
    except ValueError:
        return set()
    return set(data) if isinstance(data, dict) else set()


@dataclass(frozen=True)
class Issue:
    """One problem in a tree: where (a path into the tree), what, and the suggested fix."""

    where: str
    message: str
    suggestion: str | None = None
    kind: str = "invalid"  # event | property | trait | anchor | invalid
    name: str | None = None

    def __str__(self) -> str:
        hint = f" (did you mean {self.suggestion}?)" if self.suggestion else ""
        return f"{self.where}: {self.message}{hint}"


def _scalar_kind(v: Any) -> str:
    if isinstance(v, bool):
        return "boolean"
    if isinstance(v, int | float):
        return "number"
    return "string"


_OP_TEXT = {"eq": "=", "ne": "!=", "gt": ">", "gte": ">=", "lt": "<", "lte": "<=", "between": "between",
            "in": "in", "not_in": "not in", "contains": "contains", "starts_with": "starts with"}


def typed_issues(op: str, value: Any, value2: Any, numeric_left: bool = False) -> list[str]:
    """Problems with the literal types of one comparison (booleans ordered, contains on numbers, ...)."""
    out: list[str] = []
    for v in (value, value2):
        if isinstance(v, m.Value):
            k = _scalar_kind(v.value)
            if op in ("contains", "starts_with") and k != "string":
                out.append(f"{_OP_TEXT[op]} needs a string, not {v.value!r}")
            elif k == "boolean" and op not in ("eq", "ne"):
                out.append(f"booleans can only be compared with = and !=, not {_OP_TEXT.get(op, op)}")
            elif numeric_left and k != "number":
                out.append(f"an aggregate is a number; compare it with a number, not {v.value!r}")
        elif isinstance(v, m.DateTimeValue) and (numeric_left or op in ("contains", "starts_with")):
            out.append(f"{_OP_TEXT.get(op, op)} cannot take a time here")
    return out


class _Checker:
    def __init__(self, catalog: Catalog | None) -> None:
        self.catalog = catalog
        self.issues: list[Issue] = []

    def add(self, where: str, message: str, **kw: Any) -> None:
        self.issues.append(Issue(where, message, **kw))

    def event(self, name: str, where: str) -> None:
        if self.catalog is None or name in self.catalog.events:
            return
        self.add(where, f"unknown event {name!r}", suggestion=suggest(name, self.catalog.events),
                 kind="event", name=name)

    def prop(self, event: str, path: list[str], where: str) -> None:
        if self.catalog is None or event not in self.catalog.events:
            return
        known = self.catalog.events[event]
        if path[0] not in known:
            self.add(where, f"unknown property {path[0]!r} of {event}", suggestion=suggest(path[0], known),
                     kind="property", name=path[0])

    def trait(self, name: str, where: str) -> None:
        if self.catalog is None or name in self.catalog.traits:
            return
        self.add(where, f"unknown trait {name!r}", suggestion=suggest(name, self.catalog.traits),
                 kind="trait", name=name)

    def operand(self, o: Any, scope: dict[str, str], where: str) -> None:
        if isinstance(o, m.AnchorRef):
            if o.anchor not in scope:
                self.add(where, f"{o.anchor!r} is not bound here (bind it with 'with ... as {o.anchor}:')",
                         suggestion=suggest(o.anchor, scope), kind="anchor", name=o.anchor)
            else:
                self.prop(scope[o.anchor], o.path, where)
        elif isinstance(o, m.TraitRef):
            self.trait(o.name, where)
        elif isinstance(o, m.AggregateExpr):
            self.aggregate(o, scope, where)

    def typed(self, op: str, value: Any, value2: Any, where: str, numeric_left: bool = False) -> None:
        for problem in typed_issues(op, value, value2, numeric_left):
            self.add(where, problem)

    def filters(self, event: str, fs: list[m.PropertyFilter], scope: dict[str, str], where: str) -> None:
        for i, f in enumerate(fs):
            w = f"{where}.where[{i}]"
            self.prop(event, f.path, w)
            self.operand(f.value, scope, w)
            self.operand(f.value2, scope, w)
            self.typed(f.op, f.value, f.value2, w)

    def window(self, w: Any, scope: dict[str, str], where: str, each_ok: bool = False) -> None:
        if isinstance(w, m.AfterAnchorWindow | m.BeforeAnchorWindow) and w.anchor not in scope:
            self.add(where, f"{w.anchor!r} is not bound here (bind it with 'with ... as {w.anchor}:')",
                     suggestion=suggest(w.anchor, scope), kind="anchor", name=w.anchor)
        if isinstance(w, m.EachWindow) and not each_ok:
            self.add(where, "'in each of the last ...' is only for did / did not")

    def aggregate(self, a: m.AggregateExpr, scope: dict[str, str], where: str) -> None:
        self.event(a.event, where)
        if a.property:
            self.prop(a.event, a.property, where)
        self.filters(a.event, a.where, scope, where)
        self.window(a.window, scope, where)

    def check(self, c: Any, scope: dict[str, str], where: str) -> None:
        if isinstance(c, m.And | m.Or):
            for i, item in enumerate(c.items):
                self.check(item, scope, f"{where}.items[{i}]")
        elif isinstance(c, m.Not):
            self.check(c.item, scope, f"{where}.item")
        elif isinstance(c, m.TraitCondition):
            if c.source == "trait":
                self.trait(c.name, where)
            self.operand(c.value, scope, where)
            self.operand(c.value2, scope, where)
            self.typed(c.op, c.value, c.value2, where)
        elif isinstance(c, m.Performed):
            self.event(c.event, where)
            self.filters(c.event, c.where, scope, where)
            self.window(c.window, scope, where, each_ok=True)
        elif isinstance(c, m.AggregateCondition):
            self.aggregate(c.agg, scope, f"{where}.agg")
            self.operand(c.value, scope, where)
            self.operand(c.value2, scope, where)
            self.typed(c.op, c.value, c.value2, where, numeric_left=True)
        elif isinstance(c, m.FirstCondition | m.LastCondition):
            self.event(c.event, where)
            self.filters(c.event, c.where, scope, where)
            self.window(c.window, scope, where)
        elif isinstance(c, m.Sequence):
            for i, s in enumerate(c.steps):
                self.event(s.event, f"{where}.steps[{i}]")
                self.filters(s.event, s.where, scope, f"{where}.steps[{i}]")
            self.window(c.window, scope, where)
        elif isinstance(c, m.Correlated):
            a = c.anchor
            self.event(a.event, f"{where}.anchor")
            self.filters(a.event, a.where, scope, f"{where}.anchor")
            self.window(a.window, scope, f"{where}.anchor")
            if a.name in scope:
                self.add(f"{where}.anchor", f"{a.name!r} is already bound by an enclosing 'with'; "
                         "pick another name", kind="anchor", name=a.name)
            self.check(c.condition, {**scope, a.name: a.event}, f"{where}.condition")
        elif isinstance(c, m.Streak):
            self.event(c.sent_event, where)
            self.event(c.response_event, where)
        elif isinstance(c, m.IntervalRatio):
            self.event(c.event, where)
            self.filters(c.event, c.where, scope, where)


def validate(tree: m.Condition, catalog: Catalog | None = None) -> list[Issue]:
    """Every problem in a tree: unknown events/properties/traits (when a catalog is given, with
    suggestions), anchors used outside their `with`, and values of the wrong type."""
    ch = _Checker(catalog)
    ch.check(tree, {}, "definition")
    return ch.issues


def ensure_valid(tree: m.Condition, catalog: Catalog | None = None) -> None:
    """Raise SegmentError listing every issue, if there is any."""
    issues = validate(tree, catalog)
    if issues:
        raise SegmentError(issues, where=issues[0].where)


def check_text(text: str, tree: m.Condition, uses: list[Any], catalog: Catalog | None) -> None:
    """Raise SegmentSyntaxError at the first problem in parsed text, pointing at the offending name."""
    issues = validate(tree, catalog)
    if not issues:
        return
    first = issues[0]
    for u in uses:
        if first.kind == "invalid" and u.kind == "typed" and u.name == first.message:
            raise SegmentSyntaxError(first.message, text=text, line=u.line, column=u.column)
        if first.name is not None and u.name == first.name and u.kind == first.kind:
            raise SegmentSyntaxError(first.message, text=text, line=u.line, column=u.column,
                                     width=len(u.name), suggestion=first.suggestion)
    raise SegmentSyntaxError(first.message, text=text, line=1, column=1, suggestion=first.suggestion)


def segment_refs(tree: Any) -> Iterator[str]:
    """Names of the saved segments a tree refers to (in segment "...")."""
    if isinstance(tree, m.InSegment):
        yield tree.segment
    elif isinstance(tree, m.And | m.Or):
        for i in tree.items:
            yield from segment_refs(i)
    elif isinstance(tree, m.Not):
        yield from segment_refs(tree.item)
    elif isinstance(tree, m.Correlated):
        yield from segment_refs(tree.condition)


def check_cycles(name: str, tree: m.Condition, resolve: Callable[[str], m.Condition]) -> None:
    """Raise SegmentCycleError when saving `name` with this tree would make segments include themselves."""

    def walk(t: m.Condition, path: tuple[str, ...]) -> None:
        for ref in segment_refs(t):
            if ref in path:
                raise SegmentCycleError("segments include each other: " + " -> ".join([*path, ref]),
                                        where=f"segment {name!r}")
            walk(resolve(ref), (*path, ref))

    walk(tree, (name,))


def catalog_from_json(text: str) -> Catalog:
    """A catalog from JSON {"events": {name: [props]}, "traits": [names]} (tests, CLI)."""
    data = json.loads(text)
    return Catalog({k: set(v) for k, v in data.get("events", {}).items()}, set(data.get("traits", [])))
