"""FCM HTTP v1 send errors, classified per the documented contract and applied by the worker: a dead token
(UNREGISTERED / 404 NOT_FOUND) is ledger `bounced` and the user goes on the push suppression list; retryable
errors (QUOTA_EXCEEDED, UNAVAILABLE, INTERNAL) are re-queued with backoff and Retry-After per
`policy.max_attempts`; INVALID_ARGUMENT and SENDER_ID_MISMATCH fail without retry. Against the FCM fake."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest

from pg_server import pg_url  # noqa: F401  (session fixture: a real PostgreSQL server)
from segmint.campaigns import repo
from segmint.campaigns.deliver import Worker
from segmint.campaigns.events import pump
from segmint.campaigns.ledger import ledger_rows
from segmint.campaigns.plan import plan_occurrence
from segmint.campaigns.suppression import is_suppressed
from segmint.channels.base import OutboundMessage
from segmint.channels.fcm import FcmChannel
from segmint.segments import saved
from segmint.workspace import Workspace
from test_campaign_send import profiles
from vendor_fakes import Running, fcm_app

NOON_KST = datetime(2026, 3, 2, 3, 0)  # planned at a fixed time: no quiet hours, no night rule


@pytest.fixture(scope="module")
def fcm():
    app, state = fcm_app("demo-shop", "good-token")
    with Running(app) as running:
        yield running, state


def _channel(running: Running, sleeps: list[float], attempts: int = 1) -> FcmChannel:
    return FcmChannel(project_id="demo-shop", access_token="good-token", base_url=running.url, sleep=sleeps.append,
                      max_attempts=attempts)


def _push(to: str, **data: Any) -> OutboundMessage:
    return OutboundMessage(message_id=f"c:o:{to}", user_id="u", to=to, subject="s", text="t", data=data)


def test_adapter_classifies_each_documented_error(fcm) -> None:
    running, state = fcm
    state["other_sender"].add("other-project-token")
    sleeps: list[float] = []
    ch = _channel(running, sleeps, attempts=3)
    dead = ch.send(_push("unregistered-token"))
    assert dead.status == "bounced" and dead.error.startswith("UNREGISTERED") and "HTTP 404" in dead.error
    malformed = ch.send(_push("not a token"))
    assert (malformed.status, malformed.retryable) == ("failed", False)
    assert malformed.error.startswith("INVALID_ARGUMENT: The registration token is not a valid")
    mismatch = ch.send(_push("other-project-token"))
    assert (mismatch.status, mismatch.retryable) == ("failed", False) and mismatch.error.startswith("SENDER_ID")
    assert sleeps == []  # none of these is retried
    state["fail_token"]["busy-token"] = [(429, "RESOURCE_EXHAUSTED", "QUOTA_EXCEEDED", 30)] * 3
    busy = ch.send(_push("busy-token"))
    assert (busy.status, busy.retryable, busy.retry_after) == ("failed", True, 30.0)
    assert busy.error.startswith("QUOTA_EXCEEDED") and sleeps == [30.0, 30.0]  # Retry-After honoured
    state["fail_token"]["flaky-token"] = [(503, "UNAVAILABLE", "UNAVAILABLE", None), (500, "INTERNAL", "INTERNAL",
                                                                                       None)]
    assert ch.send(_push("flaky-token")).ok  # third attempt goes through


def test_bad_data_value_gets_the_bad_request_detail(fcm) -> None:
    """The fake answers a non-string data value as documented (google.rpc.BadRequest, no FcmError code)."""
    import httpx

    running, _ = fcm
    body = {"message": {"token": "device-1", "data": {"price": 12}}}
    r = httpx.post(f"{running.url}/v1/projects/demo-shop/messages:send", json=body,
                   headers={"Authorization": "Bearer good-token"})
    assert r.status_code == 400
    err = r.json()["error"]
    assert err["status"] == "INVALID_ARGUMENT"
    assert err["details"][0]["@type"] == "type.googleapis.com/google.rpc.BadRequest"
    assert err["details"][0]["fieldViolations"][0]["field"] == "message.data[0].value"
    from segmint.channels.fcm import parse_error

    parsed = parse_error(r)
    assert (parsed.code, parsed.dead_token, parsed.retryable) == ("INVALID_ARGUMENT", False, False)


def _campaign(ws: Workspace, cid: str, tokens: dict[str, str], max_attempts: int = 3) -> Any:
    profiles(ws, {u: {"name": u, "push_token": t, "consent_push": True} for u, t in tokens.items()})
    if "has_token" not in {seg.name for seg in saved.list_segments(ws.appdb)}:
        saved.create_segment(ws.appdb, "has_token", "trait push_token exists")
    c = {"id": cid, "name": "푸시", "purpose": "informational", "target": ["has_token"], "channels": ["push"],
         "policy": {"quiet_hours": {"enabled": False}, "max_attempts": max_attempts, "frequency_caps": []},
         "variants": [{"key": "A", "messages": {"push": {"subject": "s", "text": "{{ user.name }}"}}}]}
    sc, _ = repo.save_campaign(ws.appdb, c, status="active")
    plan_occurrence(ws, sc.campaign, "once", NOON_KST, now=NOON_KST)
    return sc.campaign


def _rows(ws: Workspace, cid: str) -> dict[str, dict[str, Any]]:
    return {r["user_id"]: r for r in ledger_rows(ws.appdb, cid)}


def test_dead_token_bounces_suppresses_and_is_not_tried_again(fcm, workspace: Workspace) -> None:
    running, state = fcm
    ws = workspace
    _campaign(ws, "p1", {"alive": "alive-token", "gone": "unregistered-token"})
    worker = Worker(ws.appdb, {"push": _channel(running, [])}, campaign_id="p1")
    try:
        worker.process(worker.claim(now=NOON_KST + timedelta(seconds=1)))
    finally:
        worker.close()
    rows = _rows(ws, "p1")
    assert rows["alive"]["status"] == "sent"
    gone = rows["gone"]
    assert (gone["status"], gone["reason"]) == ("bounced", "bounced") and gone["detail"].startswith("UNREGISTERED")
    assert is_suppressed(ws.appdb, "gone", "push") and not is_suppressed(ws.appdb, "alive", "push")
    events: list[dict[str, Any]] = []
    pump(ws.appdb, events.extend)
    assert {(e["event"], e["user_id"]) for e in events} >= {("message_bounced", "gone"), ("message_sent", "alive")}
    # the next push campaign does not try the dead token: suppressed at planning, never sent
    before = len(state["requests"])
    _campaign(ws, "p2", {"alive": "alive-token", "gone": "unregistered-token"})
    rows = _rows(ws, "p2")
    assert (rows["gone"]["status"], rows["gone"]["reason"]) == ("suppressed", "unsubscribed")
    worker = Worker(ws.appdb, {"push": _channel(running, [])}, campaign_id="p2")
    try:
        worker.process(worker.claim(now=NOON_KST + timedelta(seconds=1)))
    finally:
        worker.close()
    sent_to = [r["message"]["token"] for r in state["requests"][before:]]
    assert sent_to == ["alive-token"]


def test_retryable_errors_requeue_with_retry_after_until_policy_max_attempts(fcm, workspace: Workspace) -> None:
    running, state = fcm
    ws = workspace
    _campaign(ws, "p3", {"q": "quota-token", "x": "down-token"}, max_attempts=2)
    state["fail_token"]["quota-token"] = [(429, "RESOURCE_EXHAUSTED", "QUOTA_EXCEEDED", 120)]
    state["fail_token"]["down-token"] = [(503, "UNAVAILABLE", "UNAVAILABLE", None)] * 2
    worker = Worker(ws.appdb, {"push": _channel(running, [])}, campaign_id="p3")
    try:
        claimed_at = NOON_KST + timedelta(seconds=1)
        worker.process(worker.claim(now=claimed_at))
        rows = _rows(ws, "p3")
        assert {u: (r["status"], r["reason"], r["attempts"]) for u, r in rows.items()} == {
            "q": ("queued", "provider_failed", 1), "x": ("queued", "provider_failed", 1)}
        assert rows["q"]["detail"].startswith("QUOTA_EXCEEDED")
        # Retry-After 120 s: not due before that, measured from when the worker recorded it
        assert rows["q"]["due_at"] - rows["q"]["updated_at"] >= timedelta(seconds=120)
        later = max(r["due_at"] for r in rows.values()) + timedelta(seconds=1)
        worker.process(worker.claim(now=later))
    finally:
        worker.close()
    rows = _rows(ws, "p3")
    assert (rows["q"]["status"], rows["q"]["attempts"]) == ("sent", 2)  # the quota cleared
    assert (rows["x"]["status"], rows["x"]["reason"], rows["x"]["attempts"]) == ("failed", "provider_failed", 2)
    assert not is_suppressed(ws.appdb, "x", "push")  # an outage is not a dead token


def test_dead_token_and_retry_on_a_postgres_app_db(fcm, tmp_path: Any, pg_url: str) -> None:  # noqa: F811
    """The bounce's suppression row is written in the record transaction on PostgreSQL too (own database)."""
    import psycopg

    with psycopg.connect(pg_url, autocommit=True) as pg:
        pg.execute("DROP DATABASE IF EXISTS sendgaps_fcm")
        pg.execute("CREATE DATABASE sendgaps_fcm")
    url = pg_url.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://") + "/sendgaps_fcm"
    ws = Workspace.init(tmp_path / "ws")
    ws.config.appdb.url = url
    ws.save()
    ws.close()
    ws = Workspace(tmp_path / "ws")
    running, state = fcm
    state["fail_token"]["pg-busy-token"] = [(503, "UNAVAILABLE", "UNAVAILABLE", 5)]
    try:
        assert ws.appdb.dialect.name == "postgresql"
        _campaign(ws, "pg1", {"gone": "unregistered-token", "busy": "pg-busy-token", "ok": "pg-ok-token"})
        worker = Worker(ws.appdb, {"push": _channel(running, [])}, campaign_id="pg1")
        try:
            worker.process(worker.claim(now=NOON_KST + timedelta(seconds=1)))
        finally:
            worker.close()
        rows = _rows(ws, "pg1")
        assert {u: r["status"] for u, r in rows.items()} == {"gone": "bounced", "busy": "queued", "ok": "sent"}
        assert is_suppressed(ws.appdb, "gone", "push") and not is_suppressed(ws.appdb, "busy", "push")
        assert rows["busy"]["due_at"] - rows["busy"]["updated_at"] >= timedelta(seconds=5)
    finally:
        ws.close()
        ws.appdb.dispose()
