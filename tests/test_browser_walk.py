"""Every UI page in a real headless Chromium (Playwright) against a real `segmint serve`, in Korean and in
English: no script errors, every form field labelled, and no UI text of the other language left on the page
(a text of the catalog that only the other language uses; the taxonomy's display names are data, Korean in
both). Screenshots of each page are test artifacts."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import pytest
from playwright import sync_api as playwright_api

from browser_util import korean_page, shot, unlabelled
from segmint.appdb.users import create_user
from segmint.campaigns import repo
from segmint.campaigns.plan import plan_occurrence
from segmint.demo.generate import DemoSpec
from segmint.demo.load import build_demo
from segmint.segments import saved
from segmint.web.i18n import CATALOG
from server_util import Server

EMAIL, PASSWORD = "admin@shop.kr", "둘러-보기-1234"
expect = playwright_api.expect
expect.set_options(timeout=20_000)  # a loaded 2-core machine renders slowly; failures still fail
HANGUL = re.compile(r"[\uac00-\ud7a3]")

# Direct text of every visible element outside code, data and user input, one string per text node.
TEXTS_JS = """() => {
  const out = [];
  const skip = (el) => el.closest(
    'code, pre, script, style, textarea, [data-value], .sql, svg, canvas, datalist, .display-name');
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let n = walker.nextNode(); n; n = walker.nextNode()) {
    const el = n.parentElement;
    const text = n.textContent.trim();
    if (!text || !el || skip(el) || !el.getClientRects().length) continue;
    out.push(text);
  }
  document.querySelectorAll('option').forEach((o) => { if (!skip(o)) out.push(o.textContent.trim()); });
  return out;
}"""


def foreign_texts(lang: str) -> set[str]:
    """Catalog texts only the other language has (no placeholders, not shared, not a bare code or number)."""
    other = "en" if lang == "ko" else "ko"
    mine = set(CATALOG[lang].values())
    out = set()
    for key, text in CATALOG[other].items():
        if text == CATALOG[lang].get(key) or text in mine or "{" in text or len(text) < 3:
            continue
        if other == "ko" and not HANGUL.search(text):
            continue
        out.add(text)
    return out


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, dict[str, Any]]]:
    """A small demo shop with a segment, a planned campaign and an admin, served by a real `segmint serve`."""
    now = datetime.now(UTC).replace(tzinfo=None, microsecond=0)
    ws, _info = build_demo(tmp_path_factory.mktemp("uiwalk") / "ws", DemoSpec(users=60, days=10, now=now),
                           progress=False)
    saved.create_segment(ws.appdb, "여성", 'trait gender = "F"')
    create_user(ws.appdb, EMAIL, PASSWORD, display_name="이관리", role="admin")
    c, _ = repo.save_campaign(ws.appdb, {
        "id": "walk", "name": "둘러보기", "purpose": "informational", "target": ["여성"], "channels": ["outbox"],
        "holdout": 0.2, "policy": {"quiet_hours": {"enabled": False}},
        "variants": [{"key": "A", "messages": {"outbox": {"text": "안녕하세요"}}}]}, status="active")
    plan_occurrence(ws, c.campaign, "once", now=datetime(2026, 3, 2, 3, 0))
    uid = ws.store.query("SELECT user_id FROM profiles ORDER BY user_id LIMIT 1").to_pylist()[0]["user_id"]
    token, path = ws.config.admin_token, ws.path
    ws.appdb.dispose()
    ws.close()
    server = Server(path, token).start()
    yield server, {"user": uid}
    server.stop()


PAGES = [("home", "/"), ("events", "/events"), ("segments", "/segments"), ("segment", "/segments/" + quote("여성")),
         ("builder", "/builder"), ("builder-edit", "/builder?name=" + quote("여성")), ("users", "/users"),
         ("user", "/users/{user}"), ("campaigns", "/campaigns"), ("composer", "/campaigns/new"),
         ("composer-edit", "/campaigns/new?from=walk"), ("report", "/campaigns/walk/report"),
         ("settings", "/settings"), ("settings-channels", "/settings/channels"),
         ("settings-policy", "/settings/policy")]


@pytest.mark.parametrize("lang", ["ko", "en"])
def test_every_page_speaks_one_language(served, browser, lang: str) -> None:  # type: ignore[no-untyped-def]
    server, facts = served
    ctx, page, errors = korean_page(browser)
    if lang == "en":
        ctx.add_cookies([{"name": "lang", "value": "en", "url": server.url}])
    page.goto(server.url + "/login")
    page.locator("#email").fill(EMAIL)
    page.locator("#password").fill(PASSWORD)
    page.locator("#login-submit").click()
    page.wait_for_url(server.url + "/")
    foreign = foreign_texts(lang)
    problems: dict[str, Any] = {}
    for name, path in PAGES:
        page.goto(server.url + path.format(**facts))
        page.wait_for_load_state("networkidle")
        expect(page.locator("html")).to_have_attribute("lang", lang)
        left = sorted({t for t in page.evaluate(TEXTS_JS) if t in foreign})
        if left:
            problems[f"{name}: other language"] = left
        # nothing spills out of its panel or card (a wide table scrolls inside it), and no Korean word is
        # broken between its syllables (a header read 가/장/두/드/러/진 one syllable per line)
        spilled = page.evaluate("""() => [...document.querySelectorAll('.panel, .card')]
          .filter((b) => b.getClientRects().length && b.scrollWidth > b.clientWidth + 1)
          .map((b) => b.id || b.className)""")
        tall = page.evaluate("""() => [...document.querySelectorAll('th, td, label, h2, h3')].filter((e) => {
          if (!e.getClientRects().length) return false;
          const words = e.textContent.trim().split(/\\s+/).filter((w) => /^[\\uac00-\\ud7a3]+$/.test(w));
          const longest = Math.max(0, ...words.map((w) => w.length));
          const st = getComputedStyle(e);
          const inner = e.clientWidth - parseFloat(st.paddingLeft) - parseFloat(st.paddingRight);
          return longest > 1 && e.clientWidth > 0 && inner < longest * parseFloat(st.fontSize) * 0.9;
        }).map((e) => e.textContent.trim())""")
        if spilled or tall:
            problems[f"{name}: layout"] = {"spilled": spilled, "stacked headers": tall}
        if unlabelled(page):
            problems[f"{name}: unlabelled"] = unlabelled(page)
        shot(page, f"70-walk-{lang}-{name}", full=True)
    assert problems == {} and errors == [], (problems, errors)
    ctx.close()
