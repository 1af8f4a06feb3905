"""The events and settings pages show the workspace's real taxonomy, figures, violations and rejections."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from fastapi.testclient import TestClient

from segmint.api.app import create_app
from segmint.appdb.keys import create_key
from segmint.config import save_config
from segmint.workspace import Workspace
from web_login import sign_in

TAXONOMY = """\
version: 1
events:
  product_viewed:
    display_name: 상품 조회
    properties:
      product_id: {type: string, required: true, display_name: 상품 ID, description: 상품 코드}
      price: {type: integer, display_name: 가격}
"""


def test_events_page_volume_violations_and_rejections(workspace: Workspace) -> None:
    workspace.taxonomy_path.write_text(TAXONOMY, encoding="utf-8")
    workspace.config.taxonomy.mode = "warn"
    save_config(workspace.path, workspace.config)
    key = create_key(workspace.appdb).secret
    now = datetime.now(UTC).replace(microsecond=0)
    batch = [
        {"type": "track", "userId": "u1", "event": "product_viewed", "messageId": "a",
         "timestamp": now.isoformat(), "properties": {"product_id": "p1", "price": 1000}},
        {"type": "track", "userId": "u2", "event": "product_viewed", "messageId": "b",
         "timestamp": (now - timedelta(days=2)).isoformat(), "properties": {"product_id": "p2", "price": "비쌈"}},
        {"type": "track", "userId": "u2", "event": "product_viewed", "messageId": "c",
         "timestamp": (now - timedelta(days=45)).isoformat(), "properties": {"product_id": "p3"}},
        {"type": "track", "userId": "u3", "event": "coupon_used", "messageId": "d", "timestamp": now.isoformat()},
        {"type": "track", "event": "no_user_here", "messageId": "e"},
    ]
    with TestClient(create_app(workspace)) as client:
        resp = client.post("/v1/batch", json={"batch": batch}, auth=(key, ""))
        assert resp.status_code == 400 and resp.json()["accepted"] == 4, resp.text
        assert client.app.state.segmint.ingestor.wait_stored()
        sign_in(client, workspace)
        html = client.get("/events").text
        vol = client.get("/ui/events/volume", params={"event": "product_viewed"}).json()
        none = client.get("/ui/events/volume", params={"event": "never_sent"}).json()
        client.cookies.set("lang", "en")
        english = client.get("/events").text
    # display names, properties with types, events not in the taxonomy flagged
    assert '<span class="display-name">상품 조회</span> <code>product_viewed</code>' in html
    # property types in the page's language (정수, not integer)
    assert ('<td><code>price</code></td><td class="display-name">가격</td><td data-type="integer">정수</td>'
            '<td>아니오</td>') in html
    assert ('<td><code>product_id</code></td><td class="display-name">상품 ID</td><td data-type="string">문자열</td>'
            '<td>예</td><td>상품 코드</td>') in html
    assert re.search(r"<code>coupon_used</code>\s*<span class=\"muted\">\(택소노미에 없음\)</span>", html)
    assert "건수 3 · 사용자 2" in html
    # violations and the rejected message with its reason
    assert 'id="violations"' in html and "properties.price" in html and "expected integer, got string" in html
    assert 'id="rejected-list"' in html
    assert "<td><code>userId or anonymousId</code></td><td>one of them is required</td>" in html
    assert 'data-event="product_viewed"' in html and "/static/vendor/echarts-5.6.0.min.js" in html
    assert "Events and taxonomy" in english and "not in the taxonomy" in english
    # 30 zero-filled days ending today; the 45-day-old event is outside the window
    assert len(vol["days"]) == 30 and vol["days"][-1] == str(now.date())
    assert sum(vol["counts"]) == 2 and vol["counts"][-1] == 1 and vol["counts"][-3] == 1
    assert none["counts"] == [0] * 30
