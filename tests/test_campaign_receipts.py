"""Delivery receipts into the ledger: NHN SMS / AlimTalk delivery lookups (contract fakes), and a webhook
receiver's 2xx as the delivery when configured."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import pyarrow as pa

from segmint.campaigns import repo
from segmint.campaigns.deliver import Worker
from segmint.campaigns.events import pending
from segmint.campaigns.ledger import ledger_rows
from segmint.campaigns.plan import load_suppressed, plan_occurrence
from segmint.campaigns.receipts import poll_receipts
from segmint.campaigns.receiver import Receiver
from segmint.campaigns.repo import now_utc
from segmint.channels.base import OutboundMessage
from segmint.channels.nhn import NhnAlimtalkChannel, NhnSmsChannel
from segmint.channels.webhook import WebhookChannel
from segmint.segments import saved
from segmint.workspace import Workspace
from vendor_fakes import Running, nhn_alimtalk_app, nhn_sms_app


def _msg(to: str, text: str = "쿠폰이 도착했어요", **kw) -> OutboundMessage:
    return OutboundMessage(message_id=f"c1:once:{to}", user_id=to, to=to, text=text, **kw)


def test_nhn_sms_lookup_reports_delivered_bounced_and_pending() -> None:
    app, state = nhn_sms_app("sms-app", "sms-secret")
    with Running(app) as running:
        ch = NhnSmsChannel(app_key="sms-app", secret_key="sms-secret", send_no="15446859", base_url=running.url)
        state["results"] = {"01000000002": "0", "01000000003": "2"}
        sent = {no: ch.send(_msg(no)) for no in ("01000000001", "01000000002", "01000000003")}
        assert all(r.ok for r in sent.values())
        got = {no: ch.delivery_status(r.provider_message_id, _msg(no)) for no, r in sent.items()}
        assert got["01000000001"].status == "delivered" and got["01000000001"].at == datetime(2026, 3, 2, 3, 0, 5)
        assert got["01000000002"].status == "bounced" and "3015" in got["01000000002"].detail
        assert got["01000000003"] is None  # the carrier has not answered yet
        long_text = "장바구니에 담은 상품이 곧 품절될 수 있어요. " * 4  # LMS: looked up under /sender/mms
        lms = ch.send(_msg("01000000004", long_text, subject="품절"))
        assert ch.delivery_status(lms.provider_message_id, _msg("01000000004", long_text)).status == "delivered"
        wrong = NhnSmsChannel(app_key="sms-app", secret_key="nope", send_no="1", base_url=running.url)
        assert wrong.delivery_status(sent["01000000001"].provider_message_id, _msg("01000000001")) is None


def test_nhn_alimtalk_lookup_reports_delivered_and_failed() -> None:
    app, state = nhn_alimtalk_app("kakao-app", "kakao-secret", "s" * 40, {"T": []})
    with Running(app) as running:
        ch = NhnAlimtalkChannel(app_key="kakao-app", secret_key="kakao-secret", sender_key="s" * 40,
                                base_url=running.url)
        state["results"] = {"01000000002": "FAILED", "01000000003": "READY"}
        out = {}
        for no in ("01000000001", "01000000002", "01000000003"):
            m = _msg(no, data={"template_code": "T"})
            out[no] = ch.delivery_status(ch.send(m).provider_message_id, m)
        assert out["01000000001"].status == "delivered" and out["01000000001"].detail.startswith("1000")
        assert out["01000000002"].status == "bounced" and "FAILED" in out["01000000002"].detail
        assert out["01000000003"] is None


def test_poll_receipts_records_deliveries_and_bounces_in_the_ledger(workspace: Workspace) -> None:
    phones = {f"u{i}": f"0100000000{i}" for i in range(1, 4)}
    ids = list(phones)
    workspace.store.load_profiles(pa.table({
        "user_id": ids, "traits": [json.dumps({"phone": phones[u], "name": u}) for u in ids],
        "first_seen": [datetime(2026, 1, 1)] * 3, "timezone": ["Asia/Seoul"] * 3}))
    saved.create_segment(workspace.appdb, "everyone", "trait phone exists")
    sc, _ = repo.save_campaign(workspace.appdb, {
        "id": "notice", "name": "공지", "purpose": "informational", "target": ["everyone"], "channels": ["sms"],
        "policy": {"quiet_hours": {"enabled": False}},
        "variants": [{"key": "A", "messages": {"sms": {"text": "{{ user.name }}님 배송이 시작됐어요"}}}]},
        status="active")
    app, state = nhn_sms_app("sms-app", "sms-secret")
    with Running(app) as running:
        channels = {"sms": NhnSmsChannel(app_key="sms-app", secret_key="sms-secret", send_no="15446859",
                                         base_url=running.url)}
        state["results"] = {phones["u2"]: "0", phones["u3"]: "1"}
        plan_occurrence(workspace, sc.campaign, "once")
        w = Worker(workspace.appdb, channels)
        w.run()
        w.close()
        assert {r["status"] for r in ledger_rows(workspace.appdb, "notice")} == {"sent"}
        assert poll_receipts(workspace.appdb, channels) == {"delivered": 0, "bounced": 0, "pending": 0}  # too new
        later = now_utc() + timedelta(minutes=1)
        assert poll_receipts(workspace.appdb, channels, now=later) == {"delivered": 1, "bounced": 1, "pending": 1}
        rows = {r["user_id"]: r for r in ledger_rows(workspace.appdb, "notice")}
        assert rows["u1"]["status"] == "delivered" and rows["u1"]["delivered_at"] == datetime(2026, 3, 2, 3, 0, 5)
        assert rows["u2"]["status"] == "bounced" and rows["u3"]["status"] == "sent"
        assert ("u2", "sms") in load_suppressed(workspace.appdb)  # a bounce suppresses the user on the channel
        state["results"][phones["u3"]] = "3"
        assert poll_receipts(workspace.appdb, channels, now=later) == {"delivered": 1, "bounced": 0, "pending": 0}
    events, _ = pending(workspace.appdb)
    names = sorted(e["event"] for e in events)
    assert names.count("message_delivered") == 2 and names.count("message_bounced") == 1


def test_webhook_2xx_is_recorded_as_delivered_when_configured(workspace: Workspace) -> None:
    workspace.store.load_profiles(pa.table({
        "user_id": ["a", "b"], "traits": ['{"email": "a@x.kr"}', '{"email": "b@x.kr"}'],
        "first_seen": [datetime(2026, 1, 1)] * 2, "timezone": ["Asia/Seoul"] * 2}))
    saved.create_segment(workspace.appdb, "everyone", "trait email exists")
    spec = {"id": "hook", "name": "h", "purpose": "informational", "target": ["everyone"], "channels": ["webhook"],
            "policy": {"quiet_hours": {"enabled": False}},
            "variants": [{"key": "A", "messages": {"webhook": {"text": "hi"}}}]}
    receiver = Receiver("whsec")
    with Running(receiver) as running:  # type: ignore[arg-type]
        for cid, confirm in (("hook", True), ("hook-plain", False)):
            sc, _ = repo.save_campaign(workspace.appdb, {**spec, "id": cid}, status="active")
            plan_occurrence(workspace, sc.campaign, "once")
            ch = WebhookChannel(url=running.url + "/hook", secret="whsec", accepted_is_delivered=confirm)
            w = Worker(workspace.appdb, {"webhook": ch}, campaign_id=cid)
            w.run()
            w.close()
    confirmed = ledger_rows(workspace.appdb, "hook")
    assert {r["status"] for r in confirmed} == {"delivered"}
    assert all(r["delivered_at"] == r["sent_at"] is not None for r in confirmed)
    assert {r["status"] for r in ledger_rows(workspace.appdb, "hook-plain")} == {"sent"}
    assert receiver.stats()["unique"] == 4


def _dsn(original_headers: bytes, action: str, status: str, rcpt: str) -> bytes:
    """A bounce as Postfix writes it: multipart/report with delivery-status and the original headers."""
    boundary = "dsn-boundary"
    return (f"From: MAILER-DAEMON@mx.shop.example\r\nTo: crm@shop.example\r\nSubject: Undelivered Mail\r\n"
            f"MIME-Version: 1.0\r\nContent-Type: multipart/report; report-type=delivery-status; "
            f"boundary=\"{boundary}\"\r\n\r\n--{boundary}\r\nContent-Type: text/plain\r\n\r\n"
            f"I'm sorry to have to inform you that your message could not be delivered.\r\n"
            f"--{boundary}\r\nContent-Type: message/delivery-status\r\n\r\n"
            f"Reporting-MTA: dns; mx.shop.example\r\nArrival-Date: Mon, 2 Mar 2026 12:00:00 +0900\r\n\r\n"
            f"Final-Recipient: rfc822; {rcpt}\r\nOriginal-Recipient: rfc822; {rcpt}\r\nAction: {action}\r\n"
            f"Status: {status}\r\nDiagnostic-Code: smtp; 550 5.1.1 <{rcpt}>: Recipient address rejected:\r\n"
            f" User unknown\r\n\r\n--{boundary}\r\nContent-Type: text/rfc822-headers\r\n\r\n").encode() + \
        original_headers + f"\r\n--{boundary}--\r\n".encode()


def test_smtp_bounce_dsn_marks_the_ledger_row_bounced(workspace: Workspace) -> None:
    import socket

    from aiosmtpd.controller import Controller

    from segmint.campaigns.bounces import parse_dsn, record_dsn
    from segmint.channels.smtp import SmtpChannel

    class Sink:
        def __init__(self) -> None:
            self.envelopes: list = []

        async def handle_DATA(self, server, session, envelope):
            self.envelopes.append(envelope)
            return "250 OK"

    workspace.store.load_profiles(pa.table({
        "user_id": ["a", "b"], "traits": ['{"email": "a@x.kr"}', '{"email": "b@x.kr"}'],
        "first_seen": [datetime(2026, 1, 1)] * 2, "timezone": ["Asia/Seoul"] * 2}))
    saved.create_segment(workspace.appdb, "everyone", "trait email exists")
    sc, _ = repo.save_campaign(workspace.appdb, {
        "id": "mail", "name": "m", "purpose": "informational", "target": ["everyone"], "channels": ["email"],
        "policy": {"quiet_hours": {"enabled": False}},
        "variants": [{"key": "A", "messages": {"email": {"subject": "배송", "text": "배송 시작"}}}]}, status="active")
    sink = Sink()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    controller = Controller(sink, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        plan_occurrence(workspace, sc.campaign, "once")
        smtp = SmtpChannel(host="127.0.0.1", port=port, sender="crm@shop.example", security="none")
        w = Worker(workspace.appdb, {"email": smtp})
        w.run()
        w.close()
    finally:
        controller.stop()
    sent = {e.rcpt_tos[0]: e.content for e in sink.envelopes}
    headers_a = sent["a@x.kr"].split(b"\r\n\r\n", 1)[0] + b"\r\n"
    headers_b = sent["b@x.kr"].split(b"\r\n\r\n", 1)[0] + b"\r\n"
    assert parse_dsn(_dsn(headers_b, "delayed", "4.4.1", "b@x.kr")) == []  # not final: nothing recorded
    assert parse_dsn(sent["b@x.kr"]) == []  # an ordinary mail is not a DSN
    got = record_dsn(workspace.appdb, _dsn(headers_a, "failed", "5.1.1", "a@x.kr"))
    assert got == [{"message_id": "mail:once:a", "status": "bounced", "recorded": True,
                    "detail": "5.1.1 smtp; 550 5.1.1 <a@x.kr>: Recipient address rejected: User unknown (a@x.kr)"}]
    rows = {r["user_id"]: r for r in ledger_rows(workspace.appdb, "mail")}
    assert rows["a"]["status"] == "bounced" and "User unknown" in rows["a"]["detail"]
    assert rows["b"]["status"] == "sent"
    assert ("a", "email") in load_suppressed(workspace.appdb)
