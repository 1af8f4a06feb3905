"""Reading the delivery ledger: rows of a campaign as dicts or an Arrow table (what reports consume)."""

from __future__ import annotations

from typing import Any

import pyarrow as pa
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from segmint.appdb.campaigns import LEDGER_COLUMNS, LedgerRow

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
