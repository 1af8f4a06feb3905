"""Shared pieces of the browser tests: Debian's Chromium under Playwright, screenshots, label checks."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from playwright import sync_api as playwright_api

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--disable-quic", "--no-first-run"]
ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts" / "browser"

# Form fields with no accessible name: no <label for>, no wrapping label, no aria-label(ledby).
UNLABELLED_JS = """() => [...document.querySelectorAll('input, select, textarea')]
  .filter((el) => el.type !== 'hidden' && !(el.labels && el.labels.length)
                  && !el.getAttribute('aria-label') && !el.getAttribute('aria-labelledby'))
  .map((el) => el.outerHTML.slice(0, 120))"""


def launch() -> Iterator[Any]:
    """Debian's Chromium, headless (no browser downloads); closed when the generator ends."""
    with playwright_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        yield b
        b.close()


def shot(page: Any, name: str, *, full: bool = False) -> None:
    """Save a screenshot as a test artifact (test-artifacts/browser/NAME.png, git-ignored)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=full)


def unlabelled(page: Any) -> list[str]:
    """The page's visible form fields that have no label."""
    return page.evaluate(UNLABELLED_JS)


def korean_page(browser: Any, timeout_ms: int = 15_000) -> tuple[Any, Any, list[str]]:
    """A new Korean-locale context and page (1400x1000) that collects the page's JavaScript errors."""
    ctx = browser.new_context(locale="ko-KR", extra_http_headers={"Accept-Language": "ko-KR,ko;q=0.9"},
                              viewport={"width": 1400, "height": 1000})
    page = ctx.new_page()
    page.set_default_timeout(timeout_ms)
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    return ctx, page, errors
