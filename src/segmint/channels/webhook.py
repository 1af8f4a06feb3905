"""Webhook channel: signed JSON POST with an Idempotency-Key, retried with backoff on 5xx/429.

Signature scheme (like Stripe's): header `Segmint-Signature: t=<unix seconds>,v1=<hex>` where
`<hex> = HMAC-SHA256(secret, f"{t}.{raw body}")`. Receivers recompute it over the raw body, compare in
constant time and reject timestamps older than their tolerance (5 minutes suggested) against replays.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Callable

import httpx
import orjson

from segmint.channels.base import DeliveryResult, OutboundMessage
from segmint.channels.retry import backoff_delay, is_retryable_status, retry_after_seconds

SIGNATURE_HEADER = "Segmint-Signature"


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The signature header value for a body sent at `timestamp`."""
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def verify(secret: str, header: str, body: bytes, *, tolerance: float = 300, now: float | None = None) -> bool:
    """Check a signature header against the raw body (what a receiver does)."""
    try:
        fields = dict(part.split("=", 1) for part in header.split(","))
        timestamp = int(fields["t"])
    except (ValueError, KeyError):
        return False
    if abs((time.time() if now is None else now) - timestamp) > tolerance:
        return False
    expected = sign(secret, timestamp, body).split("v1=", 1)[1]
    return hmac.compare_digest(expected, fields.get("v1", ""))


class WebhookChannel:
    """POSTs `{"message_id", "user_id", "campaign_id", "subject", "text", "html", "data"}` to one URL."""

    name = "webhook"

    def __init__(
        self,
        *,
        url: str,
        secret: str,
        max_attempts: int = 5,
        backoff_base: float = 0.5,
        backoff_max: float = 30.0,
        timeout: float = 10.0,
        client: httpx.Client | None = None,
        sleep: Callable[[float], None] = time.sleep,
        accepted_is_delivered: bool = False,
    ) -> None:
        self.url, self.secret, self.max_attempts = url, secret, max(1, max_attempts)
        self.confirms_delivery = accepted_is_delivered  # a 2xx is the delivery (the worker records `delivered`)
        self.backoff_base, self.backoff_max = backoff_base, backoff_max
        self.client = client or httpx.Client(timeout=timeout)
        self.sleep = sleep

    def body(self, message: OutboundMessage) -> bytes:
        """The JSON body sent for a message."""
        return orjson.dumps(
            {
                "message_id": message.message_id,
                "user_id": message.user_id,
                "to": message.to,
                "campaign_id": message.campaign_id,
                "subject": message.subject,
                "text": message.text,
                "html": message.html,
                "data": message.data,
                "advertising": message.advertising,
            }
        )

    def send(self, message: OutboundMessage) -> DeliveryResult:
        """POST with retries on 5xx, 429 and connection errors; other 4xx fail at once."""
        body = self.body(message)
        last_error = ""
        for attempt in range(1, self.max_attempts + 1):
            headers = {
                "Content-Type": "application/json",
                "Idempotency-Key": message.message_id,
                SIGNATURE_HEADER: sign(self.secret, int(time.time()), body),
                "User-Agent": "segmint-webhook/1",
            }
            retry_after = None
            try:
                response = self.client.post(self.url, content=body, headers=headers)
            except httpx.HTTPError as exc:
                last_error = f"{self.url}: {type(exc).__name__}: {exc}"
            else:
                if response.is_success:
                    provider_id = response.headers.get("X-Request-Id") or message.message_id
                    return DeliveryResult("sent", provider_message_id=provider_id)
                last_error = f"{self.url}: HTTP {response.status_code}: {response.text[:200]}"
                if not is_retryable_status(response.status_code):
                    return DeliveryResult("failed", error=last_error, retryable=False)
                retry_after = retry_after_seconds(response.headers.get("Retry-After"))
            if attempt < self.max_attempts:
                self.sleep(backoff_delay(attempt, self.backoff_base, self.backoff_max, retry_after))
        return DeliveryResult("failed", error=f"{last_error} (after {self.max_attempts} attempts)", retryable=True)
