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
