"""Push through Firebase Cloud Messaging HTTP v1 (`POST /v1/projects/{project}/messages:send`).

FCM does not deduplicate sends, so delivery is at-least-once: the caller records "sending" before the
call. FCM has no per-message delivery receipt API; what it says about a message is in the send response.
Errors carry `error.status` (google.rpc code) and `error.details[]`, where a
`type.googleapis.com/google.firebase.fcm.v1.FcmError` entry has the FCM `errorCode`
(https://firebase.google.com/docs/reference/fcm/rest/v1/ErrorCode). Classified here:

- UNREGISTERED (HTTP 404, status NOT_FOUND): the app instance is gone and the token will never work again:
  `bounced` (the worker records it and puts the user on the push suppression list).
- INVALID_ARGUMENT (400): a bad request or malformed token; SENDER_ID_MISMATCH (403) and
  THIRD_PARTY_AUTH_ERROR (401): a configuration problem; other 4xx: failed, not retried.
- QUOTA_EXCEEDED (429), UNAVAILABLE (503), INTERNAL (500) and other 5xx: retried here with backoff,
  honouring Retry-After; still failing, `failed` + retryable with the last Retry-After, so the worker re-queues
  the row per the campaign's `policy.max_attempts`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx

from segmint.channels.base import DeliveryResult, OutboundMessage
from segmint.channels.retry import backoff_delay, retry_after_seconds

DEAD_TOKEN = frozenset({"UNREGISTERED"})
RETRYABLE = frozenset({"QUOTA_EXCEEDED", "UNAVAILABLE", "INTERNAL"})


@dataclass(frozen=True)
class FcmError:
    """An FCM error response: HTTP status, google.rpc status, FCM error code (or the status), message."""

    http: int
    status: str
    code: str
    message: str

    def __str__(self) -> str:
        return f"{self.code}: {self.message} (HTTP {self.http})"

    @property
    def dead_token(self) -> bool:
        """The registration token is no longer valid (never send to it again)."""
        return self.code in DEAD_TOKEN or (self.code == self.status == "NOT_FOUND" and self.http == 404)

    @property
    def retryable(self) -> bool:
        """Worth retrying later (quota, unavailable, internal; any 5xx or 429 without a known code)."""
        return self.code in RETRYABLE or self.http == 429 or self.http >= 500


def parse_error(response: httpx.Response) -> FcmError:
    """The FCM error of a non-2xx response (a body that is not JSON keeps the HTTP status as its code)."""
    try:
        error = response.json().get("error") or {}
    except (ValueError, AttributeError):
        return FcmError(response.status_code, "", f"HTTP_{response.status_code}", response.text[:200])
    status = str(error.get("status") or "")
    code = status or f"HTTP_{response.status_code}"
    for detail in error.get("details") or []:
        if str(detail.get("@type", "")).endswith("google.firebase.fcm.v1.FcmError") and detail.get("errorCode"):
            code = str(detail["errorCode"])
    return FcmError(response.status_code, status, code, str(error.get("message", "")))


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
        """POST to messages:send; returns the message name FCM assigned, or the classified error."""
        if not message.to:
            return DeliveryResult("refused", error="no push registration token")
        body = self.body(message)
        error, retry_after = "", None
        for attempt in range(1, self.max_attempts + 1):
            retry_after = None
            try:
                response = self.client.post(self.url, json=body, headers={"Authorization": f"Bearer {self._token()}"})
            except httpx.HTTPError as exc:
                error = f"FCM: {type(exc).__name__}: {exc}"
            else:
                if response.is_success:
                    return DeliveryResult("sent", provider_message_id=response.json().get("name"))
                fcm = parse_error(response)
                error = str(fcm)
                if fcm.dead_token:
                    return DeliveryResult("bounced", error=f"{error}; token ...{message.to[-8:]}", retryable=False)
                if not fcm.retryable:
                    return DeliveryResult("failed", error=error, retryable=False)
                retry_after = retry_after_seconds(response.headers.get("Retry-After"))
            if attempt < self.max_attempts:
                self.sleep(backoff_delay(attempt, self.backoff_base, self.backoff_max, retry_after))
        return DeliveryResult("failed", error=f"{error} (after {self.max_attempts} attempts)", retryable=True,
                              retry_after=retry_after)
