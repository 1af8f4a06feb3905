"""Planning and sending end to end on a real workspace (DuckDB store + SQLite app DB): ledger rows, message
events in the store, idempotent re-planning, pause, triggers with delay and re-check, recurring, local time."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

import orjson
import pyarrow as pa
import pytest

from segmint.campaigns import repo
from segmint.campaigns.deliver import Worker
from segmint.campaigns.events import pump, store_sink
from segmint.campaigns.ledger import ledger_rows, ledger_table
from segmint.campaigns.plan import plan_occurrence, prepare_due, scan_triggers
from segmint.campaigns.runtime import due_cron_time, send_now, status_counts, tick
from segmint.campaigns.suppression import add_suppression
from segmint.channels.outbox import OutboxChannel
from segmint.segments import saved
from segmint.store.base import WriteBatch
from segmint.store.schema import events_to_arrow
from segmint.workspace import Workspace

NOW = datetime(2026, 3, 2, 3, 0)  # noon in Seoul


def profiles(ws: Workspace, rows: dict[str, dict[str, Any]], zones: dict[str, str] | None = None) -> None:
    ids = list(rows)
    ws.store.load_profiles(pa.table({"user_id": ids, "traits": [json.dumps(rows[u]) for u in ids],
                                     "first_seen": [datetime(2026, 1, 1)] * len(ids),
                                     "timezone": [(zones or {}).get(u, "Asia/Seoul") for u in ids]}))


def events(ws: Workspace, items: list[tuple[str, str, datetime, dict[str, Any]]]) -> None:
    recs = [{"message_id": f"e{i}-{u}-{e}", "type": "track", "event": e, "user_id": u, "ts": ts,
             "received_at": ts + timedelta(seconds=1), "properties": props, "source": "test"}
            for i, (u, e, ts, props) in enumerate(items)]
    ws.store.write(WriteBatch(events=events_to_arrow(recs)))


def blast(**over: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": "blast", "name": "공지", "purpose": "informational", "target": ["everyone"], "channels": ["outbox"],
        "policy": {"quiet_hours": {"enabled": False}},
        "variants": [{"key": "A", "messages": {"outbox": {"subject": "{{ user.name }}님", "text": "공지"}}}]}
    data.update(over)
    return data


@pytest.fixture
def ws(workspace: Workspace) -> Workspace:
    profiles(workspace, {f"u{i}": {"name": f"고객{i}", "email": f"u{i}@x.kr"} for i in range(20)})
    saved.create_segment(workspace.appdb, "everyone", "trait email exists")
    return workspace


def outbox_lines(ws: Workspace) -> list[dict[str, Any]]:
    path = ws.path / "outbox" / "outbox.jsonl"
    return [orjson.loads(line) for line in path.read_bytes().splitlines()] if path.exists() else []


def test_one_off_send_writes_ledger_messages_and_events(ws: Workspace) -> None:
    repo.save_campaign(ws.appdb, blast(holdout=0.2))
    out = send_now(ws, "blast", sink=store_sink(ws.store))
    counts = status_counts(ws, "blast")
    assert counts.get("sent", 0) + counts.get("holdout", 0) == 20 and counts["holdout"] > 0
    lines = outbox_lines(ws)
    assert len(lines) == counts["sent"] and len({x["message_id"] for x in lines}) == counts["sent"]
    assert {x["subject"] for x in lines} >= {"고객1님"} or all(x["subject"].endswith("님") for x in lines)
    rows = ledger_rows(ws.appdb, "blast")
    held = [r for r in rows if r["status"] == "holdout"]
    assert all(r["variant"] == "control" and r["sent_at"] is not None and r["provider_id"] is None for r in held)
    assert ledger_table(ws.appdb, "blast").num_rows == 20
    stored = ws.store.query("SELECT user_id, CAST(properties AS VARCHAR) FROM events WHERE event = "
                            "'message_sent'").to_pylist()
    assert len(stored) == counts["sent"] == out["events_written"]
    props = json.loads(stored[0]["CAST(properties AS VARCHAR)"])
    assert props["campaign_id"] == "blast" and props["variant"] == "A" and props["channel"] == "outbox"
    assert props["message_id_ref"] == f"blast:once:{stored[0]['user_id']}"
    # sending again plans nothing new and sends nobody twice; events are not written twice
    again = send_now(ws, "blast", sink=store_sink(ws.store))
    assert again["plans"] == [] and len(outbox_lines(ws)) == counts["sent"]
    assert pump(ws.appdb, store_sink(ws.store)) == 0


def test_message_events_feed_segments(ws: Workspace) -> None:
    repo.save_campaign(ws.appdb, blast())
    send_now(ws, "blast", sink=store_sink(ws.store))
    from segmint.segments.evaluate import evaluate
    from segmint.segments.saved import parse_definition

    tree, _ = parse_definition('did message_sent where campaign_id = "blast"')
    assert len(evaluate(ws.store, tree)) == 20


def test_replanning_an_interrupted_occurrence_completes_it_without_duplicates(ws: Workspace) -> None:
    sc, _ = repo.save_campaign(ws.appdb, blast(), status="active")
    members = [(f"u{i}", "everyone") for i in range(20)]
    plan_occurrence(ws, sc.campaign, "once", audience=members[:7])  # as if it crashed after 7 users
    from sqlalchemy import update
    from sqlalchemy.orm import Session

    from segmint.appdb.campaigns import OccurrenceRow

    with Session(ws.appdb) as s, s.begin():  # mark it unfinished, as a crash would leave it
        s.execute(update(OccurrenceRow).values(status="planning"))
    result = plan_occurrence(ws, sc.campaign, "once")
    assert result.audience == 20 and len(ledger_rows(ws.appdb, "blast")) == 20
    assert plan_occurrence(ws, sc.campaign, "once").already_planned


def test_pause_stops_claims_and_resume_continues(ws: Workspace) -> None:
    repo.save_campaign(ws.appdb, blast(), status="active")
    tick(ws, NOW)
    repo.set_status(ws.appdb, "blast", "paused")
    w = Worker(ws.appdb, {"outbox": OutboxChannel(ws.path / "outbox")})
    assert w.run_once() == 0 and status_counts(ws, "blast") == {"queued": 20}
    repo.set_status(ws.appdb, "blast", "active")
    w.run()
    w.close()
    assert status_counts(ws, "blast") == {"sent": 20}


def test_unsubscribed_between_plan_and_send_is_not_sent(ws: Workspace) -> None:
    repo.save_campaign(ws.appdb, blast(), status="active")
    tick(ws, NOW)
    add_suppression(ws.appdb, "u3", "outbox")
    w = Worker(ws.appdb, {"outbox": OutboxChannel(ws.path / "outbox")})
    w.run()
    w.close()
    row = next(r for r in ledger_rows(ws.appdb, "blast") if r["user_id"] == "u3")
    assert (row["status"], row["reason"]) == ("suppressed", "unsubscribed")


class Flaky:
    """A channel that fails (retryable) the first N calls."""

    name = "outbox"

    def __init__(self, fails: int) -> None:
        self.fails, self.calls = fails, 0

    def send(self, message: Any) -> Any:
        from segmint.channels.base import DeliveryResult

        self.calls += 1
        if self.calls <= self.fails:
            return DeliveryResult("failed", error="503", retryable=True)
        return DeliveryResult("sent", provider_message_id="p")


def test_retryable_failures_back_off_then_give_up_after_max_attempts(ws: Workspace) -> None:
    repo.save_campaign(ws.appdb, blast(target=["everyone"], policy={"quiet_hours": {"enabled": False},
                                                                    "max_attempts": 2}), status="active")
    tick(ws, NOW)
    w = Worker(ws.appdb, {"outbox": Flaky(fails=100)}, batch=100)
    w.run_once()
    rows = ledger_rows(ws.appdb, "blast")
    assert all(r["status"] == "queued" and r["reason"] == "provider_failed" and r["due_at"] > NOW for r in rows)
    from sqlalchemy import text

    with ws.appdb.begin() as con:  # make the retries due now
        con.execute(text("UPDATE campaign_ledger SET due_at = '2000-01-01 00:00:00.000000'"))
    w.run_once()
    w.close()
    rows = ledger_rows(ws.appdb, "blast")
    assert all(r["status"] == "failed" and r["attempts"] == 2 for r in rows)


def test_triggered_cart_reminder_waits_rechecks_and_cancels_buyers(workspace: Workspace) -> None:
    ws = workspace
    profiles(ws, {u: {"name": u, "push_token": f"t-{u}", "consent_push": True} for u in ("a", "b", "c")})
    saved.create_segment(ws.appdb, "has_token", "trait push_token exists")
    t0 = NOW - timedelta(hours=30)
    events(ws, [("a", "cart_added", t0, {"product_name": "샴푸"}), ("b", "cart_added", t0, {"product_name": "린스"}),
                ("c", "cart_added", t0, {"product_name": "비누", "channel": "offline"}),
                ("b", "order_completed", t0 + timedelta(hours=2), {})])
    c = {"id": "cart", "name": "장바구니", "target": ["has_token"], "channels": ["push"],
         "sender": {"name": "데모몰", "contact": "02-1"}, "policy": {"quiet_hours": {"enabled": False}},
         "schedule": {"type": "triggered", "event": "cart_added", "where": {}, "delay": "1d", "delay_max": "1d",
                      "cancel_on": ["order_completed"]},
         "variants": [{"key": "A", "messages": {"push": {
             "subject": "잊으셨나요?", "text": "{{ event.product_name | josa: '이/가' }} 기다려요"}}}]}
    sc, _ = repo.save_campaign(ws.appdb, c, status="active")
    n, cursor = scan_triggers(ws, sc.campaign, (t0 - timedelta(minutes=1)).isoformat(), now=t0)
    assert n == 3 and cursor is not None
    assert scan_triggers(ws, sc.campaign, cursor, now=t0)[0] == 0  # the cursor moved past them
    assert prepare_due(ws, sc.campaign, now=t0 + timedelta(hours=23)) == 0  # not due yet
    assert prepare_due(ws, sc.campaign, now=t0 + timedelta(hours=25)) == 3
    rows = {r["user_id"]: r for r in ledger_rows(ws.appdb, "cart")}
    assert (rows["b"]["status"], rows["b"]["reason"]) == ("suppressed", "cancelled")  # bought since
    # 07:00 Seoul, advertising without night consent: held (still `scheduled`) until 08:00, then re-checked
    assert (rows["a"]["status"], rows["a"]["reason"]) == ("scheduled", "ad_law_night")
    assert prepare_due(ws, sc.campaign, now=rows["a"]["due_at"]) == 2
    rows = {r["user_id"]: r for r in ledger_rows(ws.appdb, "cart")}
    assert rows["a"]["status"] == "queued" and rows["a"]["occurrence"].startswith("e0-a")
    from sqlalchemy import select
    from sqlalchemy.orm import Session

    from segmint.appdb.campaigns import LedgerRow

    with Session(ws.appdb) as s:
        payload = s.scalars(select(LedgerRow.payload).where(LedgerRow.user_id == "a")).one()
    assert payload["text"].startswith("(광고) 샴푸가 기다려요")


def test_triggered_send_delayed_by_quiet_hours_is_rechecked_when_it_really_goes_out(workspace: Workspace) -> None:
    """Due at 23:00 Seoul (quiet hours): the row stays scheduled until 08:00; a purchase at 07:00 cancels it."""
    ws = workspace
    profiles(ws, {u: {"name": u, "push_token": f"t-{u}", "consent_push": True, "consent_night": True}
                  for u in ("a", "b")})
    saved.create_segment(ws.appdb, "has_token", "trait push_token exists")
    t0 = datetime(2026, 3, 2, 13, 0)  # 22:00 Seoul
    events(ws, [("a", "cart_added", t0, {"product_name": "샴푸"}), ("b", "cart_added", t0, {"product_name": "린스"})])
    c = {"id": "cart2", "name": "장바구니", "purpose": "informational", "target": ["has_token"], "channels": ["push"],
         "schedule": {"type": "triggered", "event": "cart_added", "delay": "1h", "cancel_on": ["order_completed"]},
         "variants": [{"key": "A", "messages": {"push": {"subject": "s", "text": "{{ event.product_name }}"}}}]}
    sc, _ = repo.save_campaign(ws.appdb, c, status="active")
    scan_triggers(ws, sc.campaign, (t0 - timedelta(minutes=1)).isoformat(), now=t0)
    assert prepare_due(ws, sc.campaign, now=t0 + timedelta(hours=1, minutes=1)) == 2
    rows = {r["user_id"]: r for r in ledger_rows(ws.appdb, "cart2")}
    morning = datetime(2026, 3, 2, 23, 0)  # 08:00 Seoul
    assert all(r["status"] == "scheduled" and r["reason"] == "quiet_hours" and r["due_at"] == morning
               for r in rows.values())
    events(ws, [("b", "order_completed", datetime(2026, 3, 2, 22, 0), {})])  # 07:00 Seoul: b bought
    assert prepare_due(ws, sc.campaign, now=morning + timedelta(minutes=1)) == 2
    rows = {r["user_id"]: r for r in ledger_rows(ws.appdb, "cart2")}
    assert rows["a"]["status"] == "queued" and rows["a"]["reason"] is None
    assert (rows["b"]["status"], rows["b"]["reason"]) == ("suppressed", "cancelled")


def test_trigger_filters_and_segment_entered(workspace: Workspace) -> None:
    ws = workspace
    profiles(ws, {"a": {"email": "a@x", "name": "A"}, "b": {"email": "b@x", "name": "B"}})
    events(ws, [("a", "segment_entered", NOW, {"segment": "VIP", "version": 1}),
                ("b", "segment_entered", NOW, {"segment": "churn", "version": 1})])
    c = blast(id="welcome-vip", target=[], schedule={"type": "triggered", "event": "segment_entered",
                                                     "segment": "VIP"})
    sc, _ = repo.save_campaign(ws.appdb, c, status="active")
    n, _ = scan_triggers(ws, sc.campaign, (NOW - timedelta(minutes=1)).isoformat(), now=NOW)
    assert n == 1
    prepare_due(ws, sc.campaign, now=NOW + timedelta(seconds=5))
    assert [(r["user_id"], r["status"], r["segment"]) for r in ledger_rows(ws.appdb, "welcome-vip")] == [
        ("a", "queued", "VIP")]


def test_recurring_plans_the_latest_cron_time_once(ws: Workspace) -> None:
    from zoneinfo import ZoneInfo

    seoul = ZoneInfo("Asia/Seoul")
    # every day 10:00 Seoul = 01:00 UTC
    assert due_cron_time("0 10 * * *", seoul, datetime(2026, 3, 1, 0, 0), NOW) == datetime(2026, 3, 2, 1, 0)
    assert due_cron_time("0 10 * * *", seoul, datetime(2026, 3, 2, 1, 30), NOW) is None
    _sc, _ = repo.save_campaign(ws.appdb, blast(id="daily", schedule={"type": "recurring", "cron": "0 10 * * *"}),
                               status="active")
    from sqlalchemy import update
    from sqlalchemy.orm import Session

    from segmint.appdb.campaigns import CampaignRow

    with Session(ws.appdb) as s, s.begin():
        s.execute(update(CampaignRow).values(activated_at=datetime(2026, 2, 27)))
    plans = tick(ws, NOW)
    assert [p.occurrence for p in plans] == ["2026-03-02T01:00:00"]
    assert tick(ws, NOW + timedelta(hours=1)) == []  # same occurrence is not planned twice
    assert [p.occurrence for p in tick(ws, NOW + timedelta(days=1))] == ["2026-03-03T01:00:00"]


def test_recurring_plans_one_occurrence_per_missed_cron_time_within_catch_up(ws: Workspace) -> None:
    from sqlalchemy import update
    from sqlalchemy.orm import Session

    from segmint.appdb.campaigns import CampaignRow

    repo.save_campaign(ws.appdb, blast(id="hourly", schedule={"type": "recurring", "cron": "0 * * * *",
                                                              "catch_up": "5h"}), status="active")
    with Session(ws.appdb) as s, s.begin():
        s.execute(update(CampaignRow).values(activated_at=datetime(2026, 2, 27)))
    # the server was down: 5 hourly times are within catch_up (older ones are skipped), each planned once
    plans = tick(ws, NOW + timedelta(minutes=30))
    assert [p.occurrence for p in plans] == [f"2026-03-01T{h:02d}:00:00" for h in (23,)] + [
        f"2026-03-02T{h:02d}:00:00" for h in (0, 1, 2, 3)]
    assert all(p.audience == 20 for p in plans)
    rows = ledger_rows(ws.appdb, "hourly")
    assert len(rows) == 5 * 20 and len({(r["occurrence"], r["user_id"]) for r in rows}) == 100
    assert tick(ws, NOW + timedelta(minutes=50)) == []  # nothing new, nothing planned twice
    assert [p.occurrence for p in tick(ws, NOW + timedelta(hours=2, minutes=1))] == [
        "2026-03-02T04:00:00", "2026-03-02T05:00:00"]


def test_local_time_send_is_due_at_each_users_wall_clock(workspace: Workspace) -> None:
    ws = workspace
    profiles(ws, {"seoul": {"email": "s@x", "name": "S"}, "la": {"email": "l@x", "name": "L"}},
             {"la": "America/Los_Angeles"})
    saved.create_segment(ws.appdb, "everyone", "trait email exists")
    _sc, _ = repo.save_campaign(ws.appdb, blast(schedule={"type": "once", "at": "2026-03-05T10:00:00",
                                                         "local_time": True}), status="active")
    assert tick(ws, datetime(2026, 3, 4, 12, 0)) == []  # too early to plan (10:00 at UTC+14 is 20:00 UTC)
    tick(ws, datetime(2026, 3, 4, 21, 0))
    due = {r["user_id"]: r["due_at"] for r in ledger_rows(ws.appdb, "blast")}
    assert due == {"seoul": datetime(2026, 3, 5, 1, 0), "la": datetime(2026, 3, 5, 18, 0)}


def test_audience_cap_and_exclusions(ws: Workspace) -> None:
    saved.create_segment(ws.appdb, "first_five", 'trait name in ["고객0", "고객1", "고객2", "고객3", "고객4"]')
    _sc, _ = repo.save_campaign(ws.appdb, blast(exclude=["first_five"], audience_cap=10), status="active")
    tick(ws, NOW)
    rows = ledger_rows(ws.appdb, "blast")
    assert len(rows) == 15 and not {r["user_id"] for r in rows} & {"u0", "u1", "u2", "u3", "u4"}
    assert sum(r["reason"] == "audience_cap" for r in rows) == 5


def test_parallel_planning_matches_in_process_planning(workspace: Workspace) -> None:
    ws = workspace
    profiles(ws, {f"u{i}": {"name": f"n{i}", "email": f"u{i}@x", "consent_email": i % 2 == 0}
                  for i in range(12_000)})
    saved.create_segment(ws.appdb, "everyone", "trait email exists")
    one = blast(id="one", purpose="advertising", channels=["email"], holdout=0.1,
                sender={"name": "샵", "contact": "02"},
                variants=[{"key": "A", "messages": {"email": {"subject": "{{ user.name }}", "text": "t"}}}])
    two = {**one, "id": "two"}
    a, _ = repo.save_campaign(ws.appdb, one, status="active")
    b, _ = repo.save_campaign(ws.appdb, two, status="active")
    ra = plan_occurrence(ws, a.campaign, "once", now=NOW)
    rb = plan_occurrence(ws, b.campaign, "once", now=NOW, processes=2)
    assert ra.reasons == rb.reasons == {"no_consent": 6000}
    from segmint.campaigns.assignment import HOLDOUT, assign

    for res, c in ((ra, a.campaign), (rb, b.campaign)):
        control = sum(assign(c.id, f"u{i}", c.split) == HOLDOUT for i in range(0, 12_000, 2))
        assert res.statuses == {"suppressed": 6000, "holdout": control, "queued": 6000 - control}
    assert {r["user_id"] for r in ledger_rows(ws.appdb, "two")} == {f"u{i}" for i in range(12_000)}


class _Sink:
    """Keeps every envelope an aiosmtpd server accepts."""

    def __init__(self) -> None:
        self.envelopes: list[Any] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.envelopes.append(envelope)
        return "250 Message accepted"


def test_email_campaign_through_a_real_smtp_server_has_one_click_unsubscribe(ws: Workspace) -> None:
    import email
    import email.policy
    import socket

    from aiosmtpd.controller import Controller

    from segmint.campaigns.links import read_token
    from segmint.channels.smtp import SmtpChannel

    sink = _Sink()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    controller = Controller(sink, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        repo.save_campaign(ws.appdb, blast(
            id="mail", purpose="advertising", channels=["email"], target=["everyone"], audience_cap=3,
            sender={"name": "데모몰", "contact": "02-123-4567"},
            # the email consent trait doubles as night consent, so the test does not depend on the hour it runs
            # (night consent must be a true value: an e-mail address is not consent)
            policy={"quiet_hours": {"enabled": False}, "night_consent_trait": "consent_email"},
            variants=[{"key": "A", "messages": {"email": {
                "subject": "{{ user.name }}님 세일", "text": "세일 중",
                "html": "<p>{{ user.name }}님 <b>세일</b></p>"}}}]))
        smtp = SmtpChannel(host="127.0.0.1", port=port, sender="crm@shop.example", security="none")
        out = send_now(ws, "mail", channels={"email": smtp}, sink=store_sink(ws.store))
    finally:
        controller.stop()
    # no consent trait on these users: advertising email is suppressed, not sent
    assert out["ledger"].get("suppressed", 0) + out["ledger"].get("holdout", 0) == 20
    reasons = {r["reason"] for r in ledger_rows(ws.appdb, "mail")}
    assert reasons == {"no_consent", "audience_cap"} and sink.envelopes == []

    profiles(ws, {f"u{i}": {"consent_email": True} for i in range(20)})  # merged into the traits
    sink2 = _Sink()
    controller = Controller(sink2, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        repo.save_campaign(ws.appdb, {**repo.get_campaign(ws.appdb, "mail").campaign.model_dump(mode="json"),
                                      "id": "mail2"})
        out = send_now(ws, "mail2", channels={"email": SmtpChannel(host="127.0.0.1", port=port,
                                                                   sender="crm@shop.example", security="none")},
                       sink=store_sink(ws.store))
    finally:
        controller.stop()
    assert out["ledger"]["sent"] == len(sink2.envelopes) >= 2
    mail = email.message_from_bytes(sink2.envelopes[0].content, policy=email.policy.default)
    assert str(mail["Subject"]).startswith("(광고) 고객")
    assert mail["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    url = str(mail["List-Unsubscribe"]).strip("<>")
    data = read_token(ws.config.session_secret, "unsubscribe", url.rsplit("/", 1)[1])
    assert data["c"] == "mail2" and data["ch"] == "email" and mail["To"] == f"{data['u']}@x.kr"
    html_part = mail.get_body(("html",)).get_content()
    assert "/t/o/" in html_part and "수신거부" in html_part and "데모몰 02-123-4567" in html_part


def test_delivery_reports_and_bounces(ws: Workspace) -> None:
    from segmint.campaigns.ledger import record_delivery

    repo.save_campaign(ws.appdb, blast())
    send_now(ws, "blast", sink=store_sink(ws.store))
    assert record_delivery(ws.appdb, "blast:once:u1", "delivered")
    assert record_delivery(ws.appdb, "blast:once:u2", "bounced", detail="550 no such user")
    assert not record_delivery(ws.appdb, "blast:once:nobody", "delivered")
    assert pump(ws.appdb, store_sink(ws.store)) == 2  # message_delivered, message_bounced (sent already written)
    got = ws.store.query("SELECT event, user_id FROM events WHERE event IN ('message_delivered', "
                         "'message_bounced') ORDER BY event").to_pylist()
    assert got == [{"event": "message_bounced", "user_id": "u2"}, {"event": "message_delivered", "user_id": "u1"}]
    from segmint.campaigns.suppression import is_suppressed

    assert is_suppressed(ws.appdb, "u2", "outbox") and not is_suppressed(ws.appdb, "u1", "outbox")


def test_preview_of_a_triggered_campaign_uses_the_users_last_trigger_event(ws: Workspace) -> None:
    from segmint.campaigns.preview import preview_user

    events(ws, [("u1", "cart_added", NOW - timedelta(days=2), {"product_name": "샴푸"}),
                ("u1", "cart_added", NOW - timedelta(days=1), {"product_name": "린스"})])
    c = blast(id="cart", schedule={"type": "triggered", "event": "cart_added"},
              variants=[{"key": "A", "messages": {"outbox": {
                  "text": "{{ event.product_name | josa: '이/가' }} 기다려요"}}},
                        {"key": "B", "messages": {"outbox": {"text": "{{ event.coupon }}"}}}])
    sc, _ = repo.save_campaign(ws.appdb, c)
    out = preview_user(ws, sc.campaign, "u1")
    a, b = out["variants"]
    assert a["outcome"] == "queued" and a["message"]["text"] == "린스가 기다려요"
    assert (b["outcome"], b["reason"]) == ("suppressed", "missing_variable")
    assert out["in_target"] and out["membership"] == {"everyone": True}


def test_trigger_scan_pages_never_split_events_that_share_a_received_time(workspace: Workspace) -> None:
    ws = workspace
    profiles(ws, {u: {"email": f"{u}@x", "name": u} for u in ("a", "b", "c")})
    events(ws, [("a", "cart_added", NOW, {}), ("b", "cart_added", NOW + timedelta(seconds=5), {}),
                ("c", "cart_added", NOW + timedelta(seconds=5), {})])  # b and c arrive at the same instant
    sc, _ = repo.save_campaign(ws.appdb, blast(id="t", target=[], schedule={"type": "triggered",
                                                                           "event": "cart_added"}))
    n1, cursor = scan_triggers(ws, sc.campaign, (NOW - timedelta(minutes=1)).isoformat(), now=NOW, limit=2)
    n2, cursor = scan_triggers(ws, sc.campaign, cursor, now=NOW, limit=2)
    n3, _ = scan_triggers(ws, sc.campaign, cursor, now=NOW, limit=2)
    assert (n1, n2, n3) == (1, 2, 0)
    assert sorted(r["user_id"] for r in ledger_rows(ws.appdb, "t")) == ["a", "b", "c"]


def test_example_campaigns_parse_compile_and_apply(ws: Workspace) -> None:
    from pathlib import Path

    from segmint.campaigns.guardrails import Recipient
    from segmint.campaigns.plan import guardrails_for
    from segmint.errors import NotFound

    folder = Path(__file__).resolve().parents[1] / "examples" / "campaigns"
    result = repo.apply_dir(ws.appdb, folder, dry_run=True)
    assert set(result.changes.values()) == {"created"} and len(result.changes) >= 4
    result = repo.apply_dir(ws.appdb, folder)
    assert repo.apply_dir(ws.appdb, folder).changes == dict.fromkeys(result.changes, "unchanged")
    assert all(c.status == "draft" for c in repo.list_campaigns(ws.appdb))
    with pytest.raises(NotFound, match="is not saved"):
        repo.set_status(ws.appdb, "cart-reminder", "active")  # its target segment does not exist here
    shipped = repo.get_campaign(ws.appdb, "order-shipped").campaign
    rails = guardrails_for(ws, shipped, ["u1"], NOW)
    from zoneinfo import ZoneInfo

    d = rails.decide(Recipient("u1", {"name": "지민", "phone": "010-1111-2222"}, ZoneInfo("Asia/Seoul")), "e1", NOW)
    assert d.channel == "kakao" and d.payload["data"] == {"template_code": "SHIP_001",
                                                          "template_parameters": {"name": "지민"}}


def test_dead_workers_claims_are_settled_by_channel_policy(ws: Workspace) -> None:
    from sqlalchemy import text

    repo.save_campaign(ws.appdb, blast(), status="active")
    tick(ws, NOW)
    dead = Worker(ws.appdb, {}, batch=5, worker_id="dead", lease=timedelta(seconds=-1))
    assert len(dead.claim()) == 5  # claimed, lease already over, never recorded (the worker "died")
    live = Worker(ws.appdb, {"outbox": OutboxChannel(ws.path / "outbox")}, uncertain="fail")
    assert live.recover() == 5
    rows = ledger_rows(ws.appdb, "blast")
    assert sum(r["reason"] == "uncertain" and r["status"] == "failed" for r in rows) == 5  # outbox: at-most-once
    with ws.appdb.begin() as con:
        con.execute(text("UPDATE campaign_ledger SET status = 'queued', reason = NULL"))
    assert len(dead.claim()) == 5
    resend = Worker(ws.appdb, {"outbox": OutboxChannel(ws.path / "outbox")})  # default: resend
    resend.run()
    resend.close()
    live.close()
    assert status_counts(ws, "blast") == {"sent": 20}
    assert sorted(r["attempts"] for r in ledger_rows(ws.appdb, "blast"))[-5:] == [3] * 5  # claimed, claimed, resent


def test_cli_send_without_a_server_plans_sends_and_writes_events(ws: Workspace, tmp_path: Any) -> None:
    import os
    import subprocess
    import sys

    import yaml

    from server_util import SRC

    path = tmp_path / "blast.yaml"
    path.write_text(yaml.safe_dump(blast(), allow_unicode=True), encoding="utf-8")
    ws.close()  # the CLI opens the store itself
    env = {**os.environ, "PYTHONPATH": f"{SRC}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-c", "from segmint.cli import main; main()", "-w", str(ws.path),
                               "campaign", *args], env=env, capture_output=True, text=True, timeout=300)

    assert cli("create", str(path)).returncode == 0
    out = cli("send", "blast", "--processes", "2", "--json")
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert result["ledger"] == {"sent": 20} and result["events_written"] == 20
    assert len(outbox_lines(ws)) == 20
    ledger = cli("ledger", "blast", "--json", "--limit", "100")
    assert len(json.loads(ledger.stdout)) == 20
    store = ws.open_store_read_only()
    try:
        n = store.query("SELECT count(*) FROM events WHERE event = 'message_sent'").column(0).to_pylist()[0]
    finally:
        store.close()
    assert n == 20


def test_frequency_caps_are_checked_again_at_send_time(ws: Workspace) -> None:
    """Two campaigns planned before either is sent both pass the planning check when only one has a cap (the
    race docs/campaigns.md describes); at send time the capped one sees the other's sent message and is
    suppressed, and within one claimed batch the lower row id wins."""
    free = blast(id="free", policy={"quiet_hours": {"enabled": False}, "frequency_caps": []})
    capped = blast(id="capped", policy={"quiet_hours": {"enabled": False},
                                        "frequency_caps": [{"channel": "*", "max": 1, "per": "day"}]})
    for spec in (capped, free):
        repo.save_campaign(ws.appdb, spec, status="paused")
    plan_occurrence(ws, repo.get_campaign(ws.appdb, "capped").campaign, "once")
    plan_occurrence(ws, repo.get_campaign(ws.appdb, "free").campaign, "once")
    assert status_counts(ws, "capped") == {"queued": 20} and status_counts(ws, "free") == {"queued": 20}
    repo.set_status(ws.appdb, "free", "active")
    channels = {"outbox": OutboxChannel(ws.path / "outbox")}
    w = Worker(ws.appdb, channels)
    w.run()
    w.close()
    repo.set_status(ws.appdb, "capped", "active")
    w = Worker(ws.appdb, channels)
    w.run()
    w.close()
    rows = ledger_rows(ws.appdb, "capped")
    assert {r["status"] for r in rows} == {"suppressed"} and {r["reason"] for r in rows} == {"frequency_cap"}
    assert "at send time" in rows[0]["detail"]


def test_send_time_caps_within_one_claimed_batch_let_the_lower_row_id_win(ws: Workspace) -> None:
    for cid in ("x", "y"):
        repo.save_campaign(ws.appdb, blast(id=cid, policy={"quiet_hours": {"enabled": False}, "frequency_caps": [
            {"channel": "*", "max": 1, "per": "day"}]}), status="paused")
        plan_occurrence(ws, repo.get_campaign(ws.appdb, cid).campaign, "once")
    assert status_counts(ws, "y") == {"suppressed": 20}  # planning counted x's queued rows
    # the planning race (both planned at the same instant, neither seeing the other): y queued as well
    with ws.appdb.begin() as con:
        con.exec_driver_sql("UPDATE campaign_ledger SET status = 'queued', reason = NULL, detail = NULL, "
                            "payload = (SELECT payload FROM campaign_ledger l2 WHERE l2.campaign_id = 'x' AND "
                            "l2.user_id = campaign_ledger.user_id) WHERE campaign_id = 'y'")
    for cid in ("x", "y"):
        repo.set_status(ws.appdb, cid, "active")
    w = Worker(ws.appdb, {"outbox": OutboxChannel(ws.path / "outbox")}, batch=100)
    w.run()
    w.close()
    assert status_counts(ws, "x") == {"sent": 20}  # planned first: lower row ids
    assert status_counts(ws, "y") == {"suppressed": 20}
    assert len(outbox_lines(ws)) == 20


def test_workers_wait_for_an_occurrence_being_planned_and_send_its_rows(ws: Workspace) -> None:
    """Planning and delivery overlap: a worker that finds nothing due keeps polling while an occurrence in its
    scope is being planned (fresh heartbeat), sends the rows as they land, and exits once it is planned; a
    stale heartbeat (dead planner) does not hold it."""
    import threading

    from sqlalchemy import update
    from sqlalchemy.orm import Session

    from segmint.appdb.campaigns import OccurrenceRow
    from segmint.campaigns.plan import heartbeat
    from segmint.campaigns.repo import now_utc

    sc, _ = repo.save_campaign(ws.appdb, blast(id="ov"), status="active")
    now = now_utc()
    with Session(ws.appdb) as s, s.begin():
        s.add(OccurrenceRow(campaign_id="ov", occurrence="once", status="planning", audience=0, scheduled_for=now,
                            created_at=now, planned_at=now))
    w = Worker(ws.appdb, {"outbox": OutboxChannel(ws.path / "outbox")}, campaign_id="ov",
               lease=timedelta(seconds=30))
    assert w.planning_in_progress()
    done = threading.Event()
    thread = threading.Thread(target=lambda: (w.run(idle_sleep=0.05), done.set()))
    thread.start()
    assert not done.wait(0.5)  # nothing due yet, but planning is in progress: still waiting
    heartbeat(ws.appdb, "ov", "once")
    plan_occurrence(ws, sc.campaign, "once")  # the interrupted occurrence is completed and marked planned
    assert done.wait(30)
    thread.join()
    w.close()
    assert status_counts(ws, "ov") == {"sent": 20} and len(outbox_lines(ws)) == 20
    # a planner that died long ago does not keep workers waiting
    with Session(ws.appdb) as s, s.begin():
        s.execute(update(OccurrenceRow).where(OccurrenceRow.campaign_id == "ov")
                  .values(status="planning", planned_at=now - timedelta(hours=1)))
    idle = Worker(ws.appdb, {}, campaign_id="ov", lease=timedelta(seconds=30))
    assert not idle.planning_in_progress()
    idle.close()


def test_runtime_picks_up_channel_settings_saved_while_running(workspace: Workspace) -> None:
    from segmint.campaigns.runtime import CampaignRuntime
    from segmint.channels.registry import build_channels
    from segmint.channels.settings import WebhookSettings

    runtime = CampaignRuntime(workspace, lambda rows: None)
    runtime.worker = Worker(workspace.appdb, build_channels(workspace), concurrency=1)
    runtime._channels_config = workspace.config.channels.model_dump_json()
    try:
        assert "webhook" not in runtime.worker.channels and runtime.refresh_channels() is False
        workspace.config.channels.webhook = WebhookSettings(url="http://127.0.0.1:9/hook", secret="s3cret")
        assert runtime.refresh_channels() is True and "webhook" in runtime.worker.channels
        assert runtime.refresh_channels() is False
        workspace.config.channels.webhook = None
        assert runtime.refresh_channels() is True and "webhook" not in runtime.worker.channels
    finally:
        runtime.worker.close()
