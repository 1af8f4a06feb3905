"""Composer schedules and dry run, settings (channel providers, policy defaults), home activity, segment
sparklines and Korean explain text, in-process (TestClient, real DuckDB and app DB, real planning)."""

from __future__ import annotations

import json
import re
import tomllib
from collections.abc import Iterator
from datetime import UTC, datetime
from html import unescape
from typing import Any

import pytest
from fastapi.testclient import TestClient

from segmint.api.app import create_app
from segmint.appdb.keys import create_key
from segmint.appdb.users import create_user
from segmint.campaigns.model import parse_campaign
from segmint.campaigns.plan import plan_occurrence
from segmint.demo.generate import DemoSpec
from segmint.demo.load import build_demo
from segmint.segments import saved
from segmint.web.policy_defaults import load_policy
from segmint.workspace import Workspace
from web_login import sign_in

VIEWER = ("viewer@shop.kr", "viewer-password-1")
ADMIN = ("admin@shop.kr", "admin-password-1")
AD: dict[str, Any] = {  # advertising on the outbox with the email consent trait: some users are suppressed
    "id": "ad-dry", "name": "광고 드라이런", "purpose": "advertising", "target": ["여성", "남성"], "exclude": ["VIP"],
    "channels": ["outbox"], "holdout": 0.1, "audience_cap": 40, "sender": {"name": "데모몰", "contact": "02-123-4567"},
    "policy": {"quiet_hours": {"enabled": False}, "consent_traits": {"outbox": "consent_email"},
               "frequency_caps": [{"channel": "*", "max": 3, "per": "day"}]},
    "variants": [{"key": "A", "messages": {"outbox": {"text": "{{ user.name }}님 세일"}}},
                 {"key": "B", "messages": {"outbox": {"text": "세일 50%"}}}],
    "goal": {"event": "order_completed", "window": "3d"},
}


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[TestClient, Workspace, str]]:
    """A small demo shop with three segments, an admin (signed in), and a viewer."""
    now = datetime.now(UTC).replace(tzinfo=None, microsecond=0)
    ws, _info = build_demo(tmp_path_factory.mktemp("webui6") / "ws", DemoSpec(users=120, days=20, now=now),
                           progress=False)
    saved.create_segment(ws.appdb, "여성", 'trait gender = "F"')
    saved.create_segment(ws.appdb, "남성", 'trait gender = "M"')
    saved.create_segment(ws.appdb, "VIP", "did order_completed at least 3 times")
    create_user(ws.appdb, *VIEWER, role="viewer")
    create_user(ws.appdb, *ADMIN, role="admin")
    with TestClient(create_app(ws)) as client:
        yield client, ws, sign_in(client, ws, *ADMIN)


def _text(html: str) -> str:
    return unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html)))


def _attrs(html: str, elem_id: str) -> dict[str, str]:
    tag = re.search(rf'<[^>]*id="{elem_id}"[^>]*>', html, re.S)
    assert tag, f"no #{elem_id} in {html[:500]}"
    return dict(re.findall(r'([\w-]+)="([^"]*)"', tag.group(0)))


def _dry(client: TestClient, csrf: str, body: dict[str, Any], **kw: Any) -> Any:
    return client.post("/ui/campaigns/dry-run", json=body, headers={"X-CSRF-Token": csrf}, **kw)


