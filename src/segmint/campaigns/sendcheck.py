"""Claim-time re-check of triggered campaigns: `cancel_on` events and the target segments, per claimed batch.

The planner (`plan.prepare_due`) checks a due triggered row once when it turns it `queued`; a cancel event
stored after that and before a worker claims the row (about a second in the server) would be missed. The
worker therefore calls a `SendTimeCheck` on every claimed batch, after the rows say `sending` and before
any provider call: one event-store query for the cancel events of the whole batch (every user, every
campaign), plus one membership evaluation per target/exclusion segment of a triggered campaign with
`recheck`. Rows that fail are recorded `suppressed` with the same reason codes and details as the planner
(`recheck_failed`, `cancelled`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import orjson

from segmint.campaigns.model import Campaign, TriggeredSchedule
from segmint.store.base import EventStore

CAMPAIGN_TTL_S = 2.0  # an edited campaign's cancel_on / recheck apply to claims from this long after the edit

log = logging.getLogger(__name__)
Veto = tuple[str, str]  # (reason code, detail)


def cancel_detail(sched: TriggeredSchedule) -> str:
    """The ledger detail of a row cancelled by a `cancel_on` event (shared with the planner)."""
    return f"did {', '.join(sched.cancel_on)} after the trigger"


RECHECK_DETAIL = "no longer in the target segments at send time"


def latest_events(store: EventStore, user_ids: Sequence[str], events: Sequence[str]) -> dict[tuple[str, str], datetime]:
    """(user_id, event) -> the latest time the user did it, for these users and events, in one query."""
    if not user_ids or not events:
        return {}
    if store.dialect == "clickhouse":
        table = store.query("SELECT user_id, event, max(ts) FROM events WHERE event IN {e:Array(String)} AND "
                            "user_id IN {u:Array(String)} GROUP BY user_id, event",
                            {"e": sorted(set(events)), "u": sorted(set(user_ids))})
    else:
        table = store.query("SELECT user_id, event, max(ts) FROM events WHERE list_contains(?::VARCHAR[], event) "
                            "AND user_id IN (SELECT unnest(?::VARCHAR[])) GROUP BY user_id, event",
                            [sorted(set(events)), sorted(set(user_ids))])
    cols = [table.column(i).to_pylist() for i in range(3)]
    return {(u, e): ts for u, e, ts in zip(*cols, strict=True)}


def _trigger_time(row: Any) -> datetime | None:
    """The trigger event's time recorded in a ledger row's context (None when absent)."""
    ctx = row.context
    if isinstance(ctx, str | bytes):
        try:
            ctx = orjson.loads(ctx)
        except orjson.JSONDecodeError:
            return None
    if not isinstance(ctx, dict) or not ctx.get("timestamp"):
        return None
    at = datetime.fromisoformat(str(ctx["timestamp"]))
    return at.replace(tzinfo=None) if at.tzinfo is None else at.astimezone(UTC).replace(tzinfo=None)


class _StoreView:
    """The workspace seen through another store handle (a read-only one for `segmint campaign worker`)."""

    def __init__(self, ws: Any, store: EventStore) -> None:
        self._ws, self.store = ws, store

    def __getattr__(self, name: str) -> Any:
        return getattr(self._ws, name)


class SendTimeCheck:
    """Vetoes claimed rows of triggered campaigns whose user did a `cancel_on` event after the trigger or
    (with `recheck`) left the target segments; needs the event store.

    The server's worker uses the server's store. A separate worker process (`read_only=True`) opens the store
    read-only for each batch that needs it; when it cannot (a DuckDB store held by a running server) it logs
    a warning and those rows keep only the planner's check."""

    def __init__(self, ws: Any, *, read_only: bool = False) -> None:
        self.ws, self.read_only = ws, read_only
        self.queries = 0  # event-store cancel queries run (one per batch that has cancel_on rows)
        self.unchecked = 0  # rows sent with the planner's check only (store unavailable)
        self._cache: dict[str, tuple[float, Campaign | None]] = {}

    def _campaigns(self, ids: set[str]) -> dict[str, Campaign]:
        """The campaigns of a batch, each read from the app DB at most every CAMPAIGN_TTL_S seconds (reading and
        parsing one per claimed batch cost a third of the worker's CPU)."""
        from segmint.campaigns import repo
        from segmint.errors import NotFound

        mono = time.monotonic()
        out = {}
        for cid in ids:
            hit = self._cache.get(cid)
            if hit is None or mono - hit[0] >= CAMPAIGN_TTL_S:
                try:
                    hit = (mono, repo.get_campaign(self.ws.appdb, cid).campaign)
                except NotFound:
                    hit = (mono, None)
                self._cache[cid] = hit
            if hit[1] is not None:
                out[cid] = hit[1]
        return out

    def __call__(self, rows: Sequence[Any], now: datetime) -> dict[int, Veto]:
        """Row id -> (reason, detail) for the rows that must not be sent."""
        campaigns = {cid: c for cid, c in self._campaigns({r.campaign_id for r in rows}).items()
                     if isinstance(c.schedule, TriggeredSchedule)}
        mine = [r for r in rows if r.campaign_id in campaigns]
        if not mine:
            return {}
        if not self.read_only:
            return self._check(self.ws, campaigns, mine, now)
        from segmint.errors import SegmintError

        try:
            store = self.ws.open_store_read_only()
        except SegmintError as exc:
            self.unchecked += len(mine)
            log.warning("send-time re-check skipped for %d rows (planner check only): %s", len(mine), exc)
            return {}
        try:
            return self._check(_StoreView(self.ws, store), campaigns, mine, now)
        finally:
            store.close()

    def _check(self, ws: Any, campaigns: dict[str, Campaign], mine: list[Any], now: datetime) -> dict[int, Veto]:
        out: dict[int, Veto] = {}
        # target re-check: one evaluation per segment of each triggered campaign with `recheck`
        from segmint.campaigns.plan import resolve_audience

        for cid, c in campaigns.items():
            sched = c.schedule
            assert isinstance(sched, TriggeredSchedule)
            if sched.recheck and c.target:
                members = {u for u, _ in resolve_audience(ws, c)}
                out |= {r.id: ("recheck_failed", RECHECK_DETAIL) for r in mine
                        if r.campaign_id == cid and r.user_id not in members}
        # cancel_on: one query for the whole batch
        cancel_events = {e for c in campaigns.values() for e in c.schedule.cancel_on}  # type: ignore[union-attr]
        waiting = [r for r in mine if r.id not in out and campaigns[r.campaign_id].schedule.cancel_on]  # type: ignore[union-attr]
        if cancel_events and waiting:
            self.queries += 1
            latest = latest_events(ws.store, [r.user_id for r in waiting], sorted(cancel_events))
            for r in waiting:
                sched = campaigns[r.campaign_id].schedule
                assert isinstance(sched, TriggeredSchedule)
                since = _trigger_time(r) or now
                if any((latest.get((r.user_id, e)) or datetime.min) > since for e in sched.cancel_on):
                    out[r.id] = ("cancelled", cancel_detail(sched))
        return out
