"""The campaign composer, send and report in a real headless Chromium (Playwright) against a real `segmint serve`
on a small demo shop: compose an A/B + holdout campaign to the outbox, preview it for a user, save, send, wait for
the ledger to settle, and read the report (funnel chart, per-variant rows) in Korean and English."""

from __future__ import annotations

import time
import tomllib
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import orjson
import pytest
from playwright import sync_api as playwright_api

from browser_util import korean_page, shot, unlabelled
from segmint.appdb.users import create_user
from segmint.campaigns.links import LinkMaker
from segmint.demo.generate import DemoSpec
from segmint.demo.load import build_demo
from segmint.segments import saved
from server_util import Server

EMAIL, PASSWORD = "marketer@shop.kr", "캠페인-작성-1234"
ADMIN, ADMIN_PASSWORD = "admin@shop.kr", "관리자-설정-5678"
expect = playwright_api.expect
expect.set_options(timeout=20_000)  # a loaded 2-core machine renders slowly; failures still fail
OPEN = ("scheduled", "queued", "sending")


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, dict]]:
    """A small demo shop with two saved segments and a marketer, served by a real `segmint serve`."""
    now = datetime.now(UTC).replace(tzinfo=None, microsecond=0)
    ws, _info = build_demo(tmp_path_factory.mktemp("uicamp") / "ws", DemoSpec(users=120, days=20, now=now),
                           progress=False)
    saved.create_segment(ws.appdb, "여성", 'trait gender = "F"')
    saved.create_segment(ws.appdb, "남성", 'trait gender = "M"')
    create_user(ws.appdb, EMAIL, PASSWORD, display_name="김마케터")
    create_user(ws.appdb, ADMIN, ADMIN_PASSWORD, display_name="이관리", role="admin")
    row = ws.store.query("SELECT user_id, traits FROM profiles WHERE json_extract_string(traits, '$.gender') = 'F' "
                         "ORDER BY user_id LIMIT 1").to_pylist()[0]
    women = ws.store.query("SELECT count(*) AS n FROM profiles WHERE json_extract_string(traits, '$.gender') = 'F'"
                           ).to_pylist()[0]["n"]
    facts = {"user": row["user_id"], "name": orjson.loads(row["traits"])["name"], "women": women}
    token, path = ws.config.admin_token, ws.path
    ws.appdb.dispose()
    ws.close()
    server = Server(path, token).start()
    yield server, facts
    server.stop()