def test_dry_run_counts_equal_what_planning_writes(shop) -> None:  # type: ignore[no-untyped-def]
    client, ws, csrf = shop
    resp = _dry(client, csrf, AD)
    assert resp.status_code == 200, resp.text
    out = _attrs(resp.text, "dryrun-out")
    stops = {code: int(n.replace(",", "")) for code, n in re.findall(
        r'<tr data-rail="(\w+)"[^>]*>.*?<td class="num stops">([\d,]+)</td>', resp.text, re.S)}
    on = dict(re.findall(r'<tr data-rail="(\w+)" data-on="(\d)"', resp.text))
    # now plan the same campaign for real (writes the ledger) and compare every figure
    plan = plan_occurrence(ws, parse_campaign(AD), "once")
    assert int(out["data-audience"]) == plan.audience > 40
    assert int(out["data-queued"]) == plan.statuses.get("queued", 0) > 0
    assert int(out["data-holdout"]) == plan.statuses.get("holdout", 0)
    assert int(out["data-suppressed"]) == plan.statuses.get("suppressed", 0)
    assert plan.reasons["audience_cap"] == plan.audience - 40 == stops["audience_cap"]
    assert plan.reasons.get("no_consent", 0) > 0 and stops["no_consent"] == plan.reasons["no_consent"]
    assert on["no_consent"] == "1" and on["quiet_hours"] == "0" and on["ad_law_night"] == "1"
    assert on["audience_cap"] == "1" and on["ad_law_content"] == "1"
    text = _text(resp.text)
    assert "수신 동의 필요: 아웃박스 (파일로 저장, 시험용) → consent_email" in text and "최대 발송 인원 40명" in text
    assert "모든 채널 3/일" in text


def test_dry_run_for_each_schedule_and_bad_input(shop) -> None:  # type: ignore[no-untyped-def]
    client, _ws, csrf = shop
    info = {**AD, "id": "info", "purpose": "informational", "audience_cap": None}
    weekly = _dry(client, csrf, {**info, "schedule": {"type": "recurring", "cron": "0 10 * * 1",
                                                      "timezone": "Asia/Seoul"}})
    assert weekly.status_code == 200, weekly.text
    due = re.search(r"다음 발송 <b>(\d{4}-\d\d-\d\d \d\d:\d\d)</b> UTC", weekly.text).group(1)
    monday = datetime.strptime(due, "%Y-%m-%d %H:%M")
    assert (monday.hour, monday.minute) == (1, 0) and monday.weekday() == 0  # 10:00 KST Monday = 01:00 UTC
    local = _dry(client, csrf, {**info, "schedule": {"type": "once", "at": "2030-01-02T10:00", "local_time": True}})
    assert local.status_code == 200 and int(_attrs(local.text, "dryrun-out")["data-queued"]) > 0
    entry = _dry(client, csrf, {**info, "schedule": {"type": "triggered", "event": "segment_entered", "segment": "VIP",
                                                     "delay": "2h", "cancel_on": ["order_completed"]}})
    assert entry.status_code == 200
    assert "지금 대상 전원이 트리거했다고 가정" in entry.text
    assert 'data-rail="cancelled" data-on="1"' in entry.text and "취소 이벤트: order_completed" in _text(entry.text)
    anyone = _dry(client, csrf, {**info, "target": [], "exclude": [],
                                 "schedule": {"type": "triggered", "event": "cart_added", "delay": "1h"}})
    assert anyone.status_code == 200 and 'id="dryrun-note"' in anyone.text
    bad = _dry(client, csrf, {**info, "schedule": {"type": "recurring", "cron": "61 * * * *"}})
    assert bad.status_code == 400 and "schedule.recurring.cron" in bad.text and "bad cron expression" in bad.text
    unknown = _dry(client, csrf, {**info, "target": ["없는 세그먼트"]})
    assert unknown.status_code == 404 and "없는 세그먼트" in unknown.text
    assert _dry(client, "wrong", info).status_code == 403  # CSRF


def _form(csrf: str, **fields: str) -> dict[str, str]:
    return {"csrf_token": csrf, **fields}


