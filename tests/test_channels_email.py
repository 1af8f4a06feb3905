"""SMTP channel against a real SMTP server (aiosmtpd) on 127.0.0.1; also the outbox channel."""

from __future__ import annotations

import email
import email.policy
import socket
from pathlib import Path

import orjson
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import Envelope

from segmint.channels.base import OutboundMessage
from segmint.channels.outbox import OutboxChannel
from segmint.channels.smtp import IDEMPOTENCY_HEADER, SmtpChannel


class _Sink:
    """Keeps every envelope; refuses recipients at refused.example with 550, tempfails at busy.example."""

    def __init__(self) -> None:
        self.envelopes: list[Envelope] = []

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address.endswith("@refused.example"):
            return "550 5.1.1 no such user"
        if address.endswith("@busy.example"):
            return "451 4.3.0 try later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        self.envelopes.append(envelope)
        return "250 Message accepted"


@pytest.fixture
def smtp_server():
    sink = _Sink()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        free_port = probe.getsockname()[1]
    controller = Controller(sink, hostname="127.0.0.1", port=free_port)
    controller.start()
    try:
        yield sink, controller.port
    finally:
        controller.stop()


def _message(**kw) -> OutboundMessage:
    base = dict(
        message_id="c1:u1:2026-11-25",
        user_id="u1",
        to="minji@shop.example",
        subject="장바구니에 담은 립스틱을 잊지 마세요",
        text="김민지님, 립스틱이 기다려요. 15,000원",
        html="<p>김민지님, <b>립스틱</b>이 기다려요.</p>",
        campaign_id="c1",
        unsubscribe_url="https://shop.example/u/abc",
    )
    return OutboundMessage(**(base | kw))


