"""Message events: ledger outcomes and tracking hits become ordinary events in the event store.

Events: `message_sent`, `message_delivered`, `message_bounced` (from the ledger), `message_opened`,
`message_clicked`, `message_unsubscribed` (from the tracking endpoints). Properties: campaign_id, variant,
channel, occurrence, message_id_ref (the ledger message id, which the segment language's streak condition
pairs sends and opens by), plus url for clicks. Event message ids are deterministic
(`msg:<event>:<ledger message id>`), so writing one twice stores it once.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, or_, select
from sqlalchemy.orm import Session

from segmint.appdb.campaigns import LedgerRow
from segmint.campaigns.plan import _bulk_update
from segmint.store.base import EventStore, WriteBatch
from segmint.store.schema import events_to_arrow

LEDGER_EVENTS = {"sent": ("message_sent",), "delivered": ("message_sent", "message_delivered"),
                 "bounced": ("message_sent", "message_bounced")}


def message_event(event: str, *, user_id: str, ref: str, campaign_id: str, variant: str, channel: str,
                  ts: datetime, extra: dict[str, Any] | None = None, unique: str = "") -> dict[str, Any]:
    """A normalized track record (what Ingestor.submit takes) for one message event."""
    occurrence = ref[len(campaign_id) + 1:].rsplit(":", 1)[0] if ref.startswith(campaign_id + ":") else ""
    props = {"campaign_id": campaign_id, "variant": variant, "channel": channel, "occurrence": occurrence,
             "message_id_ref": ref, **(extra or {})}
    received = datetime.now(UTC)
    when = ts if ts.tzinfo else ts.replace(tzinfo=UTC)
    return {"message_id": f"msg:{event}:{ref}{unique}", "type": "track", "event": event, "user_id": user_id,
            "anonymous_id": None, "ts": when.isoformat(), "received_at": received.isoformat(),
            "properties": props, "context": {"library": {"name": "segmint-campaigns"}}, "source": "segmint",
            "previous_id": None, "traits": None, "timezone": None}


def pending(engine: Engine, limit: int = 10_000) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Events not yet written for ledger rows, and the ledger updates that mark them written."""
    q = (select(LedgerRow.id, LedgerRow.user_id, LedgerRow.message_id, LedgerRow.campaign_id, LedgerRow.variant,
                LedgerRow.channel, LedgerRow.status, LedgerRow.emitted, LedgerRow.sent_at, LedgerRow.delivered_at,
                LedgerRow.updated_at)
         .where(LedgerRow.status.in_(tuple(LEDGER_EVENTS)),
                or_(LedgerRow.emitted.is_(None), LedgerRow.emitted != LedgerRow.status))
         .limit(limit))
    records: list[dict[str, Any]] = []
    marks: list[dict[str, Any]] = []
    with Session(engine) as s:
        for r in s.execute(q):
            done = set(LEDGER_EVENTS.get(r.emitted or "", ()))
            for ev in LEDGER_EVENTS[r.status]:
                if ev in done:
                    continue
                ts = r.sent_at if ev == "message_sent" else (r.delivered_at or r.updated_at)
                records.append(message_event(ev, user_id=r.user_id, ref=r.message_id, campaign_id=r.campaign_id,
                                             variant=r.variant, channel=r.channel, ts=ts or r.updated_at))
            marks.append({"_id": r.id, "emitted": r.status})
    return records, marks


def pump(engine: Engine, sink: Callable[[list[dict[str, Any]]], None], limit: int = 10_000) -> int:
    """Write pending ledger events through `sink`, then mark them; returns how many events were written."""
    total = 0
    while True:
        records, marks = pending(engine, limit)
        if not marks:
            return total
        if records:
            sink(records)
        _bulk_update(engine, marks)
        total += len(records)
        if len(marks) < limit:
            return total


def store_sink(store: EventStore) -> Callable[[list[dict[str, Any]]], None]:
    """A sink that writes straight into a store this process owns (no server running); duplicates skipped."""

    def write(records: list[dict[str, Any]]) -> None:
        rows = [{**r, "ts": datetime.fromisoformat(r["ts"]), "received_at": datetime.fromisoformat(r["received_at"])}
                for r in records]
        store.write(WriteBatch(events=events_to_arrow(rows), skip_stored=True))

    return write


def ingestor_sink(ingestor: Any) -> Callable[[list[dict[str, Any]]], None]:
    """A sink that goes through the server's ingest pipeline (journal, dedupe, live-segment hooks)."""

    def write(records: list[dict[str, Any]]) -> None:
        ingestor.submit(records)

    return write