def test_channel_settings_saved_to_the_config_with_secrets_masked(shop) -> None:  # type: ignore[no-untyped-def]
    client, ws, csrf = shop
    page = client.get("/settings/channels").text
    assert 'id="ch-email" data-configured="0"' in page and 'id="tab-channels" aria-current="page"' in page
    smtp = _form(csrf, host="smtp.shop.kr", port="2525", sender="crm@shop.kr", sender_name="데모몰",
                 username="crm", password="s3cret-smtp-pass", security="tls", unsubscribe_mailto="", ca_file="")
    resp = client.post("/settings/channels/email", data=smtp)
    assert resp.status_code == 200 and 'id="channel-saved"' in resp.text
    assert "s3cret-smtp-pass" not in resp.text and "••••ss" in resp.text  # masked: dots and the last two
    stored = tomllib.loads((ws.path / "segmint.toml").read_text())["channels"]["email"]
    assert stored == {"host": "smtp.shop.kr", "port": 2525, "sender": "crm@shop.kr", "sender_name": "데모몰",
                      "username": "crm", "password": "s3cret-smtp-pass", "security": "tls",
                      "unsubscribe_mailto": "", "ca_file": ""}
    assert ws.config.channels.email is not None and ws.config.channels.email.port == 2525  # live config too
    page = client.get("/settings/channels").text
    assert 'id="ch-email" data-configured="1"' in page and "s3cret-smtp-pass" not in page
    assert re.search(r'id="email-host" name="host" value="smtp.shop.kr"', page)
    # an empty secret keeps the stored one; other fields change
    client.post("/settings/channels/email", data={**smtp, "password": "", "port": "587"})
    stored = tomllib.loads((ws.path / "segmint.toml").read_text())["channels"]["email"]
    assert stored["password"] == "s3cret-smtp-pass" and stored["port"] == 587
    # bad input: a clear error naming the field, nothing saved
    bad = client.post("/settings/channels/webhook", data=_form(csrf, url="https://hook.shop.kr/in", secret="",
                                                               max_attempts="many"))
    assert bad.status_code == 400 and 'id="channel-error"' in bad.text
    assert "channels.webhook.secret" in _text(bad.text) or "channels.webhook.max_attempts" in _text(bad.text)
    assert "webhook" not in tomllib.loads((ws.path / "segmint.toml").read_text())["channels"]
    assert client.post("/settings/channels/nope", data=_form(csrf)).status_code == 400
    assert client.post("/settings/channels/email", data={**smtp, "csrf_token": "x"}).status_code == 403
    # removing a section: the channel is no longer configured
    client.post("/settings/channels/email", data=_form(csrf, _action="remove"))
    assert "email" not in tomllib.loads((ws.path / "segmint.toml").read_text()).get("channels", {})
    assert ws.config.channels.email is None
    # a marketer sees the page without save buttons and is refused
    other = TestClient(client.app)  # no second lifespan: the app is already running
    mcsrf = sign_in(other, ws)  # the default marketer
    page = other.get("/settings/channels").text
    assert 'id="admin-note"' in page and 'id="save-email"' not in page
    assert other.post("/settings/channels/email", data={**smtp, "csrf_token": mcsrf}).status_code == 403


