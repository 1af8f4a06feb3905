"""The fast text renderer gives exactly Liquid's output and errors (differential test against python-liquid)."""

from __future__ import annotations

import itertools
from typing import Any

from segmint.campaigns.templates import Rendered, build_variables, compile_template, render

TEMPLATES = [
    "{{ user.name }}님을 위한 봄 세일",
    "{{ user.name | josa: '은/는' }} 오늘 {{ 15000 | krw }} 할인",
    "{{ user.nick | default: '고객' }}님 {{ event.product_name | josa: '이/가' }} 기다려요",
    "  {{- user.name -}}  \n{{ user.tier | upcase }}!",
    "{{ user.points | krw }} / {{ user.points | default: 5 }} / {{ user.name | default }}",
    "{{ user.tags.size }} {{ user.tags.first }}",
    "{{ user.name.size }}",
    "{{ user.missing }}",
    "{{ event.price | krw }} {{ 'x' | append: user.name }}",
    "{{ user.name | prepend: '[' | append: ']' | downcase }}",
    "{% if user.vip %}VIP {% endif %}{{ user.name }}",  # a tag: not fast, still correct
    "{{ user.flag }} {{ user.ratio }} {{ user.none | default: '없음' }}",
    "{{ user.traits.name | josa: '을/를' }} {{ user.computed.ltv | krw }}",
]

USERS: list[dict[str, Any]] = [
    {"name": "민수", "tier": "gold", "points": 1200, "tags": ["a", "b"], "vip": True, "flag": True, "ratio": 0.5},
    {"name": "", "tier": "silver", "points": 0, "tags": [], "none": None},
    {"name": "Kim", "points": "not a number", "flag": False},
    {"nick": "단골", "name": "지현", "points": -5, "tier": "<b>"},
    {},
]
EVENTS: list[dict[str, Any] | None] = [None, {"product_name": "샴푸", "price": 15000},
                                       {"product_name": "", "price": "x"}]


def _liquid(source: str, variables: dict[str, Any]) -> Rendered:
    """The same template through python-liquid only (the fast form switched off)."""
    t = compile_template(source)
    plain = type(t)(name=t.name, source=t.source, html=t.html, _template=t._template)
    assert plain._fast is None
    return render({"body": plain}, variables)


def test_fast_renderer_matches_liquid_exactly() -> None:
    fast_used = 0
    for source, traits, event in itertools.product(TEMPLATES, USERS, EVENTS):
        variables = build_variables(user_id="u1", traits=traits, computed={"ltv": 90000}, event=event,
                                    campaign={"id": "c", "name": "n"})
        t = compile_template(source)
        fast_used += t._fast is not None
        got = render({"body": t}, variables)
        want = _liquid(source, variables)
        assert got == want, (source, traits, event, got, want)
    assert fast_used > len(TEMPLATES) * len(USERS) * len(EVENTS) // 2  # most of these take the fast path


def test_tags_and_html_use_liquid() -> None:
    assert compile_template("{% if user.vip %}x{% endif %}")._fast is None
    assert compile_template("{{ user.name }}", html=True)._fast is None
    assert compile_template("{{ user.name | josa: '은/는' }}")._fast is not None


def test_liquid_renders_are_memoized_by_the_values_they_read() -> None:
    t = compile_template("{% if user.vip %}VIP {% endif %}{{ user.tier | upcase }} {{ event.product_name }}")
    assert t._fast is None and t._memo_paths is not None
    seen = []
    for traits, event in itertools.product(USERS, EVENTS):
        variables = build_variables(user_id="u", traits=traits, event=event)
        got = render({"body": t}, variables)
        assert got == _liquid(t.source, variables)  # a memo hit renders exactly what Liquid would
        seen.append(got)
    assert 0 < len(t._memo) < len(seen)  # repeated combinations came from the memo
    # 1 and True hash alike but render differently: the key keeps the type
    flag = compile_template("{% if true %}{{ user.flag }}{% endif %}")
    assert render({"b": flag}, build_variables(user_id="u", traits={"flag": 1})).parts["b"] == "1"
    assert render({"b": flag}, build_variables(user_id="u", traits={"flag": True})).parts["b"] == "true"
    # `.size` of a string, a loop over a list, and the clock are never served from the memo
    sized = compile_template("{% if true %}{{ user.name.size }}{% endif %}")
    assert [render({"b": sized}, build_variables(user_id="u", traits={"name": n})).parts["b"]
            for n in ("ab", "abc")] == ["2", "3"]
    looped = compile_template("{% for x in user.tags %}{{ x }}{% endfor %}")
    assert [render({"b": looped}, build_variables(user_id="u", traits={"tags": tags})).parts["b"]
            for tags in (["a"], ["b", "c"])] == ["a", "bc"]
    assert compile_template("{{ 'now' | date: '%Y' }}")._memo_paths is None
