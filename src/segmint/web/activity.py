"""What the home page shows of recent work: the ingestion rate, segment evaluations (live_log), campaign runs
(occurrences with their ledger counts) and failures (failed evaluations, failed or bounced messages)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, func, select, tuple_
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from segmint.appdb.campaigns import LedgerRow, OccurrenceRow

WAITING = ("scheduled", "queued", "sending")
SENT = ("sent", "delivered")
FAILED = ("failed", "bounced")


def _when(value: Any) -> str:
    return str(value)[:16] if value is not None else "-"


def recent_evaluations(engine: Engine, limit: int = 10) -> list[dict[str, Any]]:
    """The latest live segment evaluations, newest first (empty when none were recorded yet)."""
    from segmint.segments import live_log

    try:
        rows = live_log.list_evaluations(engine, limit=limit)
    except SQLAlchemyError:  # the table appears with the first live evaluation
        return []
    return [{**r, "when": _when(r["started_at"]),
             "elapsed": "-" if r["elapsed_ms"] is None else f"{r['elapsed_ms']:,.0f} ms"} for r in rows]


def recent_runs(engine: Engine, limit: int = 10) -> list[dict[str, Any]]:
    """The latest campaign occurrences with their ledger rows counted: sent, failed, suppressed, holdout, waiting."""
    with Session(engine) as s:
        occ = s.scalars(select(OccurrenceRow).order_by(OccurrenceRow.created_at.desc(), OccurrenceRow.id.desc())
                        .limit(limit)).all()
        keys = [(o.campaign_id, o.occurrence) for o in occ]
        counts: dict[tuple[str, str], dict[str, int]] = {}
        if keys:
            q = (select(LedgerRow.campaign_id, LedgerRow.occurrence, LedgerRow.status, func.count())
                 .where(tuple_(LedgerRow.campaign_id, LedgerRow.occurrence).in_(keys))
                 .group_by(LedgerRow.campaign_id, LedgerRow.occurrence, LedgerRow.status))
            for cid, o, status, n in s.execute(q):
                counts.setdefault((cid, o), {})[status] = n
    out = []
    for o in occ:
        c = counts.get((o.campaign_id, o.occurrence), {})
        out.append({"campaign_id": o.campaign_id, "occurrence": o.occurrence, "status": o.status,
                    "when": _when(o.scheduled_for), "audience": o.audience,
                    "sent": sum(c.get(k, 0) for k in SENT), "failed": sum(c.get(k, 0) for k in FAILED),
                    "suppressed": c.get("suppressed", 0), "holdout": c.get("holdout", 0),
                    "waiting": sum(c.get(k, 0) for k in WAITING)})
    return out


def recent_failures(engine: Engine, limit: int = 10) -> list[dict[str, Any]]:
    """The latest failed or bounced messages (campaign, user, channel, reason, provider detail)."""
    q = (select(LedgerRow.campaign_id, LedgerRow.user_id, LedgerRow.channel, LedgerRow.status, LedgerRow.reason,
                LedgerRow.detail, LedgerRow.updated_at)
         .where(LedgerRow.status.in_(FAILED)).order_by(LedgerRow.updated_at.desc(), LedgerRow.id.desc()).limit(limit))
    with Session(engine) as s:
        return [{"campaign_id": cid, "user_id": uid, "channel": ch, "status": st, "reason": reason or "",
                 "detail": (detail or "")[:300], "when": _when(at)} for cid, uid, ch, st, reason, detail, at
                in s.execute(q)]


def ingest_rate(store: Any, now: datetime) -> dict[str, int]:
    """Events stored and messages rejected in the last hour and the last 24 hours (by received time).

    Only what sources sent counts: the events segmint derives itself (`segment_entered`/`segment_exited`,
    message events, the demo's simulated responses, all `source = 'segmint'`) are not ingestion.
    """
    hour, day = now - timedelta(hours=1), now - timedelta(days=1)
    out: dict[str, int] = {}
    for table, prefix in (("events", "events"), ("rejected", "rejected")):
        own = " AND source != 'segmint'" if table == "events" else ""
        if store.dialect == "clickhouse":
            rows = store.query(f"SELECT countIf(received_at > {{h:DateTime64(6)}}) AS h, count() AS d FROM {table} "
                               f"WHERE received_at > {{d:DateTime64(6)}}{own}", {"h": hour, "d": day}).to_pylist()
        else:
            own = own.replace("source != 'segmint'", "source IS DISTINCT FROM 'segmint'")
            rows = store.query(f"SELECT count(*) FILTER (WHERE received_at > ?) AS h, count(*) AS d FROM {table} "
                               f"WHERE received_at > ?{own}", [hour, day]).to_pylist()
        out[f"{prefix}_hour"], out[f"{prefix}_day"] = int(rows[0]["h"] or 0), int(rows[0]["d"] or 0)
    return out