def test_policy_defaults_saved_and_used_by_the_composer(shop) -> None:  # type: ignore[no-untyped-def]
    client, ws, csrf = shop
    (ws.path / "campaign-policy.json").write_text(json.dumps(  # set outside the form: must survive a save
        {"rate_limits": {"sms": 5.0}, "consent_traits": {"email": "consent_email", "outbox": "consent_email"}}))
    page = client.get("/settings/policy").text
    assert re.search(r'id="consent-email" name="consent_email" value="consent_email"', page)
    assert re.search(r'id="cap-max-0" name="cap_max_0" min="1" step="1" value="3"', page)
    form = _form(csrf, consent_email="agree_email", consent_push="consent_push", consent_sms="consent_sms",
                 consent_kakao="consent_sms", korean_ad_law="on", ad_prefix="(광고)",
                 night_consent_trait="consent_night",
                 night_start="21:00", night_end="08:00", quiet_enabled="on", quiet_start="22:00", quiet_end="09:00",
                 quiet_action="drop", cap_channel_0="*", cap_max_0="2", cap_per_0="day", cap_channel_1="email",
                 cap_max_1="5", cap_per_1="week", cap_channel_2="*", cap_max_2="", cap_per_2="day", max_attempts="4")
    resp = client.post("/settings/policy", data=form)
    assert resp.status_code == 200 and 'id="policy-saved"' in resp.text
    composer = client.get("/campaigns/new").text
    assert "야간 방해금지 시간(22:00-09:00)에는 보내지 않음" in composer  # the quiet-hours box names the default
    assert '<option value="order_completed" label="주문 완료">' in composer  # taxonomy display names
    defaults = re.search(r'<script type="application/json" id="policy-defaults">(.*?)</script>', composer, re.S)

    pol = json.loads(unescape(defaults.group(1)))
    assert pol["consent_traits"]["email"] == "agree_email" and pol["informational_needs_consent"] is False
    assert pol["quiet_hours"] == {"enabled": True, "start": "22:00:00", "end": "09:00:00", "action": "drop"}
    assert pol["frequency_caps"] == [{"channel": "*", "max": 2, "per": "day"}, {"channel": "email", "max": 5,
                                                                                 "per": "week"}]
    assert pol["max_attempts"] == 4 and pol["rate_limits"] == {"sms": 5.0}
    assert pol["consent_traits"]["outbox"] == "consent_email"
    bad = client.post("/settings/policy", data={**form, "cap_max_0": "0"})
    assert bad.status_code == 400 and "policy.frequency_caps.0.max" in _text(bad.text)
    # more caps than the form's first empty rows: every one is kept, and the page offers one more empty row
    six = {f"cap_{k}_{i}": v for i in range(6) for k, v in (("channel", "*"), ("max", str(10 + i)), ("per", "week"))}
    assert client.post("/settings/policy", data={**form, **six}).status_code == 200
    page = client.get("/settings/policy").text
    assert re.search(r'id="cap-max-5" name="cap_max_5" min="1" step="1" value="15"', page)
    assert re.search(r'id="cap-max-6" name="cap_max_6" min="1" step="1" value=""', page) and "cap-max-7" not in page
    assert [c.max for c in load_policy(ws).frequency_caps] == [10, 11, 12, 13, 14, 15]
    viewer = TestClient(client.app)
    vcsrf = sign_in(viewer, ws, *VIEWER)
    assert 'id="viewer-note"' in viewer.get("/settings/policy").text
    assert viewer.post("/settings/policy", data={**form, "csrf_token": vcsrf}).status_code == 403
    (ws.path / "campaign-policy.json").unlink()  # back to the model's defaults for the other tests


def test_home_shows_recent_evaluations_runs_and_failures(shop) -> None:  # type: ignore[no-untyped-def]
    from segmint.campaigns import repo
    from segmint.campaigns.runtime import send_now
    from segmint.segments import live_log

    client, ws, _csrf = shop
    live_log.ensure_table(ws.appdb)
    now = datetime.now(UTC).replace(tzinfo=None)
    # segment names the live engine never evaluates: the ingestion below makes it re-evaluate the real ones,
    # and the home page shows each segment's latest evaluation (which could then be that one, still running)
    ok = live_log.begin(ws.appdb, "봄-스윕", 1, "sweep", now, now)
    live_log.finish(ws.appdb, ok, now, 12.5, users=120, rows=61, members=61, entered=4, exited=1)
    bad = live_log.begin(ws.appdb, "가을-실패", 1, "edit", now, now)
    live_log.fail(ws.appdb, bad, now, 3.0, "Binder Error: boom")
    # email is not configured in this workspace: the worker fails every message, and says why
    mail = {**AD, "id": "mail-fail", "purpose": "informational", "channels": ["email"], "audience_cap": None,
            "exclude": [], "target": ["여성"], "holdout": 0.0,
            "variants": [{"key": "A", "messages": {"email": {"subject": "안녕", "text": "세일"}}}]}
    repo.save_campaign(ws.appdb, mail)
    result = send_now(ws, "mail-fail")
    failed = result["ledger"].get("failed", 0)
    assert failed > 0
    num = (lambda html, i: int(re.search(rf'id="{i}"[^>]*>([\d,]+)<', html).group(1).replace(",", "")))  # noqa: E731
    before = client.get("/").text
    key = create_key(ws.appdb).secret
    batch = [{"type": "track", "userId": "u0000001", "event": "app_opened", "messageId": "rate-1"},
             {"type": "track", "userId": "u0000002", "event": "app_opened", "messageId": "rate-2"},
             {"type": "track", "event": "no_user_here", "messageId": "rate-3"}]
    assert client.post("/v1/batch", json={"batch": batch}, auth=(key, "")).json()["accepted"] == 2
    assert client.app.state.segmint.ingestor.wait_stored()
    html = client.get("/").text
    assert num(html, "rate-hour") == num(before, "rate-hour") + 2
    assert num(html, "rate-day") == num(before, "rate-day") + 2
    assert num(html, "rejected-day") == num(before, "rejected-day") + 1
    evals = re.search(r'<table class="grid evals" id="recent-evals".*?</table>', html, re.S).group(0)
    row = re.search(r'<tr data-segment="봄-스윕">(.*?)</tr>', evals, re.S).group(1)
    assert "정기 재계산" in row and 'data-status="ok"' in row and ">61<" in row and "+4 −1" in row
    vip = re.search(r'<tr data-segment="가을-실패">(.*?)</tr>', evals, re.S).group(1)
    assert 'data-status="failed"' in vip and "실패" in vip and "Binder Error: boom" in vip
    run = re.search(r'<tr data-campaign="mail-fail">(.*?)</tr>', html, re.S).group(1)
    assert f'<td class="num failed">{failed:,}</td>' in run and '<td class="num sent">0</td>' in run
    fails = re.search(r'<table class="grid" id="recent-failures".*?</table>', html, re.S).group(0)
    assert "mail-fail" in fails and "발송사 실패" in fails and "channel &#39;email&#39; is not configured" in fails
    english = client.get("/", cookies={"lang": "en"}).text
    assert "Recent segment evaluations" in english and "Recent failures" in english and "provider failed" in english


