"""Batched webhook delivery: many messages in one signed POST, each still deduped by its own message_id.

Body: `{"batch": [<message>, ...]}` where each message is exactly the single-message webhook body
(`WebhookChannel.body`), so `message_id` inside it is the idempotency key the receiver dedupes by. Headers:
`Segmint-Signature` over the raw body (same scheme), `Idempotency-Key: batch:<hash of the message ids>`,
`Segmint-Batch-Size`. A 2xx answer accepts every message except those listed in an optional
`{"failed": {"<message_id>": "<reason>"}}`; 5xx/429/connection errors are retried with backoff (safe,
since each message is idempotent); other 4xx fail the whole batch. Chosen per campaign with
`policy.batch_sizes: {webhook: 100}`; one POST per message is the default (the plain webhook contract).
"""

from __future__ import annotations

import hashlib
import time

import orjson

from segmint.channels.base import DeliveryResult, OutboundMessage
from segmint.channels.retry import backoff_delay, is_retryable_status, retry_after_seconds
from segmint.channels.webhook import SIGNATURE_HEADER, WebhookChannel, sign


def batch_body(channel: WebhookChannel, messages: list[OutboundMessage]) -> bytes:
    """The JSON body of a batch."""
    return b'{"batch":[' + b",".join(channel.body(m) for m in messages) + b"]}"


def send_batch(channel: WebhookChannel, messages: list[OutboundMessage]) -> list[DeliveryResult]:
    """POST a batch with retries; one DeliveryResult per message, in order."""
    body = batch_body(channel, messages)
    key = "batch:" + hashlib.sha256("\n".join(m.message_id for m in messages).encode()).hexdigest()[:32]
    last_error = ""
    for attempt in range(1, channel.max_attempts + 1):
        headers = {"Content-Type": "application/json", "Idempotency-Key": key,
                   SIGNATURE_HEADER: sign(channel.secret, int(time.time()), body),
                   "Segmint-Batch-Size": str(len(messages)), "User-Agent": "segmint-webhook/1"}
        retry_after = None
        try:
            response = channel.client.post(channel.url, content=body, headers=headers)
        except Exception as exc:  # httpx errors and anything the transport raises
            last_error = f"{channel.url}: {type(exc).__name__}: {exc}"
        else:
            if response.is_success:
                failed: dict[str, str] = {}
                try:
                    answer = orjson.loads(response.content) if response.content else {}
                    failed = dict(answer.get("failed") or {}) if isinstance(answer, dict) else {}
                except orjson.JSONDecodeError:
                    failed = {}
                request_id = response.headers.get("X-Request-Id")
                return [DeliveryResult("failed", error=f"receiver: {failed[m.message_id]}", retryable=False)
                        if m.message_id in failed else
                        DeliveryResult("sent", provider_message_id=request_id or m.message_id) for m in messages]
            last_error = f"{channel.url}: HTTP {response.status_code}: {response.text[:200]}"
            if not is_retryable_status(response.status_code):
                return [DeliveryResult("failed", error=last_error, retryable=False) for _ in messages]
            retry_after = retry_after_seconds(response.headers.get("Retry-After"))
        if attempt < channel.max_attempts:
            channel.sleep(backoff_delay(attempt, channel.backoff_base, channel.backoff_max, retry_after))
    error = f"{last_error} (after {channel.max_attempts} attempts)"
    return [DeliveryResult("failed", error=error, retryable=True) for _ in messages]