def test_smtp_multipart_and_headers(smtp_server) -> None:
    sink, port = smtp_server
    channel = SmtpChannel(host="127.0.0.1", port=port, sender="crm@shop.example", sender_name="샵", security="none",
                          unsubscribe_mailto="unsub@shop.example")
    result = channel.send(_message())
    assert result.status == "sent", result.error
    assert len(sink.envelopes) == 1
    envelope = sink.envelopes[0]
    assert envelope.rcpt_tos == ["minji@shop.example"]
    received = email.message_from_bytes(envelope.content, policy=email.policy.default)
    assert received["Subject"] == "장바구니에 담은 립스틱을 잊지 마세요"
    assert received["To"] == "minji@shop.example"
    assert received["Message-ID"].strip() == result.provider_message_id
    assert received["Message-ID"].strip().endswith("@shop.example>")
    assert received[IDEMPOTENCY_HEADER] == "c1:u1:2026-11-25"
    assert received["List-Unsubscribe"].strip() == (
        "<https://shop.example/u/abc>, <mailto:unsub@shop.example?subject=unsubscribe>"
    )
    assert received["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert received.get_content_type() == "multipart/alternative"
    text = received.get_body(preferencelist=("plain",))
    html = received.get_body(preferencelist=("html",))
    assert text.get_content().strip() == "김민지님, 립스틱이 기다려요. 15,000원"
    assert html.get_content().strip() == "<p>김민지님, <b>립스틱</b>이 기다려요.</p>"


def test_smtp_text_only_without_unsubscribe(smtp_server) -> None:
    sink, port = smtp_server
    channel = SmtpChannel(host="127.0.0.1", port=port, sender="crm@shop.example", security="none")
    assert channel.send(_message(html=None, unsubscribe_url=None)).ok
    received = email.message_from_bytes(sink.envelopes[0].content, policy=email.policy.default)
    assert received.get_content_type() == "text/plain"
    assert received["List-Unsubscribe"] is None
    assert received["List-Unsubscribe-Post"] is None


def test_smtp_permanent_and_temporary_refusals(smtp_server) -> None:
    sink, port = smtp_server
    channel = SmtpChannel(host="127.0.0.1", port=port, sender="crm@shop.example", security="none")
    permanent = channel.send(_message(to="x@refused.example"))
    assert permanent.status == "failed" and not permanent.retryable and "550" in permanent.error
    temporary = channel.send(_message(to="x@busy.example"))
    assert temporary.status == "failed" and temporary.retryable and "451" in temporary.error
    assert sink.envelopes == []
    assert channel.send(_message(to="")).status == "refused"


def test_smtp_connection_refused_is_retryable() -> None:
    channel = SmtpChannel(host="127.0.0.1", port=1, sender="crm@shop.example", security="none", timeout=2)
    result = channel.send(_message())
    assert result.status == "failed" and result.retryable


def test_outbox_writes_one_json_line_per_message(tmp_path: Path) -> None:
    channel = OutboxChannel(tmp_path / "outbox", name="email")
    assert channel.send(_message()).provider_message_id == "c1:u1:2026-11-25"
    assert channel.send(_message(message_id="c1:u2", user_id="u2")).ok
    lines = (tmp_path / "outbox" / "email.jsonl").read_bytes().splitlines()
    records = [orjson.loads(line) for line in lines]
    assert [r["user_id"] for r in records] == ["u1", "u2"]
    assert records[0]["subject"] == "장바구니에 담은 립스틱을 잊지 마세요"
    assert records[0]["unsubscribe_url"] == "https://shop.example/u/abc"


def test_channels_built_from_workspace_config(workspace, smtp_server) -> None:
    from segmint.channels.registry import get_channel
    from segmint.channels.settings import SmtpSettings
    from segmint.errors import InvalidInput

    sink, port = smtp_server
    with pytest.raises(InvalidInput, match=r"\[channels.email\]"):
        get_channel(workspace, "email")
    workspace.config.channels.email = SmtpSettings(host="127.0.0.1", port=port, sender="crm@shop.example",
                                                   security="none")
    assert get_channel(workspace, "email").send(_message()).ok
    assert len(sink.envelopes) == 1
    assert get_channel(workspace, "outbox").send(_message()).ok
    assert (workspace.path / "outbox" / "outbox.jsonl").exists()


def test_channels_section_in_toml(tmp_path: Path) -> None:
    from segmint.config import CONFIG_FILE, load_config
    from segmint.errors import WorkspaceError

    (tmp_path / CONFIG_FILE).write_text(
        '[channels.email]\nhost = "smtp.example"\nsender = "crm@shop.example"\nsecurity = "tls"\n', encoding="utf-8"
    )
    config = load_config(tmp_path)
    assert config.channels.email.host == "smtp.example" and config.channels.email.port == 587
    assert config.channels.webhook is None
    (tmp_path / CONFIG_FILE).write_text('[channels.email]\nsender = "crm@shop.example"\n', encoding="utf-8")
    with pytest.raises(WorkspaceError, match=r"channels\.email\.host: Field required"):
        load_config(tmp_path)


def test_smtp_starttls_with_login_and_verified_certificate(tmp_path: Path) -> None:
    import ssl
    import subprocess

    from aiosmtpd.smtp import AuthResult, LoginPassword

    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert),
         "-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True, capture_output=True,
    )
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)

    def authenticate(server, session, envelope, mechanism, auth_data):
        ok = isinstance(auth_data, LoginPassword) and auth_data.login == b"crm" and auth_data.password == b"pw"
        return AuthResult(success=ok)

    sink = _Sink()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    controller = Controller(sink, hostname="127.0.0.1", port=port, tls_context=context, require_starttls=True,
                            authenticator=authenticate, auth_require_tls=True)
    controller.start()
    try:
        def channel(**kw) -> SmtpChannel:
            base = dict(host="127.0.0.1", port=port, sender="crm@shop.example", username="crm", password="pw",
                        security="starttls", ca_file=str(cert))
            return SmtpChannel(**(base | kw))

        assert channel().send(_message()).ok
        assert len(sink.envelopes) == 1
        untrusted = channel(ca_file="").send(_message())  # self-signed cert not trusted by the system CAs
        assert untrusted.status == "failed" and "CERTIFICATE_VERIFY_FAILED" in untrusted.error
        assert len(sink.envelopes) == 1
    finally:
        controller.stop()
