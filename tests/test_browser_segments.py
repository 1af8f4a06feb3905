"""The segment builder, segment page, explain and user profile in a real headless Chromium (Playwright)
against a real `segmint serve` on a small demo shop; the builder's count must match `segmint segment eval`."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest
from playwright import sync_api as playwright_api

from browser_util import korean_page, shot, unlabelled
from segmint.appdb.users import create_user
from segmint.demo.generate import DemoSpec
from segmint.demo.load import build_demo
from segmint.segments.dsl import parse
from segmint.segments.evaluate import count as count_members
from server_util import SRC, Server

EMAIL, PASSWORD = "marketer@shop.kr", "세그먼트-빌더-1234"
VIEWER = ("viewer@shop.kr", "viewer-password-1")
A1_NAME = "쿠폰 미다운로드 활성 고객"
A1_TEXT = ("did not coupon_downloaded and did app_opened in last 1 month and did product_viewed at least 2 times "
           "in last 1 month and did cart_added in last 1 month")
A2_TEXT = ("with any cart_added as cart at least 3 days ago:\n"
           "  did not product_purchased where product_id = cart.product_id after cart\n"
           "  and did product_viewed where category = cart.category at least 2 times\n"
           "  and did not review_viewed where product_id = cart.product_id")
A1_LINES = A1_TEXT.replace(" and ", "\nand ")  # the builder lays the text out one condition per line
expect = playwright_api.expect
expect.set_options(timeout=20_000)  # a loaded 2-core CI machine renders slowly; failures still fail


def cli(ws: Path, *args: str) -> str:
    """Run the real `segmint` CLI on a workspace (the server is not running yet: it holds the store)."""
    env = {**os.environ, "PYTHONPATH": f"{SRC}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    out = subprocess.run([sys.executable, "-c", "from segmint.cli import main; main()", "-w", str(ws), *args],
                         env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return out.stdout


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, dict]]:
    """A small demo shop with a marketer and a viewer, A1 counted by the CLI as of a fixed time, served."""
    now = datetime.now(UTC).replace(tzinfo=None, microsecond=0)
    ws, _info = build_demo(tmp_path_factory.mktemp("uiseg") / "ws", DemoSpec(users=150, days=40, now=now),
                           progress=False)
    create_user(ws.appdb, EMAIL, PASSWORD, display_name="김마케터")
    create_user(ws.appdb, *VIEWER, role="viewer")
    token, path = ws.config.admin_token, ws.path
    as_of = now - timedelta(hours=1)
    facts = {"as_of": as_of.isoformat(), "a2_count": count_members(ws.store, parse(A2_TEXT), as_of)}
    ws.appdb.dispose()
    ws.close()
    # A1 through the real CLI, as a marketer's colleague would check it
    facts["a1_count"] = int(cli(path, "segment", "eval", A1_TEXT, "--as-of", facts["as_of"], "--format",
                                "count").strip())
    assert facts["a1_count"] > 0 and facts["a2_count"] > 0
    server = Server(path, token).start()
    yield server, facts
    server.stop()


def sign_in(page, server: Server, email: str, password: str) -> None:  # type: ignore[no-untyped-def]
    page.goto(server.url + "/segments")
    page.get_by_label("이메일").fill(email)
    page.get_by_label("비밀번호").fill(password)
    page.get_by_role("button", name="로그인").click()
    page.wait_for_url(server.url + "/segments")


def add_performed(page, i: int, event: str, freq: str, window: str | None = None,  # type: ignore[no-untyped-def]
                  n: str | None = None) -> None:
    """Click "+ 조건" on the root group and fill in condition i with the pickers."""
    page.get_by_role("button", name="+ 조건").last.click()
    p = f"#r\\.{i}"
    expect(page.locator(f"{p}-type")).to_be_focused()  # the new condition takes the keyboard focus
    page.locator(f"{p}-event").select_option(event)
    page.locator(f"{p}-freq").select_option(freq)
    if n is not None:
        page.locator(f"{p}-n").fill(n)
    if window:
        page.locator(f"{p}-win").select_option("last")
        page.locator(f"{p}-win-amount").fill("1")
        page.locator(f"{p}-win-unit").select_option(window)


def test_build_a1_save_explain_profile(served, browser) -> None:  # type: ignore[no-untyped-def]
    server, facts = served
    ctx, page, errors = korean_page(browser)
    sign_in(page, server, EMAIL, PASSWORD)
    expect(page.locator("#no-segments")).to_be_visible()
    assert unlabelled(page) == []
    page.get_by_role("link", name="새 세그먼트").click()
    page.wait_for_url(server.url + "/builder")
    expect(page.locator("#builder")).to_have_attribute("data-ready", "1")

    # A1 advanced, by clicking: four conditions under the root AND, counted as of the CLI's time
    page.locator("details.asof summary").click()
    page.get_by_label("기준 시각 (UTC)").fill(facts["as_of"])
    page.get_by_label("이름", exact=True).fill(A1_NAME)
    page.get_by_label("설명").fill("쿠폰 안 받은 활성 고객 (A1)")
    page.get_by_label("라벨").fill("seed, A1")
    add_performed(page, 0, "coupon_downloaded", "not")
    add_performed(page, 1, "app_opened", "did", "months")
    add_performed(page, 2, "product_viewed", "did", "months", n="2")
    add_performed(page, 3, "cart_added", "did", "months")
    # the event picker shows the taxonomy's Korean names with counts seen
    assert "쿠폰 다운로드 (coupon_downloaded)" in page.locator("#r\\.0-event option:checked").inner_text()
    expect(page.locator("#seg-text")).to_have_value(A1_LINES)
    expect(page.locator("#preview-count")).to_have_text(f"{facts['a1_count']:,}")
    expect(page.locator("#preview-sample li")).to_have_count(min(20, facts["a1_count"]))
    assert "FROM events" in page.locator("#preview-sql").text_content()
    assert unlabelled(page) == []
    shot(page, "10-builder-a1", full=True)

    # text -> tree: a typo is reported inline with line:column and a suggestion; applying it redraws the tree
    page.locator("#seg-text").fill(A1_TEXT.replace("coupon_downloaded", "coupon_downloded"))
    expect(page.locator("#text-error-where")).to_have_text("1행 9열")
    expect(page.locator("#text-suggestion")).to_have_text("coupon_downloaded")
    shot(page, "11-builder-parse-error")
    page.get_by_role("button", name="제안 적용").click()
    expect(page.locator("#text-error")).to_be_hidden()
    page.locator("#seg-text").fill(A1_TEXT.replace("at least 2 times", "at least 3 times"))
    expect(page.locator("#r\\.2-n")).to_have_value("3")
    page.locator("#r\\.2-n").fill("2")
    expect(page.locator("#seg-text")).to_have_value(A1_LINES)
    expect(page.locator("#preview-count")).to_have_text(f"{facts['a1_count']:,}")

    page.get_by_role("button", name="세그먼트 저장").click()
    expect(page.locator("#saved")).to_have_text("저장했습니다 (v1).")
    page.get_by_role("link", name="세그먼트 페이지 열기").click()

    # the segment page: text, versions, members now; growth chart and profile from the analysis API
    expect(page.locator("#segment-name")).to_have_text(A1_NAME)
    expect(page.locator("#segment-text")).to_have_text(A1_LINES)
    expect(page.locator("#versions tbody tr")).to_have_count(1)
    for panel in ("growth", "profile"):
        expect(page.locator(f'.panel-body[data-panel="{panel}"]')).to_have_attribute("data-state", "loaded")
    expect(page.locator('.panel-body[data-panel="overlap"]')).to_have_attribute("data-state", "empty")  # only A1
    expect(page.locator("#panel-profile canvas")).to_have_count(1)
    # a new segment has no history yet: fill the last 90 days by as-of evaluation, then the chart shows it
    page.get_by_role("button", name="지난 90일 채우기 (as-of 재계산)").click()
    expect(page.locator('.panel-body[data-panel="growth"]')).to_have_attribute("data-backfilled", "true",
                                                                               timeout=120_000)
    expect(page.locator("#panel-growth canvas")).to_have_count(1)
    legend = page.evaluate("() => echarts.getInstanceByDom(document.querySelector('#panel-growth .chart'))"
                           ".getOption().series.map((s) => s.name)")
    assert legend == ["인원", "가입", "이탈"]  # the chart's legend in Korean too (was members/entries/exits)
    days = server.admin("/api/segment-analysis/growth", segment=A1_NAME, days=30)["days"]
    assert sum(d["entries"] for d in days) > 0 and max(d["members"] for d in days) > 0
    count = int(page.locator("#member-count").inner_text().replace(",", ""))
    assert count > 0
    member = page.locator("#segment-sample a").first.inner_text()
    assert unlabelled(page) == []
    shot(page, "12-segment-page", full=True)

    # explain one member (keyboard: type the id, Enter submits the htmx form)
    page.get_by_label("사용자 ID").fill(member)
    page.get_by_label("사용자 ID").press("Enter")
    expect(page.locator("#explain-verdict")).to_have_attribute("data-member", "true")
    expect(page.locator("#explain-verdict")).to_contain_text("포함")
    expect(page.locator('#explain-out .verdict[data-result="true"]')).to_have_count(5)
    shot(page, "13-explain", full=True)

    # the member's profile: traits, timeline, and A1 among current segments
    # by keyboard (a mouse click after the full-page screenshot above can land off target in headless Chromium)
    page.locator("#explain-verdict a").focus()
    page.keyboard.press("Enter")
    expect(page.locator("#profile-id")).to_have_text(member)
    expect(page.locator(f'#user-segments li[data-segment="{A1_NAME}"]')).to_have_attribute("data-member", "true")
    expect(page.locator("#traits-declared")).to_contain_text("성별")
    assert page.locator("#timeline li").count() > 0
    shot(page, "14-user-profile", full=True)

    # English and back, staying on the same page
    page.locator("#lang-en").click()
    expect(page.locator("html")).to_have_attribute("lang", "en")
    expect(page.get_by_role("heading", name="Current segments")).to_be_visible()
    expect(page.locator("#profile-id")).to_have_text(member)
    shot(page, "15-user-profile-en", full=True)
    page.get_by_role("link", name="Segments", exact=True).click()
    expect(page.locator("#segment-table")).to_contain_text("dynamic")
    expect(page.locator(f'#segment-table tr[data-segment="{A1_NAME}"] .size span')).to_have_attribute(
        "data-status", "ok")
    shot(page, "16-segments-en")
    page.locator("#lang-ko").click()
    expect(page.locator("html")).to_have_attribute("lang", "ko")
    expect(page.get_by_role("heading", name="세그먼트", exact=True)).to_be_visible()
    shot(page, "17-segments-ko")
    assert errors == []
    ctx.close()


def test_build_the_correlated_a2_by_clicking(served, browser) -> None:  # type: ignore[no-untyped-def]
    server, facts = served
    ctx = browser.new_context(locale="ko-KR", extra_http_headers={"Accept-Language": "ko"},
                              viewport={"width": 1400, "height": 1000})
    page = ctx.new_page()
    page.set_default_timeout(15_000)
    sign_in(page, server, EMAIL, PASSWORD)
    page.goto(server.url + "/builder")
    page.locator("details.asof summary").click()
    page.get_by_label("기준 시각 (UTC)").fill(facts["as_of"])
    page.get_by_role("button", name="+ 조건").click()
    page.locator("#r\\.0-type").select_option("with")  # anchor an event: any cart_added, as "cart"
    page.locator("#r\\.0-pick").select_option("any")
    page.locator("#r\\.0-event").select_option("cart_added")
    page.locator("#r\\.0-as").fill("cart")
    page.locator("#r\\.0-as").press("Tab")
    page.locator("#r\\.0-win").select_option("ago")
    page.locator("#r\\.0-win-amount").fill("3")
    page.locator("#r\\.0-win-unit").select_option("days")
    body = "#r\\.0\\.c"
    for i, (event, freq, prop) in enumerate([("product_purchased", "not", "product_id"),
                                              ("product_viewed", "did", "category"),
                                              ("review_viewed", "not", "product_id")]):
        page.locator(f"{body}-add").click()
        c = f"{body}\\.{i}"
        page.locator(f"{c}-event").select_option(event)
        page.locator(f"{c}-freq").select_option(freq)
        if freq == "did":
            page.locator(f"{c}-n").fill("2")
        if i == 0:
            page.locator(f"{c}-win").select_option("after")  # after the anchored cart event
            expect(page.locator(f"{c}-win-anchor")).to_have_value("cart")
        page.locator(f"{c}-addfilter").click()
        page.locator(f"{c}-f0-prop").fill(prop)
        page.locator(f"{c}-f0-vk").select_option("anchor")  # compare with the anchor's own property
        expect(page.locator(f"{c}-f0-apath")).to_have_value(prop)
    expect(page.locator("#seg-text")).to_have_value(A2_TEXT)
    expect(page.locator("#preview-count")).to_have_text(f"{facts['a2_count']:,}")
    assert unlabelled(page) == []
    shot(page, "19-builder-a2-correlated", full=True)
    # renaming the anchor renames its references
    page.locator("#r\\.0-as").fill("c1")
    page.locator("#r\\.0-as").press("Tab")
    expect(page.locator("#seg-text")).to_have_value(A2_TEXT.replace("cart.", "c1.").replace("as cart", "as c1")
                                                    .replace("after cart", "after c1"))
    expect(page.locator("#preview-count")).to_have_text(f"{facts['a2_count']:,}")
    ctx.close()


def test_builder_in_english_keeps_formless_nodes_as_text(served, browser) -> None:  # type: ignore[no-untyped-def]
    server, _facts = served
    seq = "did cart_added in last 7 days not followed by order_completed"
    made = httpx.put(server.url + "/api/segments/" + quote("cart-no-buy", safe=""),
                     headers={"Authorization": f"Bearer {server.admin_token}"},
                     json={"definition": f'{seq} and trait gender = "F"'})
    assert made.status_code == 200, made.text
    ctx = browser.new_context(locale="en-US", extra_http_headers={"Accept-Language": "en-US,en;q=0.9"},
                              viewport={"width": 1400, "height": 1000})
    page = ctx.new_page()
    page.set_default_timeout(15_000)
    page.goto(server.url + "/builder?name=cart-no-buy")
    page.get_by_label("Email").fill(EMAIL)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(re.compile(r"/builder\?name=cart-no-buy$"))
    expect(page.get_by_role("heading", name="Edit segment: cart-no-buy")).to_be_visible()
    # the sequence has no form: shown as its text, kept in the tree; the trait has one
    expect(page.locator(".readonly code.ro")).to_have_text(seq)
    expect(page.locator("#r\\.1-trait")).to_have_value("trait:gender")
    expect(page.get_by_role("button", name="+ Condition").first).to_be_visible()
    expect(page.locator("#seg-text")).to_have_value(f'{seq}\nand trait gender = "F"')
    # editing the form part keeps the formless part: the text follows
    page.locator("#r\\.1-value").fill("M")
    expect(page.locator("#seg-text")).to_have_value(f'{seq}\nand trait gender = "M"')
    assert unlabelled(page) == []
    shot(page, "20-builder-en-readonly", full=True)
    ctx.close()


def test_viewer_sees_no_save_and_is_refused(served, browser) -> None:  # type: ignore[no-untyped-def]
    server, _facts = served
    ctx = browser.new_context(locale="ko-KR", extra_http_headers={"Accept-Language": "ko"})
    page = ctx.new_page()
    page.set_default_timeout(15_000)
    sign_in(page, server, *VIEWER)
    expect(page.locator("#my-role")).to_have_text("뷰어")
    expect(page.get_by_role("link", name="새 세그먼트")).to_have_count(0)
    page.goto(server.url + "/builder")
    expect(page.locator("#viewer-note")).to_be_visible()
    expect(page.get_by_role("button", name="세그먼트 저장")).to_have_count(0)
    # previews still work for a viewer
    page.get_by_role("button", name="+ 조건").click()
    page.locator("#r\\.0-event").select_option("cart_added")
    expect(page.locator("#preview-count")).not_to_have_text("-")
    # a hand-made save request with the viewer's own session and token is refused by the server
    resp = page.evaluate("""async () => {
        const csrf = JSON.parse(document.body.getAttribute('hx-headers'))['X-CSRF-Token'];
        const r = await fetch('/api/segments', {method: 'POST', headers: {'Content-Type': 'application/json',
          'X-CSRF-Token': csrf}, body: JSON.stringify({name: 'x', definition: 'did cart_added'})});
        return [r.status, (await r.json()).message];
    }""")
    assert resp[0] == 403 and re.search("viewer", resp[1])
    shot(page, "18-builder-viewer")
    ctx.close()