def test_segment_list_trend_sparkline_from_recorded_growth(shop) -> None:  # type: ignore[no-untyped-def]
    from segmint.analytics.segment_growth import backfill

    client, ws, _csrf = shop
    saved.create_segment(ws.appdb, "고정 명단", 'trait gender = "F"', kind="static")
    saved.freeze_members(ws.appdb, ws.store, "고정 명단")
    backfill(ws.appdb, ws.store, "여성", zone=ws.config.zone, days=30)
    women = ws.store.query("SELECT count(*) AS n FROM profiles WHERE json_extract_string(traits, '$.gender') = 'F'"
                           ).to_pylist()[0]["n"]
    page = client.get("/segments").text
    assert 'hx-get="/ui/segments/trend?name=%EC%97%AC%EC%84%B1"' in page and "추이 (30일)" in page
    assert re.search(r'<tr data-segment="고정 명단">.*?정적', page, re.S)  # kind column: dynamic / static
    svg = client.get("/ui/segments/trend", params={"name": "여성"}).text
    attrs = dict(re.findall(r'([\w-]+)="([^"]*)"', svg.split(">")[0]))
    assert attrs["role"] == "img" and attrs["data-points"] == "30" and int(attrs["data-last"]) == women > 0
    assert attrs["aria-label"] == f"여성 30일 인원 추이: {women:,} → {women:,}"
    assert len(re.search(r' points="([^"]+)"', svg).group(1).split()) == 30
    saved.create_segment(ws.appdb, "아무도", "did no_such_event")  # never had a member: nothing recorded
    assert 'data-trend="none"' in client.get("/ui/segments/trend", params={"name": "아무도"}).text
    assert 'data-trend="static"' in client.get("/ui/segments/trend", params={"name": "고정 명단"}).text


