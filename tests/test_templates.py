"""Liquid templates: variables, Korean filters, strict undefined -> suppression, escaping, limits, errors."""

from __future__ import annotations

import pytest

from segmint.campaigns.korean import josa, krw
from segmint.campaigns.templates import build_variables, compile_template, render, render_string
from segmint.errors import InvalidInput


def _vars(**traits):
    return build_variables(
        user_id="u1",
        traits={"name": "김민지", **traits},
        computed={"ltv": 123456},
        event={"product_name": "립스틱", "price": 15000},
        event_name="cart_added",
        campaign={"id": "c1", "name": "장바구니"},
        unsubscribe_url="https://shop.example/u?c=c1&u=u1",
    )


@pytest.mark.parametrize(
    ("word", "pair", "expected"),
    [
        ("샴푸", "을/를", "샴푸를"),
        ("립스틱", "을/를", "립스틱을"),
        ("향수", "를/을", "향수를"),
        ("사과", "은/는", "사과는"),
        ("수박", "은/는", "수박은"),
        ("고양이", "이/가", "고양이가"),
        ("책", "이/가", "책이"),
        ("친구", "과/와", "친구와"),
        ("선생님", "과/와", "선생님과"),
        ("서울", "으로/로", "서울로"),
        ("부산", "으로/로", "부산으로"),
        ("제주", "으로/로", "제주로"),
        ("서울", "을/를", "서울을"),
        ("쿠폰 1", "을/를", "쿠폰 1을"),
        ("2", "을/를", "2를"),
        ("3", "이/가", "3이"),
        ("10", "이/가", "10이"),
        ("7", "으로/로", "7로"),
        ("LG", "은/는", "LG는"),
        ("SK", "이/가", "SK가"),
        ("M", "을/를", "M을"),
        ("Apple", "으로/로", "Apple로"),
        ("Apple", "을/를", "Apple을"),
        ("game", "이/가", "game이"),
        ("iPhone", "을/를", "iPhone을"),
        ("Nike", "을/를", "Nike를"),
        ("샴푸(500ml)", "을/를", "샴푸(500ml)를"),
        ("'향수'", "이/가", "'향수'가"),
        ("★", "을/를", "★을(를)"),
    ],
)
def test_josa(word: str, pair: str, expected: str) -> None:
    assert josa(word, pair) == expected


def test_josa_unknown_pair() -> None:
    with pytest.raises(InvalidInput, match="unknown particle pair"):
        josa("샴푸", "의/에")


def test_krw() -> None:
    assert krw(15000) == "15,000원"
    assert krw("1234567") == "1,234,567원"
    assert krw(999.5) == "1,000원"
    assert krw(0) == "0원"
    with pytest.raises(InvalidInput, match="not an amount"):
        krw("abc")


def test_variables_and_filters() -> None:
    out = render_string(
        '{{ user.name }}님, 장바구니에 담은 {{ event.product_name | josa: "을/를" }} {{ event.price | krw }}에! '
        "{{ user.traits.name }} {{ user.computed.ltv | krw }} {{ event.event }} {{ campaign.id }} {{ user.id }}",
        _vars(),
    )
    assert out.ok
    assert out.parts["body"] == "김민지님, 장바구니에 담은 립스틱을 15,000원에! 김민지 123,456원 cart_added c1 u1"


def test_local_date_uses_user_zone_default_seoul() -> None:
    source = '{{ "2026-01-01T16:00:00Z" | local_date: "%Y년 %m월 %d일 %H시" }}'
    assert render_string(source, _vars()).parts["body"] == "2026년 01월 02일 01시"
    la = render_string(source, _vars(timezone="America/Los_Angeles")).parts["body"]
    assert la == "2026년 01월 01일 08시"


def test_missing_variable_suppresses_send() -> None:
    out = render_string("Hello {{ user.nickname }},", _vars())
    assert not out.ok
    assert out.suppressed == "missing variable user.nickname (in body)"
    assert out.parts == {}


def test_default_fallback_is_used() -> None:
    out = render_string('Hello {{ user.nickname | default: "고객" }},', _vars())
    assert out.parts["body"] == "Hello 고객,"


def test_missing_event_without_trigger() -> None:
    variables = build_variables(user_id="u1", traits={"name": "a"})
    assert render_string("{{ event.product_name }}", variables).suppressed.startswith("missing variable event")


