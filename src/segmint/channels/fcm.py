"""Push through Firebase Cloud Messaging HTTP v1 (`POST /v1/projects/{project}/messages:send`).

FCM does not deduplicate sends, so delivery is at-least-once: the caller records "sending" before the
call. Errors carry `error.details[].errorCode` (google.firebase.fcm.v1.FcmError): UNREGISTERED and
INVALID_ARGUMENT mean the token or message is bad (no retry); QUOTA_EXCEEDED (429), UNAVAILABLE (503)
and INTERNAL (500) are retried with backoff, honouring Retry-After.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx

from segmint.channels.base import DeliveryResult, OutboundMessage
from segmint.channels.retry import backoff_delay, is_retryable_status, retry_after_seconds


def _fcm_error(response: httpx.Response) -> str:
    """`errorCode: message` from an FCM error body (falls back to the HTTP status)."""
    try:
        error = response.json().get("error", {})
    except ValueError:
        return f"HTTP {response.status_code}: {response.text[:200]}"
    code = error.get("status") or str(response.status_code)
    for detail in error.get("details") or []:
        if str(detail.get("@type", "")).endswith("google.firebase.fcm.v1.FcmError") and detail.get("errorCode"):
            code = detail["errorCode"]
    return f"{code}: {error.get('message', '')} (HTTP {response.status_code})"


class FcmChannel:
    """Sends a notification (title = subject, body = text) plus string data to one registration token."""

    name = "push"

    def __init__(
        self,
        *,
        project_id: str,
        access_token: str | Callable[[], str],
        base_url: str = "https://fcm.googleapis.com",
        max_attempts: int = 3,
        backoff_base: float = 0.5,
        backoff_max: float = 30.0,
        timeout: float = 10.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.url = f"{base_url.rstrip('/')}/v1/projects/{project_id}/messages:send"
        self._token = access_token if callable(access_token) else (lambda: access_token)
        self.max_attempts, self.backoff_base, self.backoff_max = max(1, max_attempts), backoff_base, backoff_max
        self.client = httpx.Client(timeout=timeout)
        self.sleep = sleep

    def body(self, message: OutboundMessage) -> dict[str, Any]:
        """The HTTP v1 request body; data values are strings as FCM requires."""
        data = {str(k): v if isinstance(v, str) else str(v) for k, v in message.data.items()}
        data.setdefault("segmint_message_id", message.message_id)
        return {"message": {"token": message.to, "notification": {"title": message.subject, "body": message.text},
                            "data": data}}

    def send(self, message: OutboundMessage) -> DeliveryResult:
        """POST to messages:send; returns the message name FCM assigned."""
        if not message.to:
            return DeliveryResult("refused", error="no push registration token")
        body = self.body(message)
        error = ""
        for attempt in range(1, self.max_attempts + 1):
            retry_after = None
            try:
                response = self.client.post(self.url, json=body, headers={"Authorization": f"Bearer {self._token()}"})
            except httpx.HTTPError as exc:
                error = f"FCM: {type(exc).__name__}: {exc}"
            else:
                if response.is_success:
                    return DeliveryResult("sent", provider_message_id=response.json().get("name"))
                error = _fcm_error(response)
                if not is_retryable_status(response.status_code):
                    return DeliveryResult("failed", error=error, retryable=False)
                retry_after = retry_after_seconds(response.headers.get("Retry-After"))
            if attempt < self.max_attempts:
                self.sleep(backoff_delay(attempt, self.backoff_base, self.backoff_max, retry_after))
        return DeliveryResult("failed", error=f"{error} (after {self.max_attempts} attempts)", retryable=True)
