"""The segment text language: round trip with the tree, readable examples, and errors with carets."""

from __future__ import annotations

import os
from datetime import datetime

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from segment_strategies import TREES
from segmint.errors import SegmintError
from segmint.segments import model as m
from segmint.segments.dsl import parse, parse_with_names, quote_name, to_text
from segmint.segments.errors import SegmentSyntaxError
from segmint.segments.validate import Catalog


@settings(max_examples=int(os.environ.get("SEGMENT_ROUNDTRIP_EXAMPLES", "400")), deadline=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(TREES)
def test_round_trip_random_trees(tree: m.Condition) -> None:
    text = to_text(tree)
    assert parse_with_names(text)[0] == tree, text
    # and through JSON too
    assert m.condition_from_json(tree.model_dump(mode="json")) == tree


def test_brief_example_reads_as_intended() -> None:
    t = parse('did product_viewed where category = "뷰티" at least 2 times in last 30 days '
              "and not did coupon_downloaded ever and trait age between 20 and 29")
    assert t == m.And(items=[
        m.Performed(event="product_viewed",
                    where=[m.PropertyFilter(path=["category"], op="eq", value=m.Value(value="뷰티"))],
                    count=m.CountSpec(op="gte", n=2),
                    window=m.LastWindow(duration=m.Duration(amount=30, unit="days"))),
        m.Not(item=m.Performed(event="coupon_downloaded")),
        m.TraitCondition(name="age", op="between", value=m.Value(value=20), value2=m.Value(value=29)),
    ])


def test_correlated_example() -> None:
    t = parse("with last cart_added as cart at least 3 days ago: did product_viewed where category = "
              "cart.category at least 2 times after cart and not did review_viewed where product_id = "
              "cart.product_id after cart")
    assert isinstance(t, m.Correlated)
    assert t.anchor == m.Anchor(name="cart", pick="last", event="cart_added",
                                window=m.AgoWindow(duration=m.Duration(amount=3, unit="days")))
    body = t.condition
    assert isinstance(body, m.And) and len(body.items) == 2
    viewed = body.items[0]
    assert viewed.where[0].value == m.AnchorRef(anchor="cart", path=["category"])
    assert viewed.window == m.AfterAnchorWindow(anchor="cart")


def test_precedence_not_and_or() -> None:
    t = parse("not did a or did b and did c")
    assert t == m.Or(items=[m.Not(item=m.Performed(event="a")),
                            m.And(items=[m.Performed(event="b"), m.Performed(event="c")])])
    assert to_text(t) == "not did a or (did b and did c)"


def test_with_inside_and_needs_parentheses() -> None:
    t = parse("(with any cart_added as c: did order_completed after c) and trait age > 20")
    assert isinstance(t, m.And) and isinstance(t.items[0], m.Correlated)
    with pytest.raises(SegmentSyntaxError):
        parse("trait age > 20 and with any cart_added as c: did order_completed after c")


def test_korean_and_quoted_names() -> None:
    t = parse('did `상품 조회` where `가격 (원)` >= 10000, 옵션.색상 = "빨강"')
    assert t.event == "상품 조회"
    assert t.where[0].path == ["가격 (원)"] and t.where[1].path == ["옵션", "색상"]
    assert quote_name("ever") == "`ever`" and quote_name("상품") == "상품" and quote_name("a`b") == "`a\\`b`"
    assert parse("did `ever` ever") == m.Performed(event="ever")


def test_literal_types() -> None:
    f = parse('did x where a = 1, b = 1.5, c = "1", d = true, e = 2026-03-01, g in [1, 2]').where
    assert [type(x.value).__name__ for x in f] == ["Value", "Value", "Value", "Value", "DateTimeValue",
                                                    "ValueList"]
    assert f[0].value.value == 1 and isinstance(f[0].value.value, int)
    assert isinstance(f[1].value.value, float) and f[2].value.value == "1" and f[3].value.value is True
    assert f[4].value.value == datetime(2026, 3, 1)


def test_every_form_parses() -> None:
    forms = [
        'did not app_opened in last 30 days excluding new profiles',
        'since last app_opened >= 2 * usual gap over at least 3 gaps',
        'last 5 messages on "push" not opened',
        'last 3 messages on "email" not clicked',
        'sum revenue of order_completed in last 90 days >= 100000',
        'count distinct category of product_viewed in last 30 days between 2 and 5',
        'did product_viewed where price >= 2 * (avg cart_value of checkout_started)',
        'did cart_added in last 7 days not followed by order_completed within 1 day',
        'did product_viewed then cart_added then checkout_started within 2 hours',
        'profile first_seen in last 7 days', 'profile timezone != "Asia/Seoul"',
        'not in segment "VIP 고객"', 'first app_installed in last 7 days',
        'last order_completed at least 1 month ago',
        'did $page where name = "이벤트 페이지" at least 3 times today in workspace zone',
        'did app_opened in each of the last 4 weeks', 'did app_opened this month',
        'did order_completed from 2026-03-01 to 2026-04-01', 'did order_completed since 2026-03-01T09:30',
        'trait region in ["서울", "경기"]', 'trait email exists', 'trait name starts with "김"',
        'trait signup_date at least 30 days ago', 'trait age > trait min_age',
    ]
    for text in forms:
        tree = parse(text)
        assert parse(to_text(tree)) == tree, text


def test_syntax_error_has_line_column_and_caret() -> None:
    with pytest.raises(SegmentSyntaxError) as ei:
        parse("did product_viewed\n  at leest 2 times")
    e = ei.value
    assert (e.line, e.column) == (2, 6)
    assert "leest" in e.message and '"least"' in e.message
    assert e.display.splitlines()[1].index("^") == 2 + 5
    assert str(e).startswith("2:6: ")
    assert isinstance(e, SegmintError)


def test_words_of_the_language_as_names() -> None:
    # where only a name can come, a word of the language is read as a name; the printer quotes it anyway
    t = parse("did x where not = 1")
    assert t.where[0].path == ["not"]
    assert to_text(t) == "did x where `not` = 1"


def test_end_of_text_error() -> None:
    with pytest.raises(SegmentSyntaxError, match="ends too early") as ei:
        parse("did x and")
    assert ei.value.column == 10


def test_model_errors_become_syntax_errors() -> None:
    with pytest.raises(SegmentSyntaxError, match="smaller than the first"):
        parse("did x between 5 and 2 times")
    with pytest.raises(SegmentSyntaxError, match="one type"):
        parse('did x where a in [1, "b"]')


CATALOG = Catalog({"product_viewed": {"category", "price", "product_id"}, "coupon_downloaded": {"coupon_id"},
                   "cart_added": {"category", "product_id"}}, {"age", "gender"})


@pytest.mark.parametrize(("text", "pos", "suggestion"), [
    ("did prodct_viewed at least 2 times", (1, 5), "product_viewed"),
    ('did product_viewed where categry = "뷰티"', (1, 26), "category"),
    ("trait agee > 3", (1, 7), "age"),
    ("with last cart_added as cart: did product_viewed where category = cart.categori", (1, 72), "category"),
])
def test_unknown_names_with_suggestions(text: str, pos: tuple[int, int], suggestion: str) -> None:
    with pytest.raises(SegmentSyntaxError) as ei:
        parse(text, CATALOG)
    assert (ei.value.line, ei.value.column) == pos
    assert ei.value.suggestion == suggestion
    assert f"did you mean {suggestion}?" in str(ei.value)


def test_unbound_anchor_is_an_error() -> None:
    with pytest.raises(SegmentSyntaxError, match="'cart' is not bound"):
        parse("did product_viewed where category = cart.category")
    with pytest.raises(SegmentSyntaxError, match="'cart' is not bound"):
        parse("did product_viewed after cart")


def test_known_names_pass() -> None:
    t = parse('did product_viewed where category = "뷰티" and trait gender = "F"', CATALOG)
    assert isinstance(t, m.And)


@pytest.mark.parametrize(("text", "pos", "message"), [
    ("did product_viewed where price > true", (1, 26), "booleans can only be compared with = and !="),
    ("trait age contains 3", (1, 7), "contains needs a string"),
    ('did x and\n  sum revenue of order_completed > "a"', (2, 3), "an aggregate is a number"),
])
def test_mistyped_comparisons_point_at_the_place(text: str, pos: tuple[int, int], message: str) -> None:
    with pytest.raises(SegmentSyntaxError, match=message) as ei:
        parse(text)
    assert (ei.value.line, ei.value.column) == pos


_TOKENS = ["did", "not", "with", "as", "any", "last", "first", "at", "least", "most", "times", "in", "days",
           "where", "=", ">=", "between", "and", "or", "(", ")", ":", ",", "3", "2.5", '"뷰티"', "`x y`",
           "cart",
           "cart.category", "after", "within", "then", "followed", "by", "trait", "age", "sum", "of", "price",
           "2026-03-01", "from", "to", "messages", "on", "opened", "since", "*", "usual", "gap", "segment",
           "[", "]", "exists", "`", '"', "\\", "#", "-", "0", "99999999999999999999"]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(_TOKENS), max_size=14))
def test_any_text_parses_or_fails_cleanly(words: list[str]) -> None:
    text = " ".join(words)
    try:
        tree = parse(text)
    except SegmentSyntaxError as e:
        assert e.line >= 1 and e.column >= 1 and "^" in e.display
    else:
        assert parse(to_text(tree)) == tree


@pytest.mark.parametrize(("text", "message"), [
    ("did x in last 99999999999 days", "at most 1000 years"),
    ('did x where a = "\\q"', "Invalid"),
    ("did x since 2026-13-45", "month must be in 1..12"),
    ("did x where a = 99999999999999999999999999", "64 bits"),
])
def test_bad_values_are_syntax_errors(text: str, message: str) -> None:
    with pytest.raises(SegmentSyntaxError, match=message):
        parse(text)
