"""Reading the delivery ledger: rows of a campaign as dicts or an Arrow table (what reports consume)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pyarrow as pa
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from segmint.appdb.campaigns import LEDGER_COLUMNS, LedgerRow
from segmint.errors import InvalidInput

_TS = pa.timestamp("us")
LEDGER_SCHEMA = pa.schema(
    [
        ("campaign_id", pa.string()),
        ("occurrence", pa.string()),
        ("user_id", pa.string()),
        ("variant", pa.string()),
        ("channel", pa.string()),
        ("segment", pa.string()),
        ("status", pa.string()),
        ("reason", pa.string()),
        ("detail", pa.string()),
        ("message_id", pa.string()),
        ("provider_id", pa.string()),
        ("attempts", pa.int32()),
        ("due_at", _TS),
        ("queued_at", _TS),
        ("sent_at", _TS),
        ("delivered_at", _TS),
        ("updated_at", _TS),
    ]
)
assert tuple(LEDGER_SCHEMA.names) == LEDGER_COLUMNS


def ledger_rows(engine: Engine, campaign_id: str, occurrence: str | None = None) -> list[dict[str, Any]]:
    """Every ledger row of a campaign (or one occurrence) as dicts with LEDGER_COLUMNS, in row order."""
    cols = [getattr(LedgerRow, c) for c in LEDGER_COLUMNS]
    q = select(*cols).where(LedgerRow.campaign_id == campaign_id)
    if occurrence is not None:
        q = q.where(LedgerRow.occurrence == occurrence)
    with Session(engine) as s:
        return [dict(zip(LEDGER_COLUMNS, r, strict=True)) for r in s.execute(q.order_by(LedgerRow.id))]


def ledger_table(engine: Engine, campaign_id: str, occurrence: str | None = None) -> pa.Table:
    """The same rows as an Arrow table in LEDGER_SCHEMA (times naive UTC)."""
    return pa.Table.from_pylist(ledger_rows(engine, campaign_id, occurrence), schema=LEDGER_SCHEMA)


def record_delivery(engine: Engine, message_id: str, status: str, *, at: datetime | None = None,
                    detail: str | None = None) -> bool:
    """Apply a provider delivery report to a sent message: `delivered` or `bounced` (a bounce also puts the
    user on the suppression list for that channel). False when no sent/delivered row has this message id."""
    from segmint.campaigns.repo import now_utc
    from segmint.campaigns.suppression import add_suppression

    if status not in ("delivered", "bounced"):
        raise InvalidInput("a delivery report status is delivered or bounced", where="status")
    when = now_utc() if at is None else (at if at.tzinfo is None else at.astimezone(UTC).replace(tzinfo=None))
    with Session(engine) as s, s.begin():
        row = s.scalars(select(LedgerRow).where(LedgerRow.message_id == message_id,
                                                LedgerRow.status.in_(("sent", "delivered")))).first()
        if row is None:
            return False
        row.status, row.delivered_at, row.updated_at = status, when, now_utc()
        if status == "bounced":
            row.reason, row.detail = "bounced", detail
        user_id, channel = row.user_id, row.channel
    if status == "bounced":
        add_suppression(engine, user_id, channel, reason="bounced", source=message_id)
    return True
