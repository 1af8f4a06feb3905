"""Campaign pages (list, composer, report) and the roles on the campaign API, in-process (TestClient, real DuckDB,
a real send to the outbox channel)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime
from html import unescape
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient

from segmint.analytics.campaign_report import workspace_report
from segmint.api.app import create_app
from segmint.api.routers.web_campaigns import uplift_cell
from segmint.appdb.users import create_user
from segmint.campaigns import repo
from segmint.campaigns.runtime import send_now
from segmint.demo.generate import DemoSpec
from segmint.demo.load import build_demo
from segmint.segments import saved
from segmint.web.i18n import translator
from segmint.workspace import Workspace
from web_login import second_session, sign_in

VIEWER = ("viewer@shop.kr", "viewer-password-1")
CAMPAIGN: dict[str, Any] = {
    "id": "winter-ab", "name": "겨울 세일 A/B", "purpose": "informational", "target": ["여성", "남성"],
    "channels": ["outbox"], "holdout": 0.2, "policy": {"quiet_hours": {"enabled": False}},
    "variants": [{"key": "A", "messages": {"outbox": {"text": "{{ user.name }}님 겨울 세일"}}},
                 {"key": "B", "messages": {"outbox": {"text": "겨울 세일 최대 50%"}}}],
    "goal": {"event": "order_completed", "window": "3d"},
}
AD: dict[str, Any] = {  # advertising on the outbox, which needs the email consent trait: some users are suppressed
    **CAMPAIGN, "id": "ad-consent", "name": "광고 동의 확인", "purpose": "advertising", "holdout": 0.1,
    "sender": {"name": "데모몰", "contact": "02-123-4567"},
    "policy": {"quiet_hours": {"enabled": False}, "consent_traits": {"outbox": "consent_email"}},
}


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[TestClient, Workspace, str]]:
    """A small demo shop with two segments and one A/B + holdout campaign sent to the outbox."""
    now = datetime.now(UTC).replace(tzinfo=None, microsecond=0)
    ws, _info = build_demo(tmp_path_factory.mktemp("webcamp") / "ws", DemoSpec(users=120, days=20, now=now),
                           progress=False)
    saved.create_segment(ws.appdb, "여성", 'trait gender = "F"')
    saved.create_segment(ws.appdb, "남성", 'trait gender = "M"')
    repo.save_campaign(ws.appdb, CAMPAIGN)
    send_now(ws, "winter-ab")
    repo.save_campaign(ws.appdb, AD)
    send_now(ws, "ad-consent")
    create_user(ws.appdb, *VIEWER, role="viewer")
    with TestClient(create_app(ws)) as client:
        yield client, ws, sign_in(client, ws)


def _text(html: str) -> str:
    return unescape(re.sub(r"<[^>]+>", " ", html))


def test_list_shows_campaigns_with_status_channel_targets_and_last_send(shop) -> None:  # type: ignore[no-untyped-def]
    client, ws, _ = shop
    repo.save_campaign(ws.appdb, {**CAMPAIGN, "id": "draft-one", "name": "초안 캠페인", "exclude": ["남성"]})
    html = client.get("/campaigns").text
    assert 'href="/campaigns" aria-current="page"' in html and 'id="new-campaign" href="/campaigns/new"' in html
    sent = re.search(r'<tr data-campaign="winter-ab">(.*?)</tr>', html, re.S).group(1)
    assert "겨울 세일 A/B" in sent and 'data-status="active"' in sent
    assert 'data-channel="outbox">아웃박스 (파일로 저장, 시험용)<' in sent  # the channel's name, not its code
    assert ">여성<" in sent and ">남성<" in sent and 'href="/campaigns/winter-ab/report"' in sent
    assert re.search(r'class="last-send">\d{4}-\d\d-\d\d \d\d:\d\d<', sent)
    draft = re.search(r'<tr data-campaign="draft-one">(.*?)</tr>', html, re.S).group(1)
    assert 'data-status="draft"' in draft and "발송 전" in draft and "− 남성" in draft
    english = client.get("/campaigns", cookies={"lang": "en"}).text
    assert ">Campaigns<" in english and ">not sent<" in english and ">draft<" in english


def test_report_page_matches_the_report_api(shop) -> None:  # type: ignore[no-untyped-def]
    client, ws, _ = shop
    report = workspace_report(ws, "winter-ab")
    api = client.get("/api/campaigns/winter-ab/report").json()
    assert api["rows"] == orjson.loads(orjson.dumps(report["rows"]))
    html = client.get("/campaigns/winter-ab/report").text
    assert 'id="funnel-chart"' in html and "/static/campaign_report.js" in html
    assert '<code id="goal">order_completed</code>' in html and '<code id="goal-window">3일</code>' in html
    chart = orjson.loads(unescape(re.search(r'id="report-data">(.*?)</script>', html, re.S).group(1)))
    assert chart["stages"] == ["대상", "제외", "발송", "도달", "오픈", "클릭", "전환"]
    totals = {r["variant"]: r for r in report["rows"] if r["segment"] is None}
    assert {s["name"]: s["data"][0] for s in chart["series"]} == {
        "A": totals["A"]["audience"], "B": totals["B"]["audience"], "대조군 (홀드아웃)": totals["control"]["audience"]}
    sent_b = next(s for s in chart["series"] if s["name"] == "B")["data"][2]
    assert sent_b == totals["B"]["sent"] > 0
    # one row per variant x segment plus the totals; the control row has no uplift, the others say why
    rows = re.findall(r'<tr class="variant-row" data-variant="([^"]+)" data-segment="([^"]+)"', html)
    assert len(rows) == 9 and ("A", "여성") in rows and ("대조군 (홀드아웃)", "전체") in rows
    a_all = re.search(r'data-variant="A" data-segment="전체">(.*?)</tr>', html, re.S).group(1)
    assert f">{totals['A']['sent']:,}<" in a_all and "%p" in a_all
    assert "그룹이 너무 작습니다" in _text(html) or "검정할 수 없습니다" in _text(html)
    assert 'id="no-suppression"' in html  # informational, quiet hours off: nobody suppressed
    english = client.get("/campaigns/winter-ab/report", cookies={"lang": "en"}).text
    assert "Funnel (per variant)" in english and "Control (holdout)" in english and "Conversion uplift" in english


def test_report_of_unsent_and_unknown_campaigns(shop) -> None:  # type: ignore[no-untyped-def]
    client, ws, _ = shop
    repo.save_campaign(ws.appdb, {**CAMPAIGN, "id": "not-yet"})
    html = client.get("/campaigns/not-yet/report").text
    assert 'id="not-sent"' in html and 'id="funnel-chart"' not in html
    # planned but not delivered yet: the page says how many are pending (and reloads itself a few times)
    repo.save_campaign(ws.appdb, {**CAMPAIGN, "id": "queued-one"})
    counts = send_now(ws, "queued-one", deliver=False)["ledger"]
    queued = re.search(r'id="pending-note" role="status" data-pending="(\d+)"',
                       client.get("/campaigns/queued-one/report").text)
    assert queued and int(queued.group(1)) == counts["queued"] > 0
    missing = client.get("/campaigns/nope/report")
    assert missing.status_code == 404 and "nope" in missing.text


def test_uplift_cell_says_when_groups_are_too_small_or_underpowered() -> None:
    t = translator("en")

    def cmp(n: int, base_n: int, p: float | None, need: int | None) -> dict[str, Any]:
        return {"conversion": {"n": n, "baseline_n": base_n, "p_value": p, "diff": 0.02, "diff_ci": [-0.01, 0.05]},
                "revenue_per_recipient": {"diff": 1250.4, "diff_ci": [-300.0, 2800.9], "p_value": 0.1234},
                "sample_size_per_group": need, "mde_relative": 0.2}

    small = uplift_cell(cmp(12, 20, 0.4, 5000), t)
    assert small["note"].startswith("Groups too small (12 < 30") and not small["significant"]
    weak = uplift_cell(cmp(400, 400, 0.03, 5000), t)
    assert "needs 5,000 users per group" in weak["note"] and not weak["significant"]
    strong = uplift_cell(cmp(9000, 9000, 0.001, 5000), t)
    assert strong == {"text": "+2.0%p", "ci": "[-1.0%p, +5.0%p]", "p": "0.001", "significant": True, "note": "",
                      "rpr": "+1,250", "rpr_ci": "[-300, +2,801]", "rpr_p": "0.123"}
    assert uplift_cell(None, t)["note"].startswith("No holdout")


def test_composer_lists_segments_users_and_labels_every_field(shop) -> None:  # type: ignore[no-untyped-def]
    client, _ws, _ = shop
    html = client.get("/campaigns/new").text
    assert 'id="composer"' in html and "/static/campaign_new.js" in html
    for seg in ("여성", "남성"):
        assert f'value="{seg}"' in html
    ids = re.findall(r'<(?:input|select|textarea)[^>]*\bid="([^"]+)"', html)
    labelled = set(re.findall(r'<label[^>]*\bfor="([^"]+)"', html))
    assert ids and [i for i in ids if i not in labelled] == []
    assert 'id="save"' in html and 'id="send-now"' in html and 'id="composer-prefill"' not in html
    # editing (or copying) a stored campaign: the composer gets its definition
    edit = client.get("/campaigns/new", params={"from": "winter-ab"}).text
    prefill = orjson.loads(unescape(re.search(r'id="composer-prefill">(.*?)</script>', edit, re.S).group(1)))
    assert prefill == repo.get_campaign(_ws.appdb, "winter-ab").campaign.model_dump(mode="json")
    assert "캠페인 편집" in edit
    assert 'href="/campaigns/new?from=winter-ab"' in client.get("/campaigns").text
    assert client.get("/campaigns/new", params={"from": "nope"}).status_code == 404


def test_viewer_may_preview_but_not_save_or_send(shop) -> None:  # type: ignore[no-untyped-def]
    client, ws, _ = shop
    user_id = ws.store.query("SELECT user_id FROM profiles ORDER BY user_id LIMIT 1").to_pylist()[0]["user_id"]
    with second_session(client) as viewer:
        csrf = sign_in(viewer, ws, *VIEWER)
        headers = {"X-CSRF-Token": csrf}
        html = viewer.get("/campaigns/new").text
        assert 'id="viewer-note"' in html and 'id="save"' not in html
        pv = viewer.post("/api/campaigns/preview", params={"user_id": user_id}, json=CAMPAIGN, headers=headers)
        assert pv.status_code == 200, pv.text
        assert pv.json()["user_id"] == user_id and len(pv.json()["variants"]) == 2
        saved_r = viewer.post("/api/campaigns", json={**CAMPAIGN, "id": "viewer-try"}, headers=headers)
        assert saved_r.status_code == 403 and "viewer" in saved_r.text
        send = viewer.post("/api/campaigns/winter-ab/send", headers=headers)
        assert send.status_code == 403
        assert "viewer-try" not in {c.campaign.id for c in repo.list_campaigns(ws.appdb)}
        listing = viewer.get("/campaigns").text
        assert 'id="new-campaign"' not in listing and "edit-link" not in listing and "report-link" in listing


def test_suppression_reasons_chart_and_a_blocking_check_in_the_preview(shop) -> None:  # type: ignore[no-untyped-def]
    client, ws, csrf = shop
    report = workspace_report(ws, "ad-consent")
    totals = {r["variant"]: r for r in report["rows"] if r["segment"] is None}
    assert totals["A"]["suppressed_by_reason"].get("no_consent", 0) > 0
    html = client.get("/campaigns/ad-consent/report").text
    assert 'id="suppression-chart"' in html and 'id="no-suppression"' not in html
    chart = orjson.loads(unescape(re.search(r'id="report-data">(.*?)</script>', html, re.S).group(1)))
    assert "수신 동의 없음" in chart["reasons"]
    i = chart["reasons"].index("수신 동의 없음")
    by_name = {s["name"]: s["data"][i] for s in chart["reason_series"]}
    assert by_name["A"] == totals["A"]["suppressed_by_reason"]["no_consent"]
    assert next(s for s in chart["series"] if s["name"] == "A")["data"][1] == totals["A"]["suppressed"]
    en = orjson.loads(unescape(re.search(r'id="report-data">(.*?)</script>',
                                         client.get("/campaigns/ad-consent/report", cookies={"lang": "en"}).text,
                                         re.S).group(1)))
    assert "no consent" in en["reasons"] and en["stages"][1] == "Suppressed"
    # the composer's preview call for a user without consent names the guardrail that stops them
    user = ws.store.query("SELECT user_id FROM profiles WHERE coalesce(json_extract_string(traits, '$.consent_email'), "
                          "'false') <> 'true' ORDER BY user_id LIMIT 1").to_pylist()[0]["user_id"]
    pv = client.post("/api/campaigns/preview", params={"user_id": user}, json=AD, headers={"X-CSRF-Token": csrf})
    assert pv.status_code == 200, pv.text
    variant = pv.json()["variants"][0]
    assert variant["outcome"] == "suppressed" and variant["reason"] == "no_consent"
    assert any(not c["ok"] for c in variant["checks"])
