"""Sending: workers claim due ledger rows (queued -> sending) in a transaction, call the channel, record the result.

Exactly-once mechanics:

- A claim is one `UPDATE ... WHERE id IN (SELECT ... LIMIT n) AND status = 'queued' RETURNING ...` inside
  `BEGIN IMMEDIATE` (SQLite: one writer at a time) or with `FOR UPDATE SKIP LOCKED` (PostgreSQL), so two
  workers never claim the same row. The row says `sending` (with the worker id and a lease) **before** the
  provider is called.
- The result is written only if the row is still this worker's claim.
- A worker that dies leaves `sending` rows behind; once their lease expires, `recover` settles them by
  channel: channels whose receiver dedupes by our idempotency key (webhook, in_app, kakao) are re-queued and
  re-sent with the same key (exactly-once); the others (email, push, sms, outbox) follow
  `uncertain`: "resend" (at-least-once, the default) or "fail" (at-most-once, reason `uncertain`).
- Retryable failures go back to `queued` with exponential backoff (at least the provider's Retry-After) until
  `policy.max_attempts`; a dead address (`bounced`, e.g. FCM UNREGISTERED) is recorded `bounced` and put on the
  suppression list for its channel in the same transaction.
- Before the provider call, a claimed batch is re-checked: suppression list, triggered campaigns' `cancel_on`
  and target (the `checker`, campaigns/sendcheck.py) and frequency caps.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import orjson
from sqlalchemy import Connection, Engine, select, text
from sqlalchemy.orm import Session

from segmint.appdb.campaigns import CampaignRow, OccurrenceRow, SuppressionRow
from segmint.campaigns.batch_webhook import send_batch
from segmint.campaigns.plan import sqlite_time
from segmint.campaigns.repo import now_utc
from segmint.channels.base import Channel, DeliveryResult, OutboundMessage
from segmint.channels.retry import backoff_delay
from segmint.channels.webhook import WebhookChannel

log = logging.getLogger(__name__)
IDEMPOTENT_CHANNELS = frozenset({"webhook", "in_app", "kakao"})


@contextmanager
def write_txn(engine: Engine) -> Iterator[Connection]:
    """A write transaction that takes the write lock up front (SQLite BEGIN IMMEDIATE; others: BEGIN)."""
    with engine.connect() as con:
        if engine.dialect.name == "sqlite":
            con = con.execution_options(isolation_level="AUTOCOMMIT")
            con.exec_driver_sql("PRAGMA busy_timeout = 60000")
            con.exec_driver_sql("BEGIN IMMEDIATE")
            try:
                yield con
            except BaseException:
                con.exec_driver_sql("ROLLBACK")
                raise
            con.exec_driver_sql("COMMIT")
        else:
            with con.begin():
                yield con


class RateLimiter:
    """A token bucket per channel (messages per second, per worker process); no rate = unlimited.

    Rates come from the worker's own settings and from `policy.rate_limits` of the campaigns it sends; the
    lowest rate seen for a channel wins (it is a limit of the provider, shared by every campaign)."""

    def __init__(self, rates: dict[str, float], *, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.clock, self.sleep = clock, sleep
        self.rates: dict[str, float] = {}
        self.tokens: dict[str, float] = {}
        self.stamp: dict[str, float] = {}
        self.lock = threading.Lock()
        for channel, rate in rates.items():
            self.limit(channel, rate)

    def limit(self, channel: str, rate: float | None) -> None:
        """Apply a rate to a channel (kept when a lower one is already set)."""
        if not rate or rate <= 0:
            return
        with self.lock:
            if channel not in self.rates or rate < self.rates[channel]:
                self.rates[channel] = float(rate)
                self.tokens[channel] = min(self.tokens.get(channel, rate), rate)
                self.stamp.setdefault(channel, self.clock())

    def acquire(self, channel: str) -> None:
        """Wait until one message may go out on the channel."""
        if channel not in self.rates:
            return
        while True:
            with self.lock:
                rate = self.rates[channel]
                now = self.clock()
                self.tokens[channel] = min(rate, self.tokens[channel] + (now - self.stamp[channel]) * rate)
                self.stamp[channel] = now
                if self.tokens[channel] >= 1 - 1e-9:  # tolerance: float sums of small waits
                    self.tokens[channel] -= 1
                    return
                wait = (1 - self.tokens[channel]) / rate
            self.sleep(wait)


@dataclass
class WorkerStats:
    """What a worker did."""

    claimed: int = 0
    sent: int = 0
    failed: int = 0
    retried: int = 0
    suppressed: int = 0
    recovered: int = 0
    batches: int = 0
    by_status: dict[str, int] = field(default_factory=dict)
    started: float | None = None  # epoch seconds of the first claim that found rows
    finished: float | None = None  # epoch seconds when run() returned
    cpu_s: float = 0.0  # process CPU seconds spent inside run()


def _claim_sql(dialect: str, campaign_id: str | None) -> str:
    only = " AND l.campaign_id = :cid" if campaign_id else ""
    lock = " FOR UPDATE OF l SKIP LOCKED" if dialect == "postgresql" else ""
    return (
        "UPDATE campaign_ledger SET status = 'sending', worker = :w, lease_until = :lease, "
        "attempts = attempts + 1, updated_at = :now "
        "WHERE id IN (SELECT l.id FROM campaign_ledger l JOIN campaigns c ON c.id = l.campaign_id "
        f"WHERE l.status = 'queued' AND l.due_at <= :now AND c.status = 'active'{only} "
        f"ORDER BY l.due_at, l.id LIMIT :n{lock}) AND status = 'queued' "
        "RETURNING id, campaign_id, occurrence, user_id, variant, channel, message_id, payload, attempts, context"
    )


_RECORD_SQL = text(
    "UPDATE campaign_ledger SET status = :status, reason = :reason, detail = :detail, provider_id = :provider_id, "
    "sent_at = :sent_at, due_at = :due_at, delivered_at = :delivered_at, updated_at = :now, worker = NULL, "
    "lease_until = NULL "
    "WHERE id = :id AND worker = :w AND status = 'sending'"
)


_RECORD_KEYS = ("status", "reason", "detail", "provider_id", "sent_at", "due_at", "delivered_at", "now", "id", "w")
_RECORD_SQLITE = (
    "UPDATE campaign_ledger SET status = ?, reason = ?, detail = ?, provider_id = ?, sent_at = ?, due_at = ?, "
    "delivered_at = ?, updated_at = ?, worker = NULL, lease_until = NULL "
    "WHERE id = ? AND worker = ? AND status = 'sending'"
)


class Worker:
    """Claims and sends due ledger rows until there are none (or forever, with `run(stop=...)`)."""

    def __init__(self, engine: Engine, channels: dict[str, Channel], *, worker_id: str | None = None,
                 batch: int = 200, lease: timedelta = timedelta(seconds=60), concurrency: int = 8,
                 campaign_id: str | None = None, uncertain: str = "resend",
                 rate_limits: dict[str, float] | None = None, default_zone: str = "Asia/Seoul",
                 checker: Callable[[list[Any], datetime], dict[int, tuple[str, str]]] | None = None) -> None:
        self.engine, self.channels = engine, channels
        # claim-time re-check of triggered rows (cancel_on, target segments; campaigns/sendcheck.py): called on
        # each claimed batch after the rows say `sending` and before any provider call
        self.checker = checker
        self.default_zone = default_zone  # for frequency caps of rows planned without a recorded zone
        self.worker_id = worker_id or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self.batch, self.lease, self.campaign_id = batch, lease, campaign_id
        if uncertain not in ("resend", "fail"):
            raise ValueError("uncertain must be resend or fail")
        self.uncertain = uncertain
        self.pool = ThreadPoolExecutor(max_workers=max(1, concurrency), thread_name_prefix="segmint-send")
        self.limiter = RateLimiter(rate_limits or {})
        self.stats = WorkerStats()
        self._policies: dict[str, dict[str, Any]] = {}
        self._parsed: dict[int, dict[str, Any]] = {}  # payloads of the batch being processed

    def close(self) -> None:
        """Stop the sending threads."""
        self.pool.shutdown(wait=True)

    def _t(self, value: datetime | None) -> Any:
        """A datetime bound as SQLAlchemy stores it (SQLite: text "YYYY-MM-DD HH:MM:SS.ffffff")."""
        if value is None or self.engine.dialect.name != "sqlite":
            return value
        return sqlite_time(value)

    # -- recovery ----------------------------------------------------------------------------------
    def recover(self, now: datetime | None = None) -> int:
        """Settle `sending` rows whose lease expired (their worker died): re-queue or fail, by channel."""
        now = now or now_utc()
        sqlite = self.engine.dialect.name == "sqlite"
        in_ids = "id IN (SELECT value FROM json_each(:ids))" if sqlite else "id = ANY(:ids)"
        where = f"WHERE status = 'sending' AND lease_until < :now AND {in_ids}"
        requeue = text("UPDATE campaign_ledger SET status = 'queued', worker = NULL, lease_until = NULL, "
                       f"updated_at = :now {where}")
        fail = text("UPDATE campaign_ledger SET status = 'failed', reason = 'uncertain', detail = 'worker died "
                    "between the provider call and the record', worker = NULL, lease_until = NULL, "
                    f"updated_at = :now {where}")
        done = 0
        with write_txn(self.engine) as con:
            rows = con.execute(text("SELECT id, channel FROM campaign_ledger WHERE status = 'sending' AND "
                                    "lease_until < :now"), {"now": self._t(now)}).all()
            resend = [r.id for r in rows if r.channel in IDEMPOTENT_CHANNELS or self.uncertain == "resend"]
            lost = [r.id for r in rows if not (r.channel in IDEMPOTENT_CHANNELS or self.uncertain == "resend")]
            for stmt, ids in ((requeue, resend), (fail, lost)):
                for i in range(0, len(ids), 500):
                    done += con.execute(stmt, {"now": self._t(now), "ids": _ids(self.engine, ids[i:i + 500])}).rowcount
        self.stats.recovered += done
        return done

    # -- claiming and sending ----------------------------------------------------------------------
    def claim(self, now: datetime | None = None) -> list[Any]:
        """Claim up to `batch` due rows of active campaigns for this worker."""
        now = now or now_utc()
        params = {"w": self.worker_id, "lease": self._t(now + self.lease), "now": self._t(now), "n": self.batch}
        if self.campaign_id:
            params["cid"] = self.campaign_id
        with write_txn(self.engine) as con:
            rows = con.execute(text(_claim_sql(self.engine.dialect.name, self.campaign_id)), params).all()
        self.stats.claimed += len(rows)
        return rows

    def _policy(self, campaign_id: str) -> dict[str, Any]:
        if campaign_id not in self._policies:
            with Session(self.engine) as s:
                row = s.get(CampaignRow, campaign_id)
                self._policies[campaign_id] = dict((row.definition or {}).get("policy", {})) if row else {}
        return self._policies[campaign_id]

    def _attempts_allowed(self, campaign_id: str) -> int:
        return int(self._policy(campaign_id).get("max_attempts", 5))

    def _payload(self, row: Any) -> dict[str, Any]:
        """A claimed row's payload as a dict, parsed once per row (caps check and message share it)."""
        cache = self._parsed
        got = cache.get(row.id)
        if got is None:
            got = row.payload or {}
            if isinstance(got, str | bytes):
                got = orjson.loads(got)
            cache[row.id] = got
        return got  # type: ignore[no-any-return]

    def _message(self, row: Any) -> OutboundMessage:
        return self.message(row, self._payload(row))

    @staticmethod
    def message(row: Any, payload: dict[str, Any] | None = None) -> OutboundMessage:
        """The OutboundMessage of a claimed row (its rendered payload)."""
        p = payload if payload is not None else (row.payload or {})
        if isinstance(p, str | bytes):
            p = orjson.loads(p)
        return OutboundMessage(message_id=row.message_id, user_id=row.user_id, to=p.get("to") or "",
                               subject=p.get("subject") or "", text=p.get("text") or "", html=p.get("html"),
                               data=dict(p.get("data") or {}), campaign_id=row.campaign_id,
                               unsubscribe_url=p.get("unsubscribe_url"), advertising=bool(p.get("advertising")))

    def _send_group(self, group: list[Any]) -> list[DeliveryResult]:
        """Send rows of one campaign and channel: one batch call when the channel and policy allow it."""
        name = group[0].channel
        self.limiter.limit(name, (self._policy(group[0].campaign_id).get("rate_limits") or {}).get(name))
        channel = self.channels.get(name)
        if channel is None:
            return [DeliveryResult("failed", error=f"channel {name!r} is not configured", retryable=False)
                    for _ in group]
        try:
            if len(group) > 1 and isinstance(channel, WebhookChannel):
                for _ in group:
                    self.limiter.acquire(name)
                return send_batch(channel, [self._message(r) for r in group])
            out = []
            for r in group:
                self.limiter.acquire(name)
                out.append(channel.send(self._message(r)))
            return out
        except Exception as exc:  # an adapter bug must not kill the worker; the rows fail with the reason
            log.exception("channel %s raised", name)
            return [DeliveryResult("failed", error=f"{type(exc).__name__}: {exc}", retryable=True) for _ in group]

    def _groups(self, rows: list[Any]) -> list[list[Any]]:
        """Rows split into send units: batches of policy.batch_sizes[channel] per (campaign, channel), else 1."""
        by_key: dict[tuple[str, str], list[Any]] = {}
        for r in rows:
            by_key.setdefault((r.campaign_id, r.channel), []).append(r)
        units: list[list[Any]] = []
        for (cid, ch), items in by_key.items():
            size = max(1, int((self._policy(cid).get("batch_sizes") or {}).get(ch, 1)))
            units += [items[i:i + size] for i in range(0, len(items), size)]
        return units

    def _caps_exceeded(self, rows: list[Any], now: datetime) -> dict[int, str]:
        """Send-time frequency caps: row id -> detail for rows that would exceed a cap of their campaign.

        Counted: the user's messages already sent or delivered (any campaign), messages other workers are
        sending with a lower row id (the lower id wins a simultaneous race), and the rows of this batch allowed
        before it; periods are calendar days/weeks in the user's zone (recorded at planning). This catches
        what planning cannot: two campaigns planned at once, delayed (quiet hours) and triggered sends."""
        from zoneinfo import ZoneInfo

        from segmint.campaigns.guardrails import _period, zone_of

        capped = sorted((r for r in rows if self._caps(r.campaign_id)), key=lambda x: x.id)
        if not capped:
            return {}
        # each row's cap periods (calendar day/week of `now` in the user's zone)
        zones: dict[str, Any] = {}
        periods: dict[tuple[str, str], tuple[datetime, datetime]] = {}
        fallback = zone_of(self.default_zone, ZoneInfo("Asia/Seoul"))
        plan: list[tuple[Any, list[tuple[dict[str, Any], tuple[datetime, datetime]]]]] = []
        users_by_period: dict[tuple[datetime, datetime], set[str]] = {}
        for r in capped:
            name = self._payload(r).get("zone") or self.default_zone
            zone = zones.get(name) or zones.setdefault(name, zone_of(name, fallback))
            checks = []
            for cap in self._caps(r.campaign_id):
                if cap["channel"] not in ("*", r.channel):
                    continue
                key = (name, cap["per"])
                if key not in periods:
                    periods[key] = _period(now, zone, cap["per"])
                checks.append((cap, periods[key]))
                users_by_period.setdefault(periods[key], set()).add(r.user_id)
            plan.append((r, checks))
        # counted messages per (period, user, channel), aggregated by the database: one query per period
        sqlite = self.engine.dialect.name == "sqlite"
        in_users = "user_id IN (SELECT value FROM json_each(:users))" if sqlite else "user_id = ANY(:users)"
        # SQLite: "+status" keeps the planner on ix_ledger_user_sent (user, sent_at); without statistics it would
        # pick the status index and scan every sent row of the ledger for each batch
        status = "+status" if sqlite else "status"
        count_sql = text(f"SELECT user_id, channel, count(*) FROM campaign_ledger WHERE {in_users} AND {status} IN "
                         "('sent', 'delivered') AND sent_at >= :start AND sent_at < :end GROUP BY user_id, channel")
        pending_sql = text(f"SELECT id, user_id, channel FROM campaign_ledger WHERE {in_users} AND "
                           "status = 'sending' AND worker != :w")
        counts: dict[tuple[Any, ...], int] = {}
        pending: dict[str, list[tuple[int, str]]] = {}
        with self.engine.connect() as con:
            for (start, end), users in users_by_period.items():
                for uid, ch, n in con.execute(count_sql, {"users": _ids(self.engine, sorted(users)),
                                                          "start": self._t(start), "end": self._t(end)}).all():
                    counts[(start, end, uid, ch)] = n
            for rid, uid, ch in con.execute(pending_sql, {"w": self.worker_id, "users": _ids(
                    self.engine, sorted({r.user_id for r in capped}))}).all():
                pending.setdefault(uid, []).append((rid, ch))
        channels_seen: dict[str, set[str]] = {}
        for (_s, _e, uid, ch) in counts:
            channels_seen.setdefault(uid, set()).add(ch)
        out: dict[int, str] = {}
        for r, checks in plan:
            earlier = [ch for rid, ch in pending.get(r.user_id, ()) if rid < r.id]
            for cap, (start, end) in checks:
                chans = channels_seen.get(r.user_id, ()) if cap["channel"] == "*" else (cap["channel"],)
                n = sum(counts.get((start, end, r.user_id, ch), 0) for ch in chans) + sum(
                    1 for ch in earlier if cap["channel"] in ("*", ch))
                if n >= cap["max"]:
                    out[r.id] = f"{n} {cap['channel']} messages this {cap['per']} (max {cap['max']}), at send time"
                    break
            else:  # allowed: it counts for the rows after it in this batch
                for start, end in {period for _cap, period in checks}:
                    k = (start, end, r.user_id, r.channel)
                    counts[k] = counts.get(k, 0) + 1
                    channels_seen.setdefault(r.user_id, set()).add(r.channel)
        return out

    def _caps(self, campaign_id: str) -> list[dict[str, Any]]:
        policy = self._policy(campaign_id)
        if "frequency_caps" not in policy:
            from segmint.campaigns.model import Policy

            return [c.model_dump() for c in Policy().frequency_caps]
        return list(policy.get("frequency_caps") or [])

    def process(self, rows: list[Any]) -> None:
        """Send claimed rows (suppression list, triggered re-check, frequency caps first); record every outcome."""
        if not rows:
            return
        self._parsed = {}
        users = {r.user_id for r in rows}
        with Session(self.engine) as s:
            blocked = {(u, c) for u, c in s.execute(select(SuppressionRow.user_id, SuppressionRow.channel)
                                                   .where(SuppressionRow.user_id.in_(users)))}
        open_rows = [r for r in rows if (r.user_id, r.channel) not in blocked and (r.user_id, "*") not in blocked]
        try:
            vetoed = self.checker(open_rows, now_utc()) if self.checker is not None and open_rows else {}
        except Exception:  # the event store failed: nothing was sent, so the batch goes back to the queue
            log.exception("send-time re-check failed; %d claimed rows released", len(rows))
            self.release(rows)
            return
        over_cap = self._caps_exceeded([r for r in open_rows if r.id not in vetoed], now_utc())
        to_send = [r for r in open_rows if r.id not in vetoed and r.id not in over_cap]
        units = self._groups(to_send)
        results = {r.id: res for unit, out in zip(units, self.pool.map(self._send_group, units), strict=True)
                   for r, res in zip(unit, out, strict=True)}
        now = now_utc()
        records = []
        dead: list[dict[str, Any]] = []  # bounced addresses: onto the suppression list with the record
        for r in rows:
            rec = {"id": r.id, "w": self.worker_id, "now": now, "provider_id": None, "sent_at": None,
                   "due_at": now, "reason": None, "detail": None, "delivered_at": None}
            res = results.get(r.id)
            if r.id in vetoed:
                rec.update(status="suppressed", reason=vetoed[r.id][0], detail=vetoed[r.id][1])
                self.stats.suppressed += 1
            elif r.id in over_cap:
                rec.update(status="suppressed", reason="frequency_cap", detail=over_cap[r.id])
                self.stats.suppressed += 1
            elif res is None:
                rec.update(status="suppressed", reason="unsubscribed", detail="unsubscribed before sending")
                self.stats.suppressed += 1
            elif res.ok and getattr(self.channels.get(r.channel), "confirms_delivery", False):
                rec.update(status="delivered", provider_id=res.provider_message_id, sent_at=now, delivered_at=now)
                self.stats.sent += 1
            elif res.ok:
                rec.update(status="sent", provider_id=res.provider_message_id, sent_at=now)
                self.stats.sent += 1
            elif res.status == "bounced":  # a dead address (FCM UNREGISTERED): never tried again
                rec.update(status="bounced", reason="bounced", detail=res.error, sent_at=now, delivered_at=now)
                dead.append({"user_id": r.user_id, "channel": r.channel, "reason": "bounced",
                             "source": r.message_id, "created_at": now})
                self.stats.failed += 1
            elif res.status == "failed" and res.retryable and r.attempts < self._attempts_allowed(r.campaign_id):
                delay = max(backoff_delay(r.attempts, 2.0, 600.0), res.retry_after or 0.0, 1.0)
                rec.update(status="queued", reason="provider_failed", detail=res.error,
                           due_at=now + timedelta(seconds=delay))
                self.stats.retried += 1
            else:
                rec.update(status="failed", reason="provider_refused" if res.status == "refused" else
                           "provider_failed", detail=res.error)
                self.stats.failed += 1
            self.stats.by_status[rec["status"]] = self.stats.by_status.get(rec["status"], 0) + 1
            records.append(rec)
        stamps: dict[Any, Any] = {}  # a batch shares a few distinct times: serialize each once
        for rec in records:
            for k in ("now", "sent_at", "due_at", "delivered_at"):
                v = rec[k]
                if v is not None:
                    rec[k] = stamps[v] if v in stamps else stamps.setdefault(v, self._t(v))
        with write_txn(self.engine) as con:
            if self.engine.dialect.name == "sqlite":  # hot path: plain DB-API executemany
                con.exec_driver_sql(_RECORD_SQLITE, [tuple(rec[k] for k in _RECORD_KEYS) for rec in records])
            else:
                con.execute(_RECORD_SQL, records)
            if dead:
                _suppress(con, self.engine.dialect.name, dead)

    def release(self, rows: list[Any]) -> int:
        """Give claimed rows back unsent (`queued`, the claim's attempt not counted)."""
        sqlite = self.engine.dialect.name == "sqlite"
        in_ids = "id IN (SELECT value FROM json_each(:ids))" if sqlite else "id = ANY(:ids)"
        sql = text("UPDATE campaign_ledger SET status = 'queued', worker = NULL, lease_until = NULL, "
                   f"attempts = attempts - 1 WHERE {in_ids} AND worker = :w AND status = 'sending'")
        with write_txn(self.engine) as con:
            return con.execute(sql, {"ids": _ids(self.engine, [r.id for r in rows]), "w": self.worker_id}).rowcount

    def run_once(self) -> int:
        """Claim one batch and send it; returns how many rows were claimed."""
        rows = self.claim()
        if rows and self.stats.started is None:
            self.stats.started = time.time()
        self.process(rows)
        self.stats.batches += 1 if rows else 0
        return len(rows)

    def others_in_flight(self) -> datetime | None:
        """The latest lease of rows other workers are sending (in this worker's scope), or None."""
        only = " AND campaign_id = :cid" if self.campaign_id else ""
        with self.engine.connect() as con:
            value = con.execute(text("SELECT max(lease_until) FROM campaign_ledger WHERE status = 'sending' AND "
                                     f"worker != :w{only}"), {"w": self.worker_id, "cid": self.campaign_id}).scalar()
        if isinstance(value, str):
            value = datetime.fromisoformat(value)
        return value

    def planning_in_progress(self) -> bool:
        """True while an occurrence in this worker's scope is being planned (heartbeat within the lease): its
        rows are still arriving, so an idle worker waits for them instead of exiting."""
        fresh = now_utc() - self.lease
        q = select(OccurrenceRow.id).where(OccurrenceRow.status == "planning", OccurrenceRow.planned_at >= fresh)
        if self.campaign_id:
            q = q.where(OccurrenceRow.campaign_id == self.campaign_id)
        with Session(self.engine) as s:
            return s.execute(q.limit(1)).first() is not None

    def run(self, *, stop: threading.Event | None = None, until_idle: bool = True, idle_sleep: float = 0.5,
            hold: threading.Event | None = None) -> WorkerStats:
        """Recover expired claims, then send batches until nothing is due, no other worker's claim is pending
        (a dead worker's rows are recovered when their lease expires), no occurrence in scope is being planned
        and `hold` (if given) is set; or until `stop` is set. Planning and sending overlap: rows are claimed
        as the planner commits them."""
        cpu = time.process_time()
        try:
            return self._run(stop, until_idle, idle_sleep, hold)
        finally:
            self.stats.finished = time.time()
            self.stats.cpu_s += time.process_time() - cpu

    def _run(self, stop: threading.Event | None, until_idle: bool, idle_sleep: float,
             hold: threading.Event | None) -> WorkerStats:
        self.recover()
        while stop is None or not stop.is_set():
            n = self.run_once()
            if n == 0:
                if until_idle and (hold is None or hold.is_set()) and self.others_in_flight() is None and \
                        not self.planning_in_progress():
                    break
                if until_idle:
                    time.sleep(min(idle_sleep, 0.1) if hold is not None and not hold.is_set() else idle_sleep)
                    self.recover()
                    continue
                if stop is not None:
                    stop.wait(idle_sleep)
                else:
                    time.sleep(idle_sleep)
                self.recover()
        return self.stats


def _suppress(con: Connection, dialect: str, rows: list[dict[str, Any]]) -> None:
    """Put (user, channel) pairs on the suppression list in the caller's transaction (kept when already there)."""
    table = SuppressionRow.__table__
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        con.execute(pg_insert(table).on_conflict_do_nothing(), rows)
    elif dialect == "sqlite":
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        con.execute(sqlite_insert(table).on_conflict_do_nothing(), rows)
    else:
        for row in rows:
            if con.execute(select(table.c.id).where(table.c.user_id == row["user_id"],
                                                   table.c.channel == row["channel"])).first() is None:
                con.execute(table.insert(), row)


def _ids(engine: Engine, ids: list[int]) -> Any:
    import json

    return json.dumps(ids) if engine.dialect.name == "sqlite" else ids
