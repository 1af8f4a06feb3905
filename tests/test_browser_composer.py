"""The composer's KakaoTalk fields and goal filters in a real headless Chromium (Playwright) against a real
`segmint serve` on a small demo shop: inline refusals next to their fields, the NHN request in the preview,
and goal conditions built with the segment builder's filter rows, saved into the campaign."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from playwright import sync_api as playwright_api

from browser_util import korean_page, shot, unlabelled
from segmint.appdb.users import create_user
from segmint.demo.generate import DemoSpec
from segmint.demo.load import build_demo
from segmint.segments import saved
from server_util import Server

EMAIL, PASSWORD = "marketer@shop.kr", "카카오-작성-1234"
expect = playwright_api.expect
expect.set_options(timeout=20_000)  # a loaded 2-core machine renders slowly; failures still fail


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, dict[str, Any]]]:
    """A small demo shop with one saved segment and a marketer, served by a real `segmint serve`."""
    now = datetime.now(UTC).replace(tzinfo=None, microsecond=0)
    ws, _info = build_demo(tmp_path_factory.mktemp("uicomposer") / "ws", DemoSpec(users=80, days=15, now=now),
                           progress=False)
    saved.create_segment(ws.appdb, "여성", 'trait gender = "F"')
    create_user(ws.appdb, EMAIL, PASSWORD, display_name="김마케터")
    row = ws.store.query("SELECT user_id, traits FROM profiles WHERE json_extract_string(traits, '$.gender') = 'F' "
                         "ORDER BY user_id LIMIT 1").to_pylist()[0]
    facts = {"user": row["user_id"], **orjson.loads(row["traits"])}
    token, path = ws.config.admin_token, ws.path
    ws.appdb.dispose()
    ws.close()
    server = Server(path, token).start()
    yield server, facts
    server.stop()


def _sign_in(page: Any, server: Server, lang: str = "ko") -> None:
    page.goto(server.url + "/campaigns/new")
    page.locator("#email").fill(EMAIL)
    page.locator("#password").fill(PASSWORD)
    page.locator("#login-submit").click()
    page.wait_for_url(server.url + "/campaigns/new")
    expect(page.locator("#composer")).to_have_attribute("data-ready", "1")


def test_alimtalk_fields_inline_checks_and_request_preview(served, browser) -> None:  # type: ignore[no-untyped-def]
    server, facts = served
    ctx, page, errors = korean_page(browser)
    _sign_in(page, server)
    page.get_by_label("캠페인 ID").fill("order-notice")
    page.get_by_role("button", name="변형 삭제 B").click()
    page.get_by_label("대상 세그먼트 (하나 이상에 속한 고객)").select_option(["여성"])
    # one saved segment: the multi-selects still show as lists, not a dropdown reading "0 selected"
    assert page.locator("#c-exclude").evaluate("(e) => [e.size, e.offsetHeight > 30]") == [2, True]
    page.get_by_label("야간 방해금지 시간(21:00-08:00)에는 보내지 않음").uncheck()
    page.get_by_label("채널", exact=True).select_option("kakao")
    # advertising (the default purpose) + AlimTalk: refused next to the channel, with the reason
    expect(page.locator("#c-channel-err")).to_contain_text("알림톡은 정보성 메시지 전용")
    expect(page.locator("#c-channel")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#v0-kakao fieldset.kakao legend")).to_have_text("카카오 알림톡 (정보성 템플릿)")
    page.get_by_label("정보성").check()
    expect(page.locator("#c-channel-err")).to_be_hidden()
    code = page.locator("#v0-kakao-template")
    expect(code).to_have_attribute("aria-invalid", "true")
    expect(page.locator('p.field-err[data-check="template_code"]')).to_have_text(
        "알림톡은 승인된 템플릿 코드가 있어야 보낼 수 있습니다.")
    # saving is refused while a field is wrong, and focus goes to it
    page.get_by_role("button", name="저장 (초안)").click()
    expect(page.locator("#status")).to_contain_text("고칠 항목이 있습니다")
    expect(code).to_be_focused()

    code.fill("ORDER_NOTICE_01")
    page.get_by_role("button", name="변수 추가").click()
    expect(page.locator("#v0-kakao-param0-name")).to_be_focused()
    page.keyboard.type("고객명")
    page.get_by_label("값 (Liquid)").fill("{{ user.name }}")
    page.get_by_role("button", name="버튼 추가").click()
    page.locator("#v0-kakao-btn0-name").fill("주문 확인")
    expect(page.locator('p.field-err[data-check="button_wl"]')).to_have_text(
        "웹 링크 버튼에는 모바일 URL이 필요합니다.")
    page.get_by_label("모바일 URL").fill("https://shop.kr/m/orders")
    expect(page.locator("p.field-err[data-check]")).to_have_count(0)
    assert unlabelled(page) == []

    page.get_by_label("미리 볼 고객 ID").fill(facts["user"])
    page.get_by_role("button", name="미리보기 갱신").click()
    expect(page.locator("#preview")).to_have_attribute("data-user", facts["user"])  # not an older answer
    sent = page.locator('.preview-variant[data-variant="A"] pre.vendor-request[data-channel="kakao"]')
    expect(sent).to_contain_text("https://shop.kr/m/orders")  # the answer for the finished form
    body = orjson.loads(sent.text_content() or "{}")
    assert body["templateCode"] == "ORDER_NOTICE_01"
    (r,) = body["recipientList"]
    assert r["templateParameter"] == {"고객명": facts["name"]} and r["recipientNo"] == facts["phone"]
    assert r["buttons"] == [{"ordering": 1, "type": "WL", "name": "주문 확인", "linkMo": "https://shop.kr/m/orders"}]
    shot(page, "60-composer-alimtalk", full=True)

    page.get_by_role("button", name="저장 (초안)").click()
    expect(page.locator("#saved-note")).to_be_visible()
    campaign = server.admin("/api/campaigns/order-notice")["definition"]
    assert campaign["variants"][0]["messages"]["kakao"]["data"] == {
        "template_code": "ORDER_NOTICE_01", "template_parameters": {"고객명": "{{ user.name }}"},
        "buttons": [{"type": "WL", "name": "주문 확인", "linkMo": "https://shop.kr/m/orders"}]}
    # editing it again shows the same fields, filled
    page.goto(server.url + "/campaigns/new?from=order-notice")
    expect(page.locator("#composer")).to_have_attribute("data-ready", "1")
    expect(page.locator("#v0-kakao-template")).to_have_value("ORDER_NOTICE_01")
    expect(page.locator("#v0-kakao-param0-value")).to_have_value("{{ user.name }}")
    expect(page.locator("#v0-kakao-btn0-linkMo")).to_have_value("https://shop.kr/m/orders")
    assert errors == []
    ctx.close()


def test_friendtalk_fields_in_english(served, browser) -> None:  # type: ignore[no-untyped-def]
    server, _facts = served
    ctx, page, errors = korean_page(browser)
    ctx.add_cookies([{"name": "lang", "value": "en", "url": server.url}])
    _sign_in(page, server)
    page.get_by_label("Channel", exact=True).select_option("kakao_brand")
    expect(page.locator("#v0-kakao fieldset.kakao legend")).to_have_text("KakaoTalk FriendTalk (advertising)")
    page.locator("#v0-kakao_brand-image").fill("ftp://shop.kr/a.png")
    expect(page.locator('p.field-err[data-check="image_url"]')).to_have_text(
        "The image URL must start with http:// or https://.")
    page.locator("#v0-kakao_brand-image").fill("https://shop.kr/a.png")
    page.get_by_label("Informational").check()
    expect(page.locator("#c-channel-err")).to_contain_text("FriendTalk is advertising")
    assert unlabelled(page) == [] and errors == []
    shot(page, "61-composer-friendtalk-en", full=True)
    # an advertising FriendTalk with the default quiet hours (21:00-08:00): Kakao's 20:50 stop is a warning
    # next to the channel, and saving still works
    page.get_by_label("Advertising").check()
    warn = page.locator('#c-channel-err span[data-check="friendtalk_night"]')
    expect(warn).to_contain_text("between 20:50 and 08:00")
    expect(page.locator('#c-channel-err [data-check="friendtalk_info"]')).to_have_count(0)
    page.get_by_label("Campaign id").fill("ft-warn")
    page.locator("#c-sender-name").fill("데모몰")
    page.locator("#c-sender-contact").fill("02-123-4567")
    page.locator("#v0-text").fill("겨울 세일")
    page.locator("#v1-text").fill("봄 세일")
    page.locator("#c-target").select_option(["여성"])
    page.get_by_role("button", name="Save (draft)").click()
    expect(page.locator("#saved-note")).to_be_visible()
    expect(warn).to_be_visible()
    ctx.close()


def test_goal_conditions_with_the_builders_filter_rows(served, browser) -> None:  # type: ignore[no-untyped-def]
    server, _facts = served
    ctx, page, errors = korean_page(browser)
    _sign_in(page, server)
    page.get_by_label("캠페인 ID").fill("goal-filters")
    page.get_by_label("정보성").check()
    page.get_by_label("채널", exact=True).select_option("outbox")
    page.get_by_label("대상 세그먼트 (하나 이상에 속한 고객)").select_option(["여성"])
    page.get_by_label("목표 이벤트").fill("order_completed")
    page.get_by_label("목표 이벤트").dispatch_event("change")
    # the segment builder's row: + property filter, property (taxonomy / arrived), operator, value
    page.locator("#goal-addfilter").click()
    expect(page.locator("#goal-f0-prop")).to_be_focused()
    page.keyboard.type("revenue")
    page.locator("#goal-f0-op").select_option("gte")
    expect(page.locator("#goal-f0-op")).to_be_focused()
    page.locator("#goal-f0-value").fill("50000")
    page.locator("#goal-addfilter").click()
    page.locator("#goal-f1-prop").fill("coupon_id")
    page.locator("#goal-f1-op").select_option("exists")
    expect(page.locator("#goal-f1-value")).to_have_count(0)  # exists takes no value
    assert unlabelled(page) == []
    shot(page, "62-composer-goal-filters", full=True)
    page.get_by_role("button", name="저장 (초안)").click()
    expect(page.locator("#saved-note")).to_be_visible()
    goal = server.admin("/api/campaigns/goal-filters")["definition"]["goal"]
    assert goal["event"] == "order_completed" and goal["where"] == [
        {"path": ["revenue"], "op": "gte", "value": {"kind": "value", "value": 50000}, "value2": None},
        {"path": ["coupon_id"], "op": "exists", "value": None, "value2": None}]
    # the campaign opens again with its conditions, and removing one is one click
    page.goto(server.url + "/campaigns/new?from=goal-filters")
    expect(page.locator("#composer")).to_have_attribute("data-ready", "1")
    expect(page.locator("#goal-f0-prop")).to_have_value("revenue")
    expect(page.locator("#goal-f0-value")).to_have_value("50000")
    expect(page.locator("#goal-f1-op")).to_have_value("exists")
    page.locator("#goal-f1-remove").click()
    expect(page.locator("#goal-f1-prop")).to_have_count(0)
    assert errors == []
    ctx.close()
