"""The web UI in a real headless Chromium (Playwright) against a real `segmint serve` on a demo workspace."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime

import httpx
import pytest
from playwright import sync_api as playwright_api

from browser_util import shot
from segmint.appdb.users import create_user
from segmint.demo.generate import DemoSpec
from segmint.demo.load import build_demo
from server_util import Server

EMAIL, PASSWORD = "marketer@shop.kr", "한글도-되는-비밀번호"


@pytest.fixture(scope="module")
def served_demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, dict]]:
    """A small demo shop (with taxonomy and a UI user) served by a real subprocess."""
    now = datetime.now(UTC).replace(tzinfo=None, microsecond=0)
    ws, info = build_demo(tmp_path_factory.mktemp("ui") / "ws", DemoSpec(users=150, days=40, now=now),
                          progress=False)
    create_user(ws.appdb, EMAIL, PASSWORD, display_name="김마케터")
    facts = {"events": ws.store.summary()["events"], "token": ws.config.admin_token, "key": info.write_key}
    ws.appdb.dispose()
    ws.close()
    server = Server(ws.path, facts["token"]).start()
    yield server, facts
    server.stop()


def test_marketer_journey_in_korean_and_english(served_demo, browser) -> None:  # type: ignore[no-untyped-def]
    server, facts = served_demo
    ctx = browser.new_context(locale="ko-KR", extra_http_headers={"Accept-Language": "ko-KR,ko;q=0.9"},
                              viewport={"width": 1200, "height": 900})
    page = ctx.new_page()
    page.set_default_timeout(10_000)
    expect = playwright_api.expect

    # signed out: every page sends you to the sign-in form, which remembers where you were going
    page.goto(server.url + "/events")
    assert re.search(r"/login\?next=%2Fevents$", page.url)
    expect(page.locator("html")).to_have_attribute("lang", "ko")

    # keyboard only: the email field has focus, Tab reaches the password, Enter submits
    expect(page.locator("#email")).to_be_focused()
    page.keyboard.type(EMAIL)
    page.keyboard.press("Tab")
    expect(page.locator("#password")).to_be_focused()
    page.keyboard.type("wrong-password")
    page.keyboard.press("Enter")
    expect(page.locator("#login-error")).to_have_text("이메일 또는 비밀번호가 올바르지 않습니다.")
    shot(page, "01-login-error")
    page.locator("#password").focus()
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Enter")
    page.wait_for_url(server.url + "/events")

    # events page: Korean display names from the taxonomy and one drawn chart per event
    expect(page.get_by_text("상품 조회", exact=True).first).to_be_visible()
    expect(page.get_by_text("주문 완료", exact=True).first).to_be_visible()
    charts = page.locator(".chart[data-event]")
    n = charts.count()
    assert n >= 3
    expect(page.locator('.chart[data-drawn="1"]')).to_have_count(n)
    expect(charts.first.locator("canvas")).to_have_count(1)
    box = charts.first.locator("canvas").bounding_box()
    assert box and box["width"] > 300 and box["height"] > 100
    shot(page, "02-events-ko")

    # home shows the real event count
    page.get_by_role("link", name="홈").click()
    expect(page.locator("#events")).to_have_text(f"{facts['events']:,}")
    expect(page.get_by_role("link", name="홈")).to_have_attribute("aria-current", "page")
    shot(page, "03-home-ko")

    # English and back
    page.locator("#lang-en").click()
    expect(page.locator("html")).to_have_attribute("lang", "en")
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()
    expect(page.get_by_role("heading", name="Events by name")).to_be_visible()
    shot(page, "04-home-en")
    page.locator("#lang-ko").click()
    expect(page.locator("html")).to_have_attribute("lang", "ko")
    expect(page.get_by_role("button", name="로그아웃")).to_be_visible()

    # settings: create a write key, it ingests; revoke it, it stops
    page.get_by_role("link", name="설정").click()
    page.get_by_label("용도").fill("브라우저 테스트")
    page.get_by_role("button", name="쓰기 키 만들기").click()
    secret = page.locator("#new-key").inner_text().strip()
    assert secret.startswith("wk_")
    shot(page, "05-settings-new-key")
    track = {"userId": "browser-u1", "event": "product_viewed", "properties": {}}
    assert httpx.post(server.url + "/v1/track", json=track, auth=(secret, "")).status_code == 200
    row = page.locator("#keys tr", has_text="브라우저 테스트")
    url_before = page.url
    with page.expect_response(lambda r: r.url.endswith("/revoke")) as revoked:
        row.get_by_role("button", name=re.compile("폐기")).click()
    # revoked through htmx: the token travels in the X-CSRF-Token header set on <body>, no page load
    sent = revoked.value.request.headers
    assert sent.get("hx-request") == "true" and len(sent.get("x-csrf-token", "")) > 20
    assert revoked.value.status == 200
    expect(page.get_by_role("status")).to_have_text("쓰기 키를 폐기했습니다.")
    expect(page.locator("#keys tr", has_text="브라우저 테스트").locator(".status")).to_have_text("폐기됨")
    assert httpx.post(server.url + "/v1/track", json=track, auth=(secret, "")).status_code == 401
    assert page.url == url_before  # swapped in place by htmx
    expect(page.locator("#users-table")).to_contain_text(EMAIL)
    shot(page, "06-settings-revoked")

    # sign out: back at the sign-in form, pages closed again
    page.get_by_role("button", name="로그아웃").click()
    page.wait_for_url(re.compile(r"/login$"))
    page.goto(server.url + "/settings")
    assert "/login?next=%2Fsettings" in page.url
    ctx.close()


def test_write_key_opens_neither_ui_nor_admin_api(served_demo, browser) -> None:  # type: ignore[no-untyped-def]
    server, facts = served_demo
    key = facts["key"]
    track = {"userId": "u-key", "event": "product_viewed"}
    assert httpx.post(server.url + "/v1/track", json=track, auth=(key, "")).status_code == 200
    assert httpx.get(server.url + "/api/summary", headers={"Authorization": f"Bearer {key}"}).status_code == 401
    assert httpx.get(server.url + "/api/summary", auth=(key, "")).status_code == 401
    ctx = browser.new_context(http_credentials={"username": key, "password": ""},
                              extra_http_headers={"Authorization": f"Bearer {key}"})
    page = ctx.new_page()
    for path in ("/", "/settings"):
        page.goto(server.url + path)
        assert "/login?next=" in page.url
        playwright_api.expect(page.locator("#login-submit")).to_be_visible()
    ctx.close()