def test_explain_details_in_korean_and_english(shop) -> None:  # type: ignore[no-untyped-def]
    from segmint.segments.dsl import parse
    from segmint.segments.reference import evaluate_user
    from segmint.web.explain_text import localize_detail, localize_tree

    client, ws, _csrf = shop
    uid = ws.store.query("SELECT user_id FROM events WHERE event = 'order_completed' GROUP BY user_id "
                         "ORDER BY count(*) DESC LIMIT 1").to_pylist()[0]["user_id"]
    ko = client.get("/ui/segments/explain", params={"name": "VIP", "user": uid}).text
    assert re.search(r"조건에 맞는 이벤트 \d+건", ko) and "matching events" not in ko
    en = client.get("/ui/segments/explain", params={"name": "VIP", "user": uid}, cookies={"lang": "en"}).text
    assert re.search(r"\d+ matching events", en)
    women = client.get("/ui/segments/explain", params={"name": "여성", "user": uid}).text
    assert "속성 gender 값: " in unescape(women)
    # every detail the evaluator writes for these node types has a Korean form (none left in English)
    texts = ['trait gender = "F" and did order_completed at least 1 times in last 30 days',
             "first app_opened in last 400 days", "last order_completed at least 1 days ago",
             "did product_viewed then cart_added within 1 day",
             "did cart_added in last 30 days not followed by order_completed within 1 day",
             "sum revenue of order_completed in last 90 days >= 1000",
             "with last cart_added as cart: did order_completed after cart",
             'last 3 messages on "push" not opened', "since last order_completed >= 2 * usual gap"]
    english = re.compile(r"\b(matching|events?|compared|followed|starts|bound|satisfies|messages|gaps|since|"
                         r"completed|younger|counts)\b")
    users = [uid, *[r["user_id"] for r in ws.store.query("SELECT user_id FROM profiles ORDER BY user_id LIMIT 3")
                                                              .to_pylist()]]
    seen = 0
    for text in texts:
        for u in users:
            node = evaluate_user(parse(text), ws.store, u, None, workspace_tz=ws.config.timezone).to_dict()
            stack = [localize_tree(node, "ko")]
            while stack:
                n = stack.pop()
                stack.extend(n["children"])
                if n["detail"]:
                    seen += 1
                    assert not english.search(n["detail"].split(" 값: ")[0]), (text, n["detail"])
    assert seen > 20
    assert localize_detail("something new", "ko") == "something new"  # unknown details pass through
    assert localize_detail("3 matching events", "en") == "3 matching events"


def test_viewer_may_dry_run_but_not_save(shop) -> None:  # type: ignore[no-untyped-def]
    client, ws, _csrf = shop
    viewer = TestClient(client.app)
    vcsrf = sign_in(viewer, ws, *VIEWER)
    page = viewer.get("/campaigns/new").text
    assert 'id="dryrun-run"' in page and 'id="save"' not in page and 'id="viewer-note"' in page
    info = {**AD, "id": "viewer-look", "purpose": "informational"}
    resp = viewer.post("/ui/campaigns/dry-run", json=info, headers={"X-CSRF-Token": vcsrf})
    assert resp.status_code == 200 and int(_attrs(resp.text, "dryrun-out")["data-audience"]) > 0
    assert viewer.post("/api/campaigns", json=info, headers={"X-CSRF-Token": vcsrf}).status_code == 403
    assert viewer.post("/ui/campaigns/dry-run", content=b"not json", headers={"X-CSRF-Token": vcsrf}
                       ).status_code == 400


def test_admin_adds_a_user_who_can_sign_in(shop) -> None:  # type: ignore[no-untyped-def]
    client, ws, csrf = shop
    form = _form(csrf, email="new.marketer@shop.kr", display_name="박신입", role="viewer", password="first-pass-123")
    resp = client.post("/settings/users", data=form)
    assert resp.status_code == 200 and 'id="user-created"' in resp.text
    assert re.search(r'<tr data-user="new.marketer@shop.kr"><td>new.marketer@shop.kr</td><td>박신입</td>', resp.text)
    again = client.post("/settings/users", data=form)
    assert again.status_code == 409 and "already exists" in _text(again.text)
    short = client.post("/settings/users", data={**form, "email": "x@shop.kr", "password": "short"})
    assert short.status_code == 400 and "password: password needs at least 8 characters" in _text(short.text)
    newcomer = TestClient(client.app)
    sign_in(newcomer, ws, "new.marketer@shop.kr", "first-pass-123")
    assert 'id="my-role">뷰어<' in newcomer.get("/").text
    marketer = TestClient(client.app)
    mcsrf = sign_in(marketer, ws)
    assert 'id="new-user-form"' not in marketer.get("/settings").text
    assert marketer.post("/settings/users", data={**form, "email": "y@shop.kr", "csrf_token": mcsrf}).status_code == 403


