"""In-app channel: queues the message in the app DB; the app fetches it with GET /v1/inapp/{user_id}."""

from __future__ import annotations

from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from segmint.appdb import inapp
from segmint.channels.base import DeliveryResult, OutboundMessage


class InAppChannel:
    """Stores one row per message (deduplicated by message_id: exactly-once)."""

    name = "in_app"

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def send(self, message: OutboundMessage) -> DeliveryResult:
        """Queue the message for its user."""
        try:
            inapp.enqueue(self.engine, message_id=message.message_id, user_id=message.user_id,
                          title=message.subject, body=message.text, data=message.data,
                          campaign_id=message.campaign_id)
        except SQLAlchemyError as exc:
            return DeliveryResult("failed", error=f"app DB: {exc}", retryable=True)
        return DeliveryResult("sent", provider_message_id=message.message_id)
