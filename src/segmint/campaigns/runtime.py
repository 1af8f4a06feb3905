"""Running campaigns: `tick` plans due occurrences and prepares triggered rows; `send_now` does a one-off
send end to end; `CampaignRuntime` runs both in the server (the process that owns the event store)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from segmint.appdb.campaigns import LedgerRow, OccurrenceRow
from segmint.campaigns import repo
from segmint.campaigns.deliver import Worker
from segmint.campaigns.events import pump
from segmint.campaigns.model import OnceSchedule, RecurringSchedule, TriggeredSchedule
from segmint.campaigns.plan import PlanResult, plan_occurrence, prepare_due, scan_triggers
from segmint.campaigns.repo import now_utc
from segmint.campaigns.sendcheck import SendTimeCheck

log = logging.getLogger(__name__)
LOCAL_TIME_LEAD = timedelta(hours=14)  # local-time sends are planned when `at` first arrives somewhere (UTC+14)


def _has_occurrence(ws: Any, campaign_id: str, occurrence: str) -> bool:
    with Session(ws.appdb) as s:
        row = s.scalars(select(OccurrenceRow).where(OccurrenceRow.campaign_id == campaign_id,
                                                    OccurrenceRow.occurrence == occurrence)).first()
        return row is not None and row.status == "planned"


def due_cron_times(cron: str, zone: Any, after: datetime, now: datetime, limit: int = 1000) -> list[datetime]:
    """Every cron time in (after, now] as naive UTC, oldest first (at most the latest `limit`)."""
    from cronsim import CronSim

    start = after.replace(tzinfo=UTC).astimezone(zone).replace(tzinfo=None)
    times: list[datetime] = []
    for local in CronSim(cron, start):
        utc = local.replace(tzinfo=zone).astimezone(UTC).replace(tzinfo=None)
        if utc > now:
            break
        times.append(utc)
        if len(times) > limit:
            times.pop(0)
    return times


def due_cron_time(cron: str, zone: Any, after: datetime, now: datetime) -> datetime | None:
    """The latest cron time in (after, now] as naive UTC, or None."""
    times = due_cron_times(cron, zone, after, now, limit=1)
    return times[-1] if times else None


_TICK_LOCK = threading.Lock()


def tick(ws: Any, now: datetime | None = None, *, processes: int = 1) -> list[PlanResult]:
    """Plan every active campaign's due occurrence and prepare due triggered rows (needs the event store).

    One tick at a time per process (the runtime thread and an API send request share it)."""
    with _TICK_LOCK:
        return _tick(ws, now, processes)


def _tick(ws: Any, now: datetime | None, processes: int = 1) -> list[PlanResult]:
    now = now or now_utc()
    plans: list[PlanResult] = []
    for sc in repo.list_campaigns(ws.appdb, status="active"):
        c, sched = sc.campaign, sc.campaign.schedule
        try:
            if isinstance(sched, OnceSchedule):
                lead = LOCAL_TIME_LEAD if sched.local_time else timedelta(0)
                at = sched.at.replace(tzinfo=None) if sched.at is not None and sched.at.tzinfo is None else (
                    sched.at.astimezone(UTC).replace(tzinfo=None) if sched.at is not None else None)
                if (at is None or at - lead <= now) and not _has_occurrence(ws, c.id, "once"):
                    plans.append(plan_occurrence(ws, c, "once", None if sched.local_time else at, now=now,
                                                 processes=processes))
            elif isinstance(sched, RecurringSchedule):
                from zoneinfo import ZoneInfo

                zone = ZoneInfo(sched.timezone) if sched.timezone else ws.config.zone
                after = max((sc.activated_at or sc.created_at) - timedelta(seconds=1), now - sched.catch_up)
                for when in due_cron_times(sched.cron, zone, after, now, limit=100):
                    if not _has_occurrence(ws, c.id, when.isoformat()):  # one occurrence per cron time
                        plans.append(plan_occurrence(ws, c, when.isoformat(), when, now=now, processes=processes))
            elif isinstance(sched, TriggeredSchedule):
                cursor = repo.get_cursor(ws.appdb, c.id) or (sc.activated_at or now).isoformat()
                _n, last = scan_triggers(ws, c, cursor, now=now)
                if last and last != cursor:
                    repo.set_cursor(ws.appdb, c.id, last)
                prepare_due(ws, c, now=now)
        except Exception:
            log.exception("campaign %s: tick failed", c.id)
    return plans


def status_counts(ws: Any, campaign_id: str) -> dict[str, int]:
    """Ledger rows of a campaign per status."""
    with Session(ws.appdb) as s:
        q = (select(LedgerRow.status, func.count()).where(LedgerRow.campaign_id == campaign_id)
             .group_by(LedgerRow.status))
        return {st: n for st, n in s.execute(q)}


def send_now(ws: Any, campaign_id: str, *, channels: dict[str, Any] | None = None,
             sink: Callable[[list[dict[str, Any]]], None] | None = None, deliver: bool = True,
             concurrency: int = 8, processes: int = 1) -> dict[str, Any]:
    """Activate a campaign, plan its due occurrence now, send what is due, write message events."""
    from segmint.channels.registry import build_channels

    sc = repo.set_status(ws.appdb, campaign_id, "active")
    stats = None
    if not deliver:
        plans = [p.to_dict() for p in tick(ws, processes=processes)]
    else:
        # the worker sends in a thread while planning writes rows (planning commits every CHUNK rows), and
        # stops once planning is over (`hold`) and nothing is due
        worker = Worker(ws.appdb, channels if channels is not None else build_channels(ws),
                        campaign_id=campaign_id, concurrency=concurrency,
                        rate_limits=sc.campaign.policy.rate_limits, default_zone=ws.config.zone.key,
                        checker=SendTimeCheck(ws))
        planned = threading.Event()
        box: dict[str, Any] = {}

        def _deliver() -> None:
            try:
                box["stats"] = worker.run(hold=planned)
            except BaseException as exc:  # re-raised in the caller
                box["error"] = exc

        thread = threading.Thread(target=_deliver, name="segmint-send-now", daemon=True)
        thread.start()
        try:
            plans = [p.to_dict() for p in tick(ws, processes=processes)]
        finally:
            planned.set()
            thread.join()
            worker.close()
        if "error" in box:
            raise box["error"]
        stats = box.get("stats")
    written = pump(ws.appdb, sink) if sink is not None else 0
    return {"campaign_id": campaign_id, "plans": plans, "events_written": written,
            "worker": stats.__dict__ if stats else None, "ledger": status_counts(ws, campaign_id)}


class CampaignRuntime:
    """Background threads in the server: one plans (tick) and writes message events every second, one delivers
    due messages, so a long planning run never holds up sends that are due."""

    def __init__(self, ws: Any, sink: Callable[[list[dict[str, Any]]], None], *, interval: float = 1.0,
                 deliver: bool = True) -> None:
        self.ws, self.sink, self.interval, self.deliver = ws, sink, interval, deliver
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self.worker: Worker | None = None
        self._channels_config = ""
        self.receipts_every = 30.0  # seconds between provider delivery-result lookups
        self._receipts_at = 0.0

    def start(self) -> None:
        """Start the threads."""
        self._threads.append(threading.Thread(target=self._loop, args=(self.plan_step,), name="segmint-campaigns",
                                              daemon=True))
        if self.deliver:
            self.worker = self.make_worker()
            self._threads.append(threading.Thread(target=self._loop, args=(self.deliver_step,),
                                                  name="segmint-campaign-worker", daemon=True))
        for t in self._threads:
            t.start()

    def make_worker(self) -> Worker:
        """The server's delivery worker: the workspace's channels, and the claim-time re-check of triggered
        campaigns through the server's own event store."""
        from segmint.channels.registry import build_channels

        return Worker(self.ws.appdb, build_channels(self.ws), default_zone=self.ws.config.zone.key,
                      checker=SendTimeCheck(self.ws))

    def stop(self) -> None:
        """Stop after the current step."""
        self._stop.set()
        for t in self._threads:
            t.join(timeout=30)
        if self.worker is not None:
            self.worker.close()

    def plan_step(self) -> None:
        """Plan due occurrences, prepare due triggered rows, write pending message events."""
        tick(self.ws)
        pump(self.ws.appdb, self.sink)

    def deliver_step(self) -> None:
        """Recover expired claims and send everything due now."""
        assert self.worker is not None
        self.refresh_channels()
        self.worker.recover()
        while self.worker.run_once() and not self._stop.is_set():
            pass
        import time

        if time.monotonic() - self._receipts_at >= self.receipts_every:
            from segmint.campaigns.receipts import poll_receipts

            self._receipts_at = time.monotonic()
            poll_receipts(self.ws.appdb, self.worker.channels)

    def refresh_channels(self) -> bool:
        """Rebuild the worker's channels when the workspace's `[channels]` settings changed (the settings page
        edits them in place), so a provider saved in the UI sends without a server restart."""
        from segmint.channels.registry import build_channels

        current = self.ws.config.channels.model_dump_json()
        if self.worker is None or current == self._channels_config:
            return False
        self.worker.channels = build_channels(self.ws)
        self._channels_config = current
        return True

    def step(self) -> None:
        """One full round (plan, deliver, events), for callers that drive the runtime themselves."""
        tick(self.ws)
        if self.worker is not None:
            self.deliver_step()
        pump(self.ws.appdb, self.sink)

    def _loop(self, step: Callable[[], None]) -> None:
        while not self._stop.is_set():
            try:
                step()
            except Exception:
                log.exception("campaign runtime step failed")
            self._stop.wait(self.interval)


def utc(dt: datetime) -> datetime:
    """Naive UTC of an aware or naive (taken as UTC) datetime."""
    return dt if dt.tzinfo is None else dt.astimezone(UTC).replace(tzinfo=None)


def start_runtime(ws: Any, ingestor: Any) -> CampaignRuntime:
    """Start the server's campaign runtime (message events go through the ingestor); delivery in the server
    is on unless $SEGMINT_CAMPAIGN_DELIVERY=0 (then only `segmint campaign worker` processes send)."""
    import os

    from segmint.campaigns.events import ingestor_sink

    runtime = CampaignRuntime(ws, ingestor_sink(ingestor), deliver=os.environ.get("SEGMINT_CAMPAIGN_DELIVERY") != "0")
    runtime.start()
    return runtime
