"""Campaign app state: campaigns, their send occurrences, the delivery ledger and the suppression list.

The delivery ledger (`campaign_ledger`) has exactly one row per (campaign_id, occurrence, user_id): the
unique key is what makes a send exactly-once. Its columns are a contract read by the experiments report
(see docs/campaigns.md, "Ledger"); add columns, never rename or drop them. Times are naive UTC.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, DateTime, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from segmint.appdb.base import Base

# Ledger statuses. scheduled: planned for later, send-time checks (trigger re-check, guardrails, render) not
# run yet; queued: ready to send at due_at; sending: claimed by a worker (recorded before the provider call);
# holdout: control group, never sent (sent_at = when it would have been sent).
LEDGER_STATUSES = ("scheduled", "queued", "suppressed", "holdout", "sending", "sent", "failed", "delivered",
                   "bounced")
FINAL_STATUSES = ("suppressed", "holdout", "sent", "failed", "delivered", "bounced")
CAMPAIGN_STATUSES = ("draft", "active", "paused", "archived")


class CampaignRow(Base):
    """A campaign: its definition (campaigns.model.Campaign as JSON) and its run status."""

    __tablename__ = "campaigns"
    id: Mapped[str] = mapped_column(String(128), primary_key=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    status: Mapped[str] = mapped_column(String(16), default="draft")
    version: Mapped[int] = mapped_column(Integer, default=1)
    definition: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(DateTime)
    updated_at: Mapped[datetime] = mapped_column(DateTime)
    activated_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)  # last time set active
    trigger_cursor: Mapped[str | None] = mapped_column(String(64), nullable=True)  # received_at scanned up to


class OccurrenceRow(Base):
    """One send occurrence of a campaign ("once", a cron time, or a trigger event id) and its planning state."""

    __tablename__ = "campaign_occurrences"
    __table_args__ = (UniqueConstraint("campaign_id", "occurrence"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    campaign_id: Mapped[str] = mapped_column(String(128), index=True)
    occurrence: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(16), default="planning")  # planning | planned
    audience: Mapped[int] = mapped_column(Integer, default=0)
    scheduled_for: Mapped[datetime] = mapped_column(DateTime)
    created_at: Mapped[datetime] = mapped_column(DateTime)
    planned_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)  # while planning: last progress


class LedgerRow(Base):
    """One recipient of one campaign occurrence: what happened to their message, with a reason code."""

    __tablename__ = "campaign_ledger"
    __table_args__ = (
        UniqueConstraint("campaign_id", "occurrence", "user_id", name="uq_ledger_recipient"),
        Index("ix_ledger_claim", "status", "due_at"),
        Index("ix_ledger_campaign", "campaign_id", "status"),
        Index("ix_ledger_user_sent", "user_id", "sent_at"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    campaign_id: Mapped[str] = mapped_column(String(128))
    occurrence: Mapped[str] = mapped_column(String(200))  # "once" | cron time ISO | trigger event message_id
    user_id: Mapped[str] = mapped_column(String(200))
    variant: Mapped[str] = mapped_column(String(32))  # variant key or "control"
    channel: Mapped[str] = mapped_column(String(32))
    segment: Mapped[str | None] = mapped_column(String(128), nullable=True)  # first target segment matched
    status: Mapped[str] = mapped_column(String(16))  # LEDGER_STATUSES
    reason: Mapped[str | None] = mapped_column(String(64), nullable=True)  # reason code (suppressed/failed)
    detail: Mapped[str | None] = mapped_column(Text, nullable=True)  # human-readable reason / provider error
    message_id: Mapped[str] = mapped_column(String(400), unique=True)  # idempotency key sent to providers
    provider_id: Mapped[str | None] = mapped_column(String(300), nullable=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    due_at: Mapped[datetime] = mapped_column(DateTime)  # when it may be sent (quiet hours, delays, local time)
    queued_at: Mapped[datetime] = mapped_column(DateTime)  # when the row was planned
    sent_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)  # holdout: would-have-sent time
    delivered_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    updated_at: Mapped[datetime] = mapped_column(DateTime)
    worker: Mapped[str | None] = mapped_column(String(120), nullable=True)  # claimant while sending
    lease_until: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    payload: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)  # the rendered message
    context: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)  # trigger event, if any
    emitted: Mapped[str | None] = mapped_column(String(16), nullable=True)  # last status turned into an event


class SuppressionRow(Base):
    """A user who must not get messages on a channel ("*" = every channel): unsubscribes, bounces, manual."""

    __tablename__ = "campaign_suppressions"
    __table_args__ = (UniqueConstraint("user_id", "channel"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[str] = mapped_column(String(200), index=True)
    channel: Mapped[str] = mapped_column(String(32), default="*")
    reason: Mapped[str] = mapped_column(String(64), default="unsubscribed")
    source: Mapped[str] = mapped_column(String(200), default="")  # e.g. the campaign of the unsubscribe link
    created_at: Mapped[datetime] = mapped_column(DateTime)


LEDGER_COLUMNS = ("campaign_id", "occurrence", "user_id", "variant", "channel", "segment", "status", "reason",
                  "detail", "message_id", "provider_id", "attempts", "due_at", "queued_at", "sent_at",
                  "delivered_at", "updated_at")
