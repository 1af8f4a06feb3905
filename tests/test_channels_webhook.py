"""Webhook channel against a real HTTP server on 127.0.0.1 that verifies signatures and can fail N times."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import orjson
import pytest

from segmint.channels.base import OutboundMessage
from segmint.channels.webhook import SIGNATURE_HEADER, WebhookChannel, sign, verify

SECRET = "whsec_test"


class _Receiver(ThreadingHTTPServer):
    """Records requests; answers `fail_status` for the first `fail_times` requests, then 200."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.requests: list[dict] = []
        self.fail_times = 0
        self.fail_status = 500
        self.retry_after: str | None = None


class _Handler(BaseHTTPRequestHandler):
    server: _Receiver

    def log_message(self, *args) -> None:
        pass

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        valid = verify(SECRET, self.headers.get(SIGNATURE_HEADER, ""), body)
        self.server.requests.append(
            {"body": body, "valid": valid, "key": self.headers.get("Idempotency-Key"),
             "type": self.headers.get("Content-Type")}
        )
        if not valid:
            status = 401
        elif self.server.fail_times > 0:
            self.server.fail_times -= 1
            status = self.server.fail_status
        else:
            status = 200
        self.send_response(status)
        if status == 200:
            self.send_header("X-Request-Id", f"req-{len(self.server.requests)}")
        if self.server.retry_after is not None and status != 200:
            self.send_header("Retry-After", self.server.retry_after)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")


@pytest.fixture
def receiver():
    server = _Receiver()
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def _channel(server: _Receiver, sleeps: list[float], secret: str = SECRET, attempts: int = 4) -> WebhookChannel:
    url = f"http://127.0.0.1:{server.server_address[1]}/hook"
    return WebhookChannel(url=url, secret=secret, max_attempts=attempts, backoff_base=0.5, sleep=sleeps.append)


MESSAGE = OutboundMessage(message_id="c1:u1:1", user_id="u1", subject="s", text="장바구니", data={"price": 15000})


def test_signed_json_with_idempotency_key(receiver) -> None:
    sleeps: list[float] = []
    result = _channel(receiver, sleeps).send(MESSAGE)
    assert result.status == "sent" and result.provider_message_id == "req-1"
    (request,) = receiver.requests
    assert request["valid"] and request["key"] == "c1:u1:1" and request["type"] == "application/json"
    payload = orjson.loads(request["body"])
    assert payload["user_id"] == "u1" and payload["text"] == "장바구니" and payload["data"] == {"price": 15000}
    assert sleeps == []


def test_retries_5xx_with_backoff_then_succeeds(receiver) -> None:
    receiver.fail_times = 2
    sleeps: list[float] = []
    result = _channel(receiver, sleeps).send(MESSAGE)
    assert result.ok
    assert len(receiver.requests) == 3
    assert {r["key"] for r in receiver.requests} == {"c1:u1:1"}
    assert len(sleeps) == 2 and 0 <= sleeps[0] <= 0.5 and 0 <= sleeps[1] <= 1.0


def test_429_respects_retry_after(receiver) -> None:
    receiver.fail_times, receiver.fail_status, receiver.retry_after = 1, 429, "3"
    sleeps: list[float] = []
    assert _channel(receiver, sleeps).send(MESSAGE).ok
    assert sleeps == [3.0]


def test_gives_up_after_max_attempts_retryable(receiver) -> None:
    receiver.fail_times = 10
    sleeps: list[float] = []
    result = _channel(receiver, sleeps, attempts=3).send(MESSAGE)
    assert result.status == "failed" and result.retryable
    assert "HTTP 500" in result.error and "3 attempts" in result.error
    assert len(receiver.requests) == 3 and len(sleeps) == 2


def test_other_4xx_not_retried(receiver) -> None:
    receiver.fail_times, receiver.fail_status = 5, 422
    sleeps: list[float] = []
    result = _channel(receiver, sleeps).send(MESSAGE)
    assert result.status == "failed" and not result.retryable and "HTTP 422" in result.error
    assert len(receiver.requests) == 1 and sleeps == []


def test_wrong_secret_is_rejected_by_receiver(receiver) -> None:
    result = _channel(receiver, [], secret="wrong").send(MESSAGE)
    assert result.status == "failed" and not result.retryable and "HTTP 401" in result.error
    assert receiver.requests[0]["valid"] is False


def test_verify_rejects_tampering_and_old_timestamps() -> None:
    body = b'{"a":1}'
    header = sign(SECRET, 1_000_000, body)
    assert verify(SECRET, header, body, now=1_000_010)
    assert not verify(SECRET, header, b'{"a":2}', now=1_000_010)
    assert not verify(SECRET, header, body, now=1_000_000 + 301)
    assert not verify(SECRET, "garbage", body)
