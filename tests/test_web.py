"""The landing page shows the workspace's real figures and no secrets."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from fastapi.testclient import TestClient

from segmint.api.app import create_app
from segmint.demo.generate import DemoSpec
from segmint.demo.load import build_demo, read_demo_info
from segmint.workspace import Workspace
from web_login import sign_in


def test_landing_page_shows_real_numbers_of_the_demo(tmp_path: Path) -> None:
    ws, info = build_demo(
        tmp_path / "ws", DemoSpec(users=300, days=60, now=datetime(2026, 11, 25)), progress=False
    )
    summary = ws.store.summary()
    counts = {c.event: c.count for c in ws.store.event_counts()}
    with TestClient(create_app(ws)) as client:
        sign_in(client, ws)
        page = client.get("/")
        css = client.get("/static/segmint.css")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    html = page.text
    assert f'id="users">{summary["users"]:,}<' in html
    assert f'id="events">{summary["events"]:,}<' in html
    assert f'id="profiles">{summary["profiles"]:,}<' in html
    assert f"{str(summary['first_event'])[:16]} ~ {str(summary['last_event'])[:16]}" in html
    assert '<td class="display-name">상품 조회</td>' in html and '<td class="display-name">주문 완료</td>' in html
    assert f'<td class="num">{counts["product_viewed"]:,}</td>' in html
    assert 'href="/docs"' in html
    # secrets never reach the page
    assert info.write_key not in html and read_demo_info(ws.path).write_key == info.write_key
    assert ws.config.admin_token not in html and "wk_" not in html
    assert css.status_code == 200 and "text/css" in css.headers["content-type"]


def test_landing_page_of_an_empty_workspace_counts_live_ingest(workspace: Workspace) -> None:
    with TestClient(create_app(workspace)) as client:
        sign_in(client, workspace)
        html = client.get("/").text
    assert 'id="events">0<' in html and 'id="users">0<' in html
    assert "아직 이벤트가 없습니다" in html


def test_landing_page_survives_a_taxonomy_file_broken_while_serving(workspace: Workspace) -> None:
    with TestClient(create_app(workspace)) as client:
        sign_in(client, workspace)
        workspace.taxonomy_path.write_text("events: [unclosed", encoding="utf-8")
        page = client.get("/")
    assert page.status_code == 200 and 'id="events">0<' in page.text
