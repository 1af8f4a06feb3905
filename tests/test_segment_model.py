"""The segment condition tree: validation rules, JSON round trip, and the committed JSON Schema."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from pydantic import ValidationError

from segmint.segments import model as m
from segmint.segments.validate import Catalog, check_cycles, ensure_valid, validate

ROOT = Path(__file__).resolve().parents[1]


def test_committed_schema_is_current() -> None:
    committed = json.loads((ROOT / "docs" / "segment.schema.json").read_text(encoding="utf-8"))
    assert committed == json.loads(json.dumps(m.segment_json_schema()))
    kinds = {
        d["properties"]["kind"]["const"]
        for d in committed["$defs"].values()
        if "kind" in d.get("properties", {}) and "const" in d["properties"]["kind"]
    }
    assert {
        "and",
        "or",
        "not",
        "trait",
        "performed",
        "aggregate",
        "first",
        "last",
        "sequence",
        "with",
        "streak",
        "interval_ratio",
        "in_segment",
        "ever",
        "ago",
        "between",
        "after",
        "before",
        "each",
        "calendar",
        "value",
        "values",
        "datetime",
        "anchor_ref",
        "trait_ref",
        "aggregate_expr",
    } <= kinds


def test_grammar_in_docs_is_the_grammar_file() -> None:
    grammar = (ROOT / "src" / "segmint" / "segments" / "segment.lark").read_text(encoding="utf-8").strip()
    assert grammar in (ROOT / "docs" / "segment-language.md").read_text(encoding="utf-8")


def test_json_round_trip_keeps_types() -> None:
    tree = m.condition_from_json(
        {
            "kind": "and",
            "items": [
                {
                    "kind": "performed",
                    "event": "product_viewed",
                    "where": [
                        {"path": ["price"], "op": "gte", "value": {"kind": "value", "value": 2.0}},
                        {"path": ["category"], "op": "in", "value": {"kind": "values", "values": ["뷰티"]}},
                    ],
                    "count": {"op": "gte", "n": 2},
                    "window": {"kind": "last", "duration": {"amount": 30, "unit": "days"}},
                },
                {"kind": "not", "item": {"kind": "in_segment", "segment": "VIP"}},
            ],
        }
    )
    again = m.condition_from_json(json.loads(json.dumps(tree.model_dump(mode="json"))))
    assert again == tree
    assert isinstance(again.items[0].where[0].value.value, float)
    for v in (1, True, "1", 1.5):
        assert m.Value.model_validate_json(m.Value(value=v).model_dump_json()).value.__class__ is type(v)


@pytest.mark.parametrize(
    "bad",
    [
        {"kind": "and", "items": [{"kind": "performed", "event": "a"}]},  # and needs two items
        {"kind": "performed", "event": "a", "count": {"op": "between", "n": 3}},
        {"kind": "performed", "event": "a", "count": {"op": "between", "n": 3, "n2": 1}},
        {"kind": "performed", "event": "a", "where": [{"path": ["p"], "op": "eq"}]},
        {
            "kind": "performed",
            "event": "a",
            "where": [{"path": ["p"], "op": "in", "value": {"kind": "value", "value": 1}}],
        },
        {
            "kind": "performed",
            "event": "a",
            "where": [{"path": ["p"], "op": "exists", "value": {"kind": "value", "value": 1}}],
        },
        {
            "kind": "performed",
            "event": "a",
            "where": [{"path": ["p"], "op": "in", "value": {"kind": "values", "values": [1, "x"]}}],
        },
        {"kind": "performed", "event": "a", "window": {"kind": "between"}},
        {"kind": "trait", "name": "nope", "source": "profile", "op": "exists"},
        {"kind": "trait", "name": "d", "op": "within_last"},
        {
            "kind": "aggregate",
            "agg": {"kind": "aggregate_expr", "fn": "sum", "event": "a"},
            "op": "gt",
            "value": {"kind": "value", "value": 1},
        },
        {"kind": "sequence", "steps": [{"event": "a"}, {"event": "b"}, {"event": "c"}], "followed": False},
        {"kind": "streak", "channel": "push", "n": 0},
        {"kind": "performed", "event": "a", "unknown_field": 1},
        {"kind": "what", "event": "a"},
    ],
)
def test_invalid_trees_are_rejected(bad: dict) -> None:
    with pytest.raises(ValidationError):
        m.condition_from_json(bad)


def test_non_finite_numbers_rejected() -> None:
    with pytest.raises(ValidationError):
        m.Value(value=float("nan"))


def test_times_become_naive_utc() -> None:
    kst = timezone(timedelta(hours=9))
    w = m.BetweenWindow(start=datetime(2026, 3, 1, 9, tzinfo=kst))
    assert w.start == datetime(2026, 3, 1, 0, 0)
    assert m.DateTimeValue(value=datetime(2026, 3, 1, tzinfo=UTC)).value.tzinfo is None


def test_month_is_thirty_days() -> None:
    assert m.Duration(amount=1, unit="months").to_timedelta() == timedelta(days=30)
    assert m.Duration(amount=2, unit="weeks").to_timedelta() == timedelta(days=14)


def test_segment_name_rules() -> None:
    seg = m.Segment(name="장바구니 리마인드", definition=m.Performed(event="cart_added"))
    assert seg.dynamic
    with pytest.raises(ValidationError):
        m.Segment(name=" padded", definition=m.Performed(event="x"))
    with pytest.raises(ValidationError):
        m.Segment(name="", definition=m.Performed(event="x"))


def test_validate_reports_every_issue_with_suggestions() -> None:
    cat = Catalog({"product_viewed": {"category", "price"}, "cart_added": {"category"}}, {"age"})
    tree = m.And(
        items=[
            m.Performed(event="product_view"),
            m.Performed(
                event="product_viewed",
                where=[m.PropertyFilter(path=["categry"], op="eq", value=m.Value(value="뷰티"))],
            ),
            m.TraitCondition(name="aeg", op="gt", value=m.Value(value=3)),
            m.Performed(event="product_viewed", window=m.AfterAnchorWindow(anchor="cart")),
            m.Performed(
                event="product_viewed",
                where=[m.PropertyFilter(path=["price"], op="gt", value=m.Value(value=True))],
            ),
        ]
    )
    issues = validate(tree, cat)
    assert [(i.kind, i.suggestion) for i in issues] == [
        ("event", "product_viewed"),
        ("property", "category"),
        ("trait", "age"),
        ("anchor", None),
        ("invalid", None),
    ]
    assert issues[0].where == "definition.items[0]"
    with pytest.raises(Exception, match="unknown event 'product_view'"):
        ensure_valid(tree, cat)
    assert validate(tree.items[0]) == []  # no catalog: names are not checked


def test_anchor_scope_and_shadowing() -> None:
    inner = m.Performed(
        event="product_viewed",
        where=[
            m.PropertyFilter(path=["category"], op="eq", value=m.AnchorRef(anchor="cart", path=["category"]))
        ],
    )
    ok = m.Correlated(anchor=m.Anchor(name="cart", pick="last", event="cart_added"), condition=inner)
    assert validate(ok) == []
    shadow = m.Correlated(anchor=m.Anchor(name="cart", pick="any", event="cart_added"), condition=ok)
    assert [i.kind for i in validate(shadow)] == ["anchor"]


def test_check_cycles() -> None:
    saved = {
        "a": m.InSegment(segment="b"),
        "b": m.Not(item=m.InSegment(segment="c")),
        "c": m.Performed(event="x"),
    }
    check_cycles("a", saved["a"], saved.__getitem__)
    with pytest.raises(Exception, match="c -> a -> b -> c"):
        check_cycles("c", m.InSegment(segment="a"), saved.__getitem__)
