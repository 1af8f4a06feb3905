"""The channel adapter interface: `send(message) -> DeliveryResult`."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, Protocol

DeliveryStatus = Literal["sent", "failed", "refused", "bounced"]


@dataclass(frozen=True)
class OutboundMessage:
    """One rendered message for one user; `message_id` is also the idempotency key."""

    message_id: str
    user_id: str
    to: str = ""
    subject: str = ""
    text: str = ""
    html: str | None = None
    data: dict[str, Any] = field(default_factory=dict)
    campaign_id: str | None = None
    unsubscribe_url: str | None = None
    advertising: bool = False


@dataclass(frozen=True)
class DeliveryResult:
    """What a provider said: sent (with its id), failed (retryable or not), refused before sending, or bounced
    (the address is dead: the ledger records `bounced` and the user is suppressed on the channel)."""

    status: DeliveryStatus
    provider_message_id: str | None = None
    error: str | None = None
    retryable: bool = False
    retry_after: float | None = None  # seconds the provider asked to wait before a retry (Retry-After)

    @property
    def ok(self) -> bool:
        """True when the provider accepted the message."""
        return self.status == "sent"


class Channel(Protocol):
    """A delivery channel adapter."""

    name: str

    def send(self, message: OutboundMessage) -> DeliveryResult:
        """Deliver one message; never raises for provider errors (they go in the result)."""
        ...


@dataclass(frozen=True)
class Receipt:
    """A provider's delivery report for one sent message: delivered or bounced, when, and why."""

    status: Literal["delivered", "bounced"]
    at: datetime | None = None  # naive UTC; None = when it was read
    detail: str | None = None