def test_html_autoescaped_text_not() -> None:
    variables = _vars(name="<script>x</script>")
    html = compile_template("<p>{{ user.name }}</p><a href='{{ unsubscribe_url }}'>x</a>", name="html", html=True)
    text = compile_template("{{ user.name }}", name="text")
    out = render({"html": html, "text": text}, variables)
    assert out.parts["html"] == "<p>&lt;script&gt;x&lt;/script&gt;</p><a href='https://shop.example/u?c=c1&amp;u=u1'>x</a>"
    assert out.parts["text"] == "<script>x</script>"


def test_syntax_error_has_line_and_column() -> None:
    with pytest.raises(InvalidInput) as info:
        compile_template("안녕하세요\n  {% foo %}", name="subject")
    assert info.value.where == "subject:2:6"
    assert "unexpected tag 'foo'" in info.value.message


def test_resource_limits_suppress() -> None:
    loop = render_string("{% for i in (1..100000) %}x{% endfor %}", _vars())
    assert loop.suppressed is not None and "loop iteration limit" in loop.suppressed
    big = "{% for i in (1..5000) %}" + "x" * 200 + "{% endfor %}"
    out = render_string(big, _vars())
    assert out.suppressed is not None and "output stream limit" in out.suppressed


def test_bad_filter_argument_suppresses() -> None:
    out = render_string("{{ user.name | krw }}", _vars())
    assert out.suppressed is not None and "not an amount" in out.suppressed


def test_unknown_filter_is_a_compile_error_with_position() -> None:
    with pytest.raises(InvalidInput) as info:
        compile_template("안녕\n{{ event.price | won }}", name="text")
    assert info.value.where == "text:2:18" and "unknown filter 'won'" in info.value.message


def test_template_lists_its_variables() -> None:
    template = compile_template('{{ user.name | default: "고객" }} {{ event.price | krw }} {{ user.name }}')
    assert template.variables() == ["event.price", "user.name"]


def test_missing_variable_can_be_tested_in_conditions() -> None:
    variables = _vars()
    source = "{% if user.nickname %}{{ user.nickname }}{% else %}고객{% endif %}님"
    assert render_string(source, variables).parts["body"] == "고객님"
    assert render_string("{% if user.nickname == nil %}없음{% endif %}", variables).parts["body"] == "없음"
    assert render_string("{% if user.name %}{{ user.name }}{% endif %}", variables).parts["body"] == "김민지"
    assert render_string('{{ event.coupon | default: "없음" }}', variables).parts["body"] == "없음"
    printed = render_string("{{ user.nickname | upcase }}", variables)
    assert printed.suppressed == "missing variable user.nickname (in body)"


def test_cart_reminder_end_to_end_to_outbox(tmp_path) -> None:
    import orjson

    from segmint.channels.base import OutboundMessage
    from segmint.channels.outbox import OutboxChannel

    parts = {
        "subject": compile_template('{{ user.name | default: "고객" }}님, 장바구니를 확인하세요', name="subject"),
        "html": compile_template(
            '<p>장바구니에 담은 {{ event.product_name | josa: "이/가" }} 기다려요 ({{ event.price | krw }})</p>'
            '<a href="{{ unsubscribe_url }}">수신거부</a>',
            name="html",
            html=True,
        ),
        "text": compile_template('장바구니에 담은 {{ event.product_name | josa: "이/가" }} 기다려요', name="text"),
    }
    rendered = render(parts, _vars())
    assert rendered.ok
    message = OutboundMessage(message_id="c1:u1", user_id="u1", to="minji@shop.example", campaign_id="c1",
                              subject=rendered.parts["subject"], html=rendered.parts["html"],
                              text=rendered.parts["text"], unsubscribe_url="https://shop.example/u?c=c1&u=u1")
    assert OutboxChannel(tmp_path).send(message).ok
    record = orjson.loads((tmp_path / "outbox.jsonl").read_bytes())
    assert record["subject"] == "김민지님, 장바구니를 확인하세요"
    assert record["text"] == "장바구니에 담은 립스틱이 기다려요"
    assert record["html"] == (
        '<p>장바구니에 담은 립스틱이 기다려요 (15,000원)</p><a href="https://shop.example/u?c=c1&amp;u=u1">수신거부</a>'
    )
