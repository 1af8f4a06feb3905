"""Delivery receipts: ask providers whether sent messages arrived, and record `delivered` / `bounced`.

Channels that can look up a sent message's fate expose `delivery_status(provider_id, message) -> Receipt |
None` (NHN Cloud SMS and AlimTalk: channels/nhn.py). `poll_receipts` asks them for `sent` ledger rows old
enough to have a result and young enough to still be worth asking, and records each answer through
`ledger.record_delivery` (a bounce also suppresses the user on that channel; the message events pump then
writes `message_delivered` / `message_bounced`). Pushed reports go through `POST /api/campaigns/
delivery-reports` instead; a webhook receiver's 2xx is a delivery when `[channels.webhook]
accepted_is_delivered = true` (recorded by the worker, no polling).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, select, update
from sqlalchemy.orm import Session

from segmint.appdb.campaigns import LedgerRow
from segmint.campaigns.deliver import Worker
from segmint.campaigns.ledger import record_delivery
from segmint.campaigns.repo import now_utc


def poll_receipts(engine: Engine, channels: dict[str, Any], *, now: datetime | None = None,
                  min_age: timedelta = timedelta(seconds=10), max_age: timedelta = timedelta(days=3),
                  limit: int = 500) -> dict[str, int]:
    """Look up `sent` rows on channels with delivery lookups; returns counts of delivered, bounced, pending."""
    now = now or now_utc()
    names = [n for n, ch in channels.items() if callable(getattr(ch, "delivery_status", None))]
    counts = {"delivered": 0, "bounced": 0, "pending": 0}
    if not names:
        return counts
    q = (select(LedgerRow.id, LedgerRow.campaign_id, LedgerRow.user_id, LedgerRow.channel, LedgerRow.message_id,
                LedgerRow.provider_id, LedgerRow.payload)
         .where(LedgerRow.status == "sent", LedgerRow.channel.in_(names), LedgerRow.provider_id.is_not(None),
                LedgerRow.sent_at <= now - min_age, LedgerRow.sent_at >= now - max_age)
         .order_by(LedgerRow.updated_at).limit(limit))
    with Session(engine) as s:
        rows = s.execute(q).all()
    waiting: list[int] = []
    for row in rows:
        receipt = channels[row.channel].delivery_status(row.provider_id, Worker.message(row))
        if receipt is None:
            counts["pending"] += 1
            waiting.append(row.id)
            continue
        if record_delivery(engine, row.message_id, receipt.status, at=receipt.at, detail=receipt.detail):
            counts[receipt.status] += 1
    if waiting:  # asked again after the others (the query takes the least recently touched first)
        with Session(engine) as s, s.begin():
            s.execute(update(LedgerRow).where(LedgerRow.id.in_(waiting), LedgerRow.status == "sent")
                      .values(updated_at=now_utc()))
    return counts