def test_campaign_list_names_each_schedule(shop) -> None:  # type: ignore[no-untyped-def]
    from segmint.campaigns import repo

    client, ws, _csrf = shop
    base = {**AD, "purpose": "informational", "audience_cap": None}
    repo.save_campaign(ws.appdb, {**base, "id": "s-cron", "schedule": {"type": "recurring", "cron": "0 10 * * 1"}})
    repo.save_campaign(ws.appdb, {**base, "id": "s-local", "schedule": {"type": "once", "at": "2030-01-02T10:00",
                                                                         "local_time": True}})
    repo.save_campaign(ws.appdb, {**base, "id": "s-entry", "schedule": {
        "type": "triggered", "event": "segment_entered", "segment": "VIP", "delay": "2h"}})
    html = client.get("/campaigns").text
    cell = (lambda cid: _text(re.search(rf'<tr data-campaign="{cid}">.*?<td class="schedule">(.*?)</td>', html,  # noqa: E731
                                        re.S).group(1)).strip())
    assert cell("s-cron") == "cron 0 10 * * 1 (워크스페이스 시간대)"
    assert cell("s-local") == "2030-01-02 10:00 고객 현지 시각"
    assert cell("s-entry") == "트리거: 세그먼트 진입 VIP +2시간"  # units in Korean, not 2h


def test_triggered_dry_run_renders_with_each_users_latest_trigger_event(shop) -> None:  # type: ignore[no-untyped-def]
    client, ws, csrf = shop
    cart = {**AD, "id": "cart-reminder", "purpose": "informational", "audience_cap": None, "exclude": [],
            "target": ["여성"], "holdout": 0.0, "policy": {"quiet_hours": {"enabled": False}, "frequency_caps": []},
            "schedule": {"type": "triggered", "event": "cart_added", "delay": "1h"},
            "variants": [{"key": "A", "messages": {"outbox": {"text": "{{ event.product_id }} 잊지 마세요"}}}]}
    women_without_cart = ws.store.query(
        "SELECT count(*) AS n FROM profiles p WHERE json_extract_string(p.traits, '$.gender') = 'F' AND NOT EXISTS "
        "(SELECT 1 FROM events e WHERE e.user_id = p.user_id AND e.event = 'cart_added')").to_pylist()[0]["n"]
    resp = _dry(client, csrf, cart)
    assert resp.status_code == 200, resp.text
    stops = {code: int(n.replace(",", "")) for code, n in re.findall(
        r'<tr data-rail="(\w+)"[^>]*>.*?<td class="num stops">([\d,]+)</td>', resp.text, re.S)}
    out = _attrs(resp.text, "dryrun-out")
    assert 0 < women_without_cart < int(out["data-audience"])
    assert stops["missing_variable"] == women_without_cart  # only users with no cart_added lack event.product_id
    assert int(out["data-queued"]) == int(out["data-audience"]) - women_without_cart


def test_large_audiences_are_estimated_from_a_deterministic_sample(shop) -> None:  # type: ignore[no-untyped-def]
    from segmint.web.campaign_dryrun import dry_run

    _client, ws, _csrf = shop
    c = parse_campaign({**AD, "id": "sampled", "purpose": "informational", "audience_cap": None})
    full = dry_run(ws, c)
    est = dry_run(ws, c, sample=40)
    again = dry_run(ws, c, sample=40)
    assert not full["estimated"] and full["decided"] == full["audience"] > 40
    assert est["estimated"] and est["decided"] == 40 and est["audience"] == full["audience"]
    assert est["statuses"] == again["statuses"]  # the same sample every time
    assert abs(sum(est["statuses"].values()) - full["audience"]) <= len(est["statuses"])  # scaled back up