def settled(server: Server, campaign_id: str, timeout: float = 120.0) -> dict[str, int]:
    """Poll the ledger API until nothing is planned, queued or sending; the counts per status."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        counts = server.admin(f"/api/campaigns/{campaign_id}/ledger", limit=1)["counts"]
        if counts and not any(counts.get(s) for s in OPEN):
            return counts
        time.sleep(0.3)
    raise AssertionError(f"ledger of {campaign_id} did not settle: {counts}")


def test_compose_preview_save_send_and_report(served, browser) -> None:  # type: ignore[no-untyped-def]
    server, facts = served
    ctx, page, errors = korean_page(browser)

    page.goto(server.url + "/campaigns")
    page.get_by_label("이메일").fill(EMAIL)
    page.get_by_label("비밀번호").fill(PASSWORD)
    page.get_by_role("button", name="로그인").click()
    page.wait_for_url(server.url + "/campaigns")
    expect(page.locator("#no-campaigns")).to_be_visible()
    page.get_by_role("link", name="새 캠페인").click()
    page.wait_for_url(server.url + "/campaigns/new")
    expect(page.locator("#composer")).to_have_attribute("data-ready", "1")
    assert unlabelled(page) == []

    # compose: A/B + 20% holdout to the outbox, informational, both segments
    page.get_by_label("캠페인 ID").fill("winter-ab")
    page.get_by_label("이름", exact=True).fill("겨울 세일 A/B")
    page.get_by_label("정보성").check()
    expect(page.locator("#sender-box")).to_be_hidden()
    page.get_by_label("채널", exact=True).select_option("outbox")
    page.get_by_label("대상 세그먼트 (하나 이상에 속한 고객)").select_option(["여성", "남성"])
    page.locator("#v0-subject").fill("겨울 세일")
    page.locator("#v0-text").fill("{{ user.name }}님, 겨울 세일이 시작됐어요")
    page.locator("#v1-subject").fill("단 3일")
    page.locator("#v1-text").fill("겨울 세일 최대 50%")
    page.get_by_label("홀드아웃 (%)").fill("20")
    page.get_by_label("야간 방해금지 시간(21:00-08:00)에는 보내지 않음").uncheck()
    # keyboard: Enter on "+ 변형 추가" adds variant C and focuses its key; its remove button takes it away again
    page.locator("#add-variant").focus()
    page.keyboard.press("Enter")
    expect(page.locator("#v2-key")).to_be_focused()
    expect(page.locator("#v2-key")).to_have_value("C")
    page.get_by_role("button", name="변형 삭제 C").click()
    expect(page.locator("fieldset.variant")).to_have_count(2)
    assert unlabelled(page) == []

    # live preview for a real user: rendered text and the guardrails that apply
    page.get_by_label("미리 볼 고객 ID").fill(facts["user"])
    page.get_by_role("button", name="미리보기 갱신").click()
    a = page.locator('.preview-variant[data-variant="A"]')
    expect(a.locator(".preview-text")).to_have_text(f"{facts['name']}님, 겨울 세일이 시작됐어요")
    expect(a).to_have_attribute("data-outcome", "queued")
    expect(a.locator('li[data-ok="1"]').first).to_contain_text("channel:outbox")
    expect(page.locator("#preview-summary")).to_contain_text("대상 포함: 예")
    shot(page, "30-campaign-composer", full=True)

    # "at a time" without a time is refused in the page, and the send button says it schedules
    page.get_by_label("지정 시각").check()
    expect(page.locator("#send-now")).to_have_text("예약 발송 (활성화)")
    page.get_by_role("button", name="저장 (초안)").click()
    expect(page.locator("#status [role=alert]")).to_have_text("발송 시각을 입력하세요 (UTC).")
    expect(page.get_by_label("발송 시각 (UTC)")).to_be_focused()
    page.get_by_label("지금", exact=True).check()
    expect(page.locator("#send-now")).to_have_text("지금 발송")
    page.get_by_role("button", name="저장 (초안)").click()
    expect(page.locator("#saved-note")).to_contain_text("winter-ab v1")
    stored = server.admin("/api/campaigns/winter-ab")
    assert stored["status"] == "draft" and stored["definition"]["holdout"] == 0.2
    assert [v["key"] for v in stored["definition"]["variants"]] == ["A", "B"]

    page.get_by_role("button", name="지금 발송").click()
    page.wait_for_url(server.url + "/campaigns/winter-ab/report")
    expect(page.locator("#pending-note, #funnel-chart").first).to_be_visible()  # still sending, or done
    counts = settled(server, "winter-ab")
    assert counts.get("sent", 0) > 0 and counts.get("holdout", 0) > 0
    # two A recipients and one B recipient open the message (the real open pixel of the tracking endpoint)
    rows = server.admin("/api/campaigns/winter-ab/ledger", status="sent")["rows"]
    openers = [r for r in rows if r["variant"] == "A"][:2] + [r for r in rows if r["variant"] == "B"][:1]
    secret = tomllib.loads((server.workspace / "segmint.toml").read_text())["session_secret"]
    links = LinkMaker(server.url, secret)
    for r in openers:
        ref = {"m": r["message_id"], "u": r["user_id"], "c": "winter-ab", "v": r["variant"], "ch": r["channel"]}
        assert httpx.get(links.open_pixel(ref), timeout=10).status_code == 200
    deadline = time.monotonic() + 120
    while {e["event"]: e["count"] for e in server.admin("/api/events/stats")}.get("message_opened", 0) < 3:
        assert time.monotonic() < deadline, "open events were not stored"
        time.sleep(0.3)
    report = server.admin("/api/campaigns/winter-ab/report")
    totals = {r["variant"]: r for r in report["rows"] if r["segment"] is None}
    assert set(totals) == {"A", "B", "control"}
    assert (totals["A"]["opened"], totals["B"]["opened"]) == (2, 1)

    page.reload()
    expect(page.locator("#funnel-chart")).to_have_attribute("data-ready", "1")
    expect(page.locator("#pending-note")).to_have_count(0)
    expect(page.locator("#funnel-chart canvas")).to_have_count(1)
    for variant in ("A", "B"):
        row = page.locator(f'tr.variant-row[data-variant="{variant}"][data-segment="전체"]')
        expect(row).to_contain_text(f"{totals[variant]['sent']:,}")
        expect(row.locator(".uplift")).to_contain_text("%p")
    expect(page.locator('tr.variant-row[data-control="1"]')).to_have_count(3)  # 여성, 남성, 전체
    chart = orjson.loads(page.locator("#report-data").text_content())
    opened = {s["name"]: s["data"][4] for s in chart["series"]}
    assert chart["stages"][4] == "오픈" and opened == {"A": 2, "B": 1, "대조군 (홀드아웃)": 0}
    a_rate = f"{2 / totals['A']['sent'] * 100:.1f}%"
    expect(page.locator('tr.variant-row[data-variant="A"][data-segment="전체"]')).to_contain_text(a_rate)
    expect(page.locator("#metrics-table")).to_contain_text("대조군 (홀드아웃)")
    shot(page, "31-campaign-report", full=True)

    # English and back
    page.locator("#lang-en").click()
    expect(page.locator("html")).to_have_attribute("lang", "en")
    expect(page.locator("#funnel-h")).to_have_text("Funnel (per variant)")
    expect(page.locator("#funnel-chart")).to_have_attribute("data-ready", "1")
    shot(page, "32-campaign-report-en", full=True)
    page.locator("#lang-ko").click()
    expect(page.locator("html")).to_have_attribute("lang", "ko")

    # the list shows the campaign, active, with its last send and a report link
    page.get_by_role("link", name="캠페인", exact=True).click()
    row = page.locator('tr[data-campaign="winter-ab"]')
    expect(row.locator("td[data-status]")).to_have_text("활성")
    expect(row.locator(".last-send")).to_contain_text(datetime.now(UTC).strftime("%Y-%m-%d"))
    shot(page, "33-campaign-list")
    # edit: the composer comes back filled with the stored campaign
    row.get_by_role("link", name="편집 겨울 세일 A/B").click()
    expect(page.locator("#composer")).to_have_attribute("data-ready", "1")
    expect(page.get_by_label("캠페인 ID")).to_have_value("winter-ab")
    expect(page.get_by_label("홀드아웃 (%)")).to_have_value("20")
    expect(page.locator("fieldset.variant")).to_have_count(2)
    expect(page.locator("#v0-text")).to_have_value("{{ user.name }}님, 겨울 세일이 시작됐어요")
    expect(page.get_by_label("정보성")).to_be_checked()
    expect(page.get_by_label("채널", exact=True)).to_have_value("outbox")
    assert page.eval_on_selector("#c-target", "s => [...s.selectedOptions].map(o => o.value)") == ["남성", "여성"]
    expect(page.locator("#sender-box")).to_be_hidden()
    assert errors == []
    ctx.close()


def _sign_in(page: Any, server: Server, email: str, password: str, target: str) -> None:
    page.goto(server.url + target)
    page.get_by_label("이메일").fill(email)
    page.get_by_label("비밀번호").fill(password)
    page.get_by_role("button", name="로그인").click()
    page.wait_for_url(server.url + target)


def test_settings_and_composer_schedules_with_dry_run(served, browser) -> None:  # type: ignore[no-untyped-def]
    server, facts = served
    ctx, page, errors = korean_page(browser)
    _sign_in(page, server, ADMIN, ADMIN_PASSWORD, "/settings")

    # channels: configure the webhook provider; the secret is stored but never shown again
    page.get_by_role("link", name="채널·발송 서비스").click()
    page.wait_for_url(server.url + "/settings/channels")
    assert unlabelled(page) == []
    hook = page.locator("#ch-webhook")
    expect(hook).to_have_attribute("data-configured", "0")
    hook.get_by_label("url").fill("https://hooks.shop.kr/segmint")
    hook.get_by_label("secret").fill("whsec-very-secret-1234")
    hook.get_by_role("button", name="저장").click()
    expect(page.locator("#channel-saved")).to_contain_text("웹훅")
    expect(page.locator("#ch-webhook")).to_have_attribute("data-configured", "1")
    expect(page.locator("#webhook-secret-state")).to_have_text("저장된 값: ••••34")
    assert "whsec-very-secret-1234" not in page.content()
    stored = tomllib.loads((server.workspace / "segmint.toml").read_text())["channels"]["webhook"]
    assert stored["url"] == "https://hooks.shop.kr/segmint" and stored["secret"] == "whsec-very-secret-1234"
    shot(page, "34-settings-channels", full=True)

    # policy defaults: at most 2 messages a day, quiet hours from 22:00
    page.get_by_role("link", name="발송 정책 기본값").click()
    page.wait_for_url(server.url + "/settings/policy")
    assert unlabelled(page) == []
    page.get_by_label("제한 1 최대 건수").fill("2")
    page.get_by_label("시작", exact=True).fill("22:00")
    page.get_by_role("button", name="저장").click()
    expect(page.locator("#policy-saved")).to_be_visible()
    expect(page.get_by_label("제한 1 최대 건수")).to_have_value("2")
    shot(page, "35-settings-policy", full=True)

    # composer: a triggered campaign (entering 여성, 2 hours later, cancelled by a purchase) with an audience cap
    page.goto(server.url + "/campaigns/new")
    expect(page.locator("#composer")).to_have_attribute("data-ready", "1")
    page.get_by_label("캠페인 ID").fill("welcome-women")
    page.get_by_label("정보성").check()
    page.get_by_label("채널", exact=True).select_option("outbox")
    page.get_by_label("대상 세그먼트 (하나 이상에 속한 고객)").select_option(["여성"])
    page.get_by_label("최대 발송 인원 (선택)").fill("10")
    page.locator("#v0-text").fill("{{ user.name }}님 환영해요")
    page.locator("#v1-text").fill("환영 쿠폰")
    page.get_by_label("트리거 (이벤트·세그먼트 진입)").check()
    expect(page.get_by_label("cron 표현식")).to_be_hidden()
    page.get_by_label("트리거", exact=True).select_option("segment_entered")
    expect(page.get_by_label("트리거 이벤트")).to_be_hidden()
    page.get_by_label("진입할 세그먼트").select_option("여성")
    page.get_by_label("지연", exact=True).fill("2")
    page.get_by_label("취소 이벤트 (쉼표로 구분)").fill("order_completed")
    expect(page.locator("#send-now")).to_have_text("예약 발송 (활성화)")
    assert unlabelled(page) == []
    page.get_by_role("button", name="발송 대상·억제 인원 계산").click()
    out = page.locator("#dryrun-out")
    expect(out).to_have_attribute("data-audience", str(facts["women"]))
    expect(page.locator('tr[data-rail="audience_cap"] .stops')).to_have_text(str(facts["women"] - 10))
    expect(page.locator('tr[data-rail="cancelled"]')).to_contain_text("order_completed")
    expect(page.locator('tr[data-rail="frequency_cap"]')).to_contain_text("모든 채널 2/일")  # the new default
    expect(page.locator("#dryrun-summary")).to_contain_text("지금 대상 전원이 트리거했다고 가정")
    shot(page, "36-composer-triggered-dry-run", full=True)

    # recurring on Mondays 10:00 Seoul time, chosen with the keyboard; the dry run names the next Monday
    page.get_by_label("반복 (cron)").focus()
    page.keyboard.press("Space")
    expect(page.get_by_label("cron 표현식")).to_be_visible()
    expect(page.get_by_label("cron 표현식")).to_have_value("0 10 * * 1")
    page.locator("#dryrun-run").focus()
    page.keyboard.press("Enter")
    expect(page.locator("#dryrun-summary")).to_contain_text("01:00")
    expect(page.locator("#dryrun-summary")).not_to_contain_text("트리거")
    page.get_by_label("cron 표현식").fill("61 * * * *")
    page.locator("#dryrun-run").click()
    expect(page.locator("#dryrun-error")).to_contain_text("bad cron expression")
    page.get_by_label("cron 표현식").fill("0 10 * * 1")
    page.get_by_label("대체 채널 (선택)").select_option("in_app")
    page.get_by_role("button", name="저장 (초안)").click()
    expect(page.locator("#saved-note")).to_contain_text("welcome-women v1")
    stored = server.admin("/api/campaigns/welcome-women")["definition"]
    assert stored["schedule"] == {"type": "recurring", "cron": "0 10 * * 1", "timezone": "Asia/Seoul",
                                  "catch_up": "P1D"}  # catch_up: the model's default (missed runs of 1 day)
    assert stored["audience_cap"] == 10 and stored["channels"] == ["outbox", "in_app"]
    assert {k: sorted(v["messages"]) for k, v in zip("AB", stored["variants"], strict=True)} == {
        "A": ["in_app", "outbox"], "B": ["in_app", "outbox"]}
    assert stored["policy"]["frequency_caps"] == [{"channel": "*", "max": 2, "per": "day"}]
    assert stored["policy"]["quiet_hours"]["start"] == "22:00:00"

    # at a time in each user's local time: the time label says so
    page.get_by_label("지정 시각").check()
    page.get_by_label("고객별 현지 시각으로 보내기").check()
    expect(page.locator("#c-at-label")).to_have_text("발송 시각 (고객 현지 시각)")
    shot(page, "37-composer-local-time")

    # edit: the stored recurring campaign comes back with its schedule and cap
    page.goto(server.url + "/campaigns/new?from=welcome-women")
    expect(page.locator("#composer")).to_have_attribute("data-ready", "1")
    expect(page.get_by_label("반복 (cron)")).to_be_checked()
    expect(page.get_by_label("cron 표현식")).to_have_value("0 10 * * 1")
    expect(page.get_by_label("시간대")).to_have_value("Asia/Seoul")
    expect(page.get_by_label("최대 발송 인원 (선택)")).to_have_value("10")
    expect(page.get_by_label("대체 채널 (선택)")).to_have_value("in_app")
    # the same in English: labels, the dry run and the guardrail texts
    page.locator("#lang-en").click()
    expect(page.locator("html")).to_have_attribute("lang", "en")
    expect(page.locator("#composer")).to_have_attribute("data-ready", "1")
    expect(page.get_by_label("Cron expression")).to_have_value("0 10 * * 1")
    page.get_by_role("button", name="Count audience and suppressions").click()
    expect(page.locator("#dryrun-summary")).to_contain_text("Next send")
    expect(page.locator('tr[data-rail="audience_cap"]')).to_contain_text("audience cap of 10")
    shot(page, "40-composer-recurring-en", full=True)
    page.locator("#lang-ko").click()
    expect(page.locator("html")).to_have_attribute("lang", "ko")
    assert errors == []
    ctx.close()


# Every page: no unlabelled field, and its main actions reached by Tab from the top of the page.
PAGES = [
    ("/", ['a[href="/segments"]', "#logout"]),
    ("/events", ['a[href="/campaigns"]']),
    ("/segments", ["#new-segment", "#label-filter"]),
    ("/builder", ["#seg-name", "#seg-text", "#save-segment"]),
    ("/segments/%EC%97%AC%EC%84%B1", ["#explain-user", "#explain-submit", "#snapshot"]),
    ("/users", ["#user-q", "#user-search"]),
    ("/campaigns", ["#new-campaign"]),
    ("/campaigns/new", ["#c-id", "#c-target", "#c-when-now", "#dryrun-run", "#save", "#send-now", "#preview-run"]),
    ("/campaigns/a11y-draft/report", ['a[href="/campaigns"]']),
    ("/settings", ["#tab-channels", "#key-label", "#create-key", "#nu-email", "#create-user"]),
    ("/settings/channels", ["#email-host", "#save-email", "#save-webhook"]),
    ("/settings/policy", ["#consent-email", "#cap-max-0", "#save-policy"]),
]
# Records which of the wanted selectors received the focus (sequential Tab navigation from the document start).
FOCUS_JS = """(sels) => {
  window.__reached = [];
  if (document.activeElement) document.activeElement.blur();
  document.addEventListener("focusin", (e) => {
    for (const s of sels) if (!window.__reached.includes(s) && e.target.matches(s)) window.__reached.push(s);
  });
}"""


def test_every_page_labelled_and_main_actions_keyboard_reachable(served, browser) -> None:  # type: ignore[no-untyped-def]
    server, facts = served
    httpx.post(server.url + "/api/campaigns", params={"status": "draft"}, timeout=10,
               headers={"Authorization": f"Bearer {server.admin_token}"},
               json={"id": "a11y-draft", "purpose": "informational", "target": ["여성"], "channels": ["outbox"],
                     "variants": [{"key": "A", "messages": {"outbox": {"text": "hi"}}}]}).raise_for_status()
    ctx = browser.new_context(locale="ko-KR", extra_http_headers={"Accept-Language": "ko-KR,ko;q=0.9"},
                              viewport={"width": 1400, "height": 1000})
    page = ctx.new_page()
    page.set_default_timeout(15_000)
    _sign_in(page, server, ADMIN, ADMIN_PASSWORD, "/")
    pages = [*PAGES, ("/users/" + facts["user"], ['a[href="/users"]'])]
    shots = {"/": "38-home-activity", "/segments": "39-segments-trend"}
    for path, actions in pages:
        page.goto(server.url + path)
        page.wait_for_load_state("networkidle")
        if path in shots:
            shot(page, shots[path], full=True)
        assert unlabelled(page) == [], path
        for sel in actions:
            expect(page.locator(sel).first).to_be_visible()
        page.evaluate(FOCUS_JS, actions)
        for _ in range(40):  # up to 400 Tab presses from the top of the page
            for _ in range(10):
                page.keyboard.press("Tab")
            if page.evaluate("() => window.__reached.length") == len(actions):
                break
        reached = page.evaluate("() => window.__reached")
        assert sorted(reached) == sorted(actions), (path, set(actions) - set(reached))
    ctx.close()
