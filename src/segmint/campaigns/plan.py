"""Planning: resolve a campaign occurrence's audience, run the guardrails, and write its ledger rows.

Planning needs the event store (segments, profiles); sending (deliver.py) needs only the app DB, so worker
processes can send while the server owns the store. Planning is idempotent: rows are inserted with
"on conflict do nothing" on (campaign_id, occurrence, user_id), so re-planning after a crash completes the
occurrence without duplicating anyone.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import orjson
from sqlalchemy import Engine, select, update
from sqlalchemy.orm import Session

from segmint.appdb.campaigns import LedgerRow, OccurrenceRow
from segmint.campaigns.assignment import bucket
from segmint.campaigns.guardrail_columns import decide_many
from segmint.campaigns.guardrails import COUNTED, CapCounter, Decision, Guardrails, Recipient, zone_of
from segmint.campaigns.links import LinkMaker, public_url
from segmint.campaigns.model import Campaign, OnceSchedule, TriggeredSchedule
from segmint.campaigns.repo import now_utc
from segmint.campaigns.sendcheck import RECHECK_DETAIL, cancel_detail
from segmint.store.base import EventStore

CHUNK = 5000
COLUMN_WISE = True  # guardrails column-wise per chunk (guardrail_columns.py); False: per recipient (bench baseline)


_INSERT_COLUMNS = ("campaign_id", "occurrence", "user_id", "variant", "channel", "segment", "status", "reason",
                   "detail", "message_id", "provider_id", "attempts", "due_at", "queued_at", "sent_at",
                   "delivered_at", "updated_at", "worker", "lease_until", "payload", "context", "emitted")


def sqlite_time(value: datetime | None) -> str | None:
    """A naive UTC datetime in SQLAlchemy's SQLite storage format ("YYYY-MM-DD HH:MM:SS.ffffff")."""
    return None if value is None else value.isoformat(" ", "microseconds")



def _sqlite_tuples(rows: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    """Rows as DB-API tuples in _INSERT_COLUMNS order, times and JSON pre-serialized (times cached: a planning
    run shares a handful of distinct datetimes)."""
    times: dict[datetime, str] = {}

    def t(v: datetime | None) -> str | None:
        if v is None:
            return None
        s = times.get(v)
        if s is None:
            s = times[v] = v.isoformat(" ", "microseconds")
        return s

    def j(v: Any) -> str | None:
        return None if v is None else orjson.dumps(v).decode()

    return [(r["campaign_id"], r["occurrence"], r["user_id"], r["variant"], r["channel"], r["segment"], r["status"],
             r["reason"], r["detail"], r["message_id"], r["provider_id"], r["attempts"], t(r["due_at"]),
             t(r["queued_at"]), t(r["sent_at"]), t(r["delivered_at"]), t(r["updated_at"]), r["worker"],
             t(r["lease_until"]), j(r["payload"]), j(r["context"]), r["emitted"]) for r in rows]


def ledger_insert(engine: Engine, rows: list[dict[str, Any]]) -> None:
    """Insert ledger rows, skipping any (campaign_id, occurrence, user_id) already there."""
    if not rows:
        return
    if engine.dialect.name == "sqlite":  # the hot path: plain DB-API executemany, values pre-serialized
        sql = (f"INSERT OR IGNORE INTO campaign_ledger ({', '.join(_INSERT_COLUMNS)}) "
               f"VALUES ({', '.join('?' for _ in _INSERT_COLUMNS)})")
        with engine.begin() as con:
            con.exec_driver_sql(sql, _sqlite_tuples(rows))
        return
    if engine.dialect.name == "postgresql" and _pg_copy_insert(engine, rows):
        return
    table = LedgerRow.__table__
    if engine.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        stmt = pg_insert(table).on_conflict_do_nothing()
    else:
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        stmt = sqlite_insert(table).on_conflict_do_nothing()
    with engine.begin() as con:
        for i in range(0, len(rows), CHUNK):
            con.execute(stmt, rows[i:i + CHUNK])


def _pg_copy_insert(engine: Engine, rows: list[dict[str, Any]]) -> bool:
    """PostgreSQL with psycopg 3: COPY the rows into a session temp table, then one
    `INSERT ... SELECT ... ON CONFLICT DO NOTHING` (one round trip for the data, one statement). False when the
    driver has no COPY support (the caller then uses multi-row INSERTs)."""
    cols = ", ".join(_INSERT_COLUMNS)
    raw = engine.raw_connection()
    try:
        cur = raw.cursor()
        if not hasattr(cur, "copy"):
            return False
        cur.execute("CREATE TEMP TABLE IF NOT EXISTS segmint_ledger_in "
                    "(LIKE campaign_ledger INCLUDING DEFAULTS) ON COMMIT DELETE ROWS")
        with cur.copy(f"COPY segmint_ledger_in ({cols}) FROM STDIN") as copy:
            for r in rows:
                copy.write_row(tuple(orjson.dumps(r[c]).decode() if c in ("payload", "context") and r[c] is not None
                                     else r[c] for c in _INSERT_COLUMNS))
        cur.execute(f"INSERT INTO campaign_ledger ({cols}) SELECT {cols} FROM segmint_ledger_in "
                    "ON CONFLICT DO NOTHING")
        raw.commit()
        return True
    except BaseException:
        raw.rollback()
        raise
    finally:
        raw.close()


# ------------------------------------------------------------------ inputs


def load_profiles(store: EventStore, user_ids: Sequence[str]) -> dict[str, tuple[dict[str, Any], str | None]]:
    """user_id -> (traits, timezone) for these users (missing users are absent)."""
    if not user_ids:
        return {}
    if store.dialect == "clickhouse":
        sql = "SELECT user_id, traits, timezone FROM profiles WHERE user_id IN {ids:Array(String)}"
        table = store.query(sql, {"ids": list(user_ids)})
    else:
        sql = ("SELECT p.user_id, CAST(p.traits AS VARCHAR), p.timezone FROM profiles p "
               "JOIN (SELECT unnest(?::VARCHAR[]) AS u) t ON p.user_id = t.u")
        table = store.query(sql, [list(user_ids)])
    out: dict[str, tuple[dict[str, Any], str | None]] = {}
    cols = [table.column(i).to_pylist() for i in range(3)]
    for uid, traits, tz in zip(*cols, strict=True):
        try:
            parsed = orjson.loads(traits) if traits else {}
        except orjson.JSONDecodeError:
            parsed = {}
        out[str(uid)] = (parsed if isinstance(parsed, dict) else {}, tz)
    return out


def _user_chunks(engine: Engine, user_ids: Iterable[str] | None) -> list[Any]:
    """The user list bound for `user_id IN ...` in chunks ([None] = no filter: every user)."""
    if user_ids is None:
        return [None]
    users = sorted(set(user_ids))
    step = 20_000
    if engine.dialect.name == "sqlite":
        return [orjson.dumps(users[i:i + step]).decode() for i in range(0, len(users), step)]
    return [users[i:i + step] for i in range(0, len(users), step)]


def _in_users(engine: Engine) -> str:
    return "user_id IN (SELECT value FROM json_each(:users))" if engine.dialect.name == "sqlite" else \
        "user_id = ANY(:users)"


def load_suppressed(engine: Engine, user_ids: Iterable[str] | None = None) -> set[tuple[str, str]]:
    """(user_id, channel) pairs on the suppression list ("*" = every channel), for these users (all if None)."""
    from sqlalchemy import text

    out: set[tuple[str, str]] = set()
    with engine.connect() as con:
        for chunk in _user_chunks(engine, user_ids):
            where = "" if chunk is None else f" WHERE {_in_users(engine)}"
            params = {} if chunk is None else {"users": chunk}
            out |= {(u, c) for u, c in con.execute(text(f"SELECT user_id, channel FROM campaign_suppressions{where}"),
                                                  params).all()}
    return out


def load_caps(engine: Engine, since: datetime, user_ids: Iterable[str] | None = None) -> CapCounter:
    """Counted messages (queued, sending, sent, delivered) since a time, for the frequency caps (for these users,
    filtered in the database: the ledger of other users is never read)."""
    from sqlalchemy import text

    caps = CapCounter()
    sqlite = engine.dialect.name == "sqlite"
    counted = ", ".join(f"'{s}'" for s in COUNTED)
    # SQLite: "+status" keeps the planner on the user index (without statistics it picks the status index)
    status = "+status" if sqlite else "status"
    with engine.connect() as con:
        for chunk in _user_chunks(engine, user_ids):
            where = "" if chunk is None else f" AND {_in_users(engine)}"
            sql = text(f"SELECT user_id, channel, sent_at, due_at FROM campaign_ledger WHERE {status} IN ({counted}) "
                       f"AND due_at >= :since{where}")
            params: dict[str, Any] = {"since": sqlite_time(since) if sqlite else since}
            if chunk is not None:
                params["users"] = chunk
            for uid, ch, sent_at, due_at in con.execute(sql, params).all():
                at = sent_at or due_at
                caps.add(uid, ch, datetime.fromisoformat(at) if isinstance(at, str) else at)
    return caps


def resolve_audience(ws: Any, campaign: Campaign, as_of: datetime | None = None) -> list[tuple[str, str]]:
    """(user_id, first target segment matched) for members of any target segment and of no exclusion segment."""
    from segmint.segments.saved import segment_members

    seen: dict[str, str] = {}
    for name in campaign.target:
        for uid in segment_members(ws, name, as_of):
            seen.setdefault(uid, name)
    for name in campaign.exclude:
        for uid in segment_members(ws, name, as_of):
            seen.pop(uid, None)
    return list(seen.items())


def guardrails_for(ws: Any, campaign: Campaign, user_ids: Sequence[str], now: datetime, *,
                   explain: bool = False) -> Guardrails:
    """Guardrails with this workspace's links, suppression list and frequency-cap counts (`explain`: record
    every check in each Decision, for previews)."""
    links = LinkMaker(public_url(ws), ws.config.session_secret or ws.config.admin_token)
    return Guardrails(campaign, links=links, suppressed=load_suppressed(ws.appdb, user_ids),
                      caps=load_caps(ws.appdb, now - timedelta(days=8), user_ids), default_zone=ws.config.zone,
                      explain=explain)


def _row(campaign_id: str, occurrence: str, d: Decision, segment: str | None, now: datetime,
         context: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"campaign_id": campaign_id, "occurrence": occurrence, "user_id": d.user_id, "variant": d.variant,
            "channel": d.channel, "segment": segment, "status": d.status, "reason": d.reason, "detail": d.detail,
            "message_id": f"{campaign_id}:{occurrence}:{d.user_id}", "provider_id": None, "attempts": 0,
            "due_at": d.due_at, "queued_at": now, "sent_at": d.due_at if d.status == "holdout" else None,
            "delivered_at": None, "updated_at": now, "worker": None, "lease_until": None, "payload": d.payload,
            "context": context, "emitted": None}


def local_due(at: datetime, zone: ZoneInfo, now: datetime) -> datetime:
    """A wall-clock time in the user's zone as naive UTC, but never before now."""
    due = at.replace(tzinfo=zone).astimezone(UTC).replace(tzinfo=None)
    return max(due, now)


# ------------------------------------------------------------------ one occurrence


@dataclass
class PlanResult:
    """Counts of one planned occurrence by status and by reason."""

    campaign_id: str
    occurrence: str
    audience: int = 0
    statuses: dict[str, int] = field(default_factory=dict)
    reasons: dict[str, int] = field(default_factory=dict)
    already_planned: bool = False

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"campaign_id": self.campaign_id, "occurrence": self.occurrence, "audience": self.audience,
                "statuses": self.statuses, "reasons": self.reasons, "already_planned": self.already_planned}


def _decide_chunk(ws: Any, campaign: Campaign, occurrence: str, when: datetime, now: datetime,
                  work: list[tuple[str, str | None, dict[str, Any], str | None]]) -> int:
    """Run the guardrails for (user, segment, traits, timezone) items and insert their ledger rows."""
    rails = guardrails_for(ws, campaign, [w[0] for w in work], now)
    sched = campaign.schedule
    local = isinstance(sched, OnceSchedule) and sched.local_time and sched.at is not None
    zones: dict[Any, ZoneInfo] = {}
    for start in range(0, len(work), CHUNK):
        part = work[start:start + CHUNK]
        recipients, dues = [], []
        for uid, seg, traits, tz in part:
            name = tz or traits.get("timezone")
            key = name if name is None or isinstance(name, str) else repr(name)  # a trait may hold anything
            zone = zones.get(key)
            if zone is None:
                zone = zones[key] = zone_of(name, ws.config.zone)
            recipients.append(Recipient(uid, traits, zone, seg))
            dues.append(local_due(sched.at.replace(tzinfo=None), zone, now) if local else when)  # type: ignore[union-attr]
        decisions = decide_many(rails, recipients, occurrence, dues) if COLUMN_WISE else \
            [rails.decide(r, occurrence, d) for r, d in zip(recipients, dues, strict=True)]
        ledger_insert(ws.appdb, [_row(campaign.id, occurrence, d, r.segment, now)
                                 for r, d in zip(recipients, decisions, strict=True)])
        if start + CHUNK < len(work):
            heartbeat(ws.appdb, campaign.id, occurrence)
    return len(work)


def heartbeat(engine: Engine, campaign_id: str, occurrence: str) -> None:
    """Record planning progress (`planned_at` of a `planning` occurrence): workers keep waiting for more rows
    while an occurrence is being planned and its heartbeat is fresher than their lease."""
    with engine.begin() as con:
        con.execute(update(OccurrenceRow).where(OccurrenceRow.campaign_id == campaign_id,
                                                OccurrenceRow.occurrence == occurrence,
                                                OccurrenceRow.status == "planning").values(planned_at=now_utc()))


def _child(args: tuple[Any, ...]) -> int:
    """Process-pool entry: plan one share of the audience with its own app DB connection."""
    path, campaign_json, occurrence, when, now, work = args
    from segmint.workspace import Workspace

    ws = Workspace(path)
    try:
        return _decide_chunk(ws, Campaign.model_validate(campaign_json), occurrence, when, now, work)
    finally:
        ws.appdb.dispose()


def _decide_parallel(ws: Any, campaign: Campaign, occurrence: str, when: datetime, now: datetime,
                     work: list[tuple[str, str | None, dict[str, Any], str | None]], processes: int) -> None:
    """Split the audience by user across processes (caps are per user, so the shares are independent)."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    shares = [work[i::processes] for i in range(processes)]
    method = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
    with ProcessPoolExecutor(processes, mp_context=multiprocessing.get_context(method)) as pool:
        list(pool.map(_child, [(ws.path, campaign.model_dump(mode="json"), occurrence, when, now, share)
                               for share in shares]))


def plan_occurrence(ws: Any, campaign: Campaign, occurrence: str, scheduled_for: datetime | None = None, *,
                    now: datetime | None = None, audience: list[tuple[str, str]] | None = None,
                    processes: int = 1) -> PlanResult:
    """Write the ledger rows of one occurrence (idempotent: a planned occurrence is left as it is).

    `processes` > 1 runs the guardrails and rendering in that many processes (CLI and batch use; the
    server plans in-process)."""
    now = now or now_utc()
    when = scheduled_for or now
    result = PlanResult(campaign.id, occurrence)
    with Session(ws.appdb) as s, s.begin():
        occ = s.scalars(select(OccurrenceRow).where(OccurrenceRow.campaign_id == campaign.id,
                                                    OccurrenceRow.occurrence == occurrence)).first()
        if occ is not None and occ.status == "planned":
            result.already_planned, result.audience = True, occ.audience
            return result
        if occ is None:
            s.add(OccurrenceRow(campaign_id=campaign.id, occurrence=occurrence, status="planning", audience=0,
                                scheduled_for=when, created_at=now, planned_at=now_utc()))
    if occ is not None:
        heartbeat(ws.appdb, campaign.id, occurrence)
    members = audience if audience is not None else resolve_audience(ws, campaign)
    if campaign.audience_cap is not None and len(members) > campaign.audience_cap:
        members.sort(key=lambda m: (bucket(campaign.id, m[0], "cap"), m[0]))
        capped, members = members[campaign.audience_cap:], members[:campaign.audience_cap]
    else:
        capped = []
    with Session(ws.appdb) as s:
        done = set(s.scalars(select(LedgerRow.user_id).where(LedgerRow.campaign_id == campaign.id,
                                                             LedgerRow.occurrence == occurrence)))
    todo = [(u, seg) for u, seg in members if u not in done]
    ids = [u for u, _ in todo]
    profiles = load_profiles(ws.store, ids)
    work = [(u, seg, *profiles.get(u, ({}, None))) for u, seg in todo]
    if processes > 1 and len(work) >= 2 * CHUNK:
        _decide_parallel(ws, campaign, occurrence, when, now, work, processes)
    else:
        _decide_chunk(ws, campaign, occurrence, when, now, work)
    rows: list[dict[str, Any]] = []
    for uid, seg in capped:
        if uid not in done:
            d = Decision(uid, "-", campaign.channels[0], "suppressed", when, "audience_cap",
                         f"beyond the audience cap of {campaign.audience_cap}")
            from segmint.campaigns.assignment import assign

            d.variant = assign(campaign.id, uid, campaign.split)
            rows.append(_row(campaign.id, occurrence, d, seg, now))
    ledger_insert(ws.appdb, rows)
    with Session(ws.appdb) as s, s.begin():
        s.execute(update(OccurrenceRow).where(OccurrenceRow.campaign_id == campaign.id,
                                              OccurrenceRow.occurrence == occurrence)
                  .values(status="planned", audience=len(members) + len(capped), planned_at=now_utc()))
    result.audience = len(members) + len(capped)
    _count(ws.appdb, result)
    return result


def _count(engine: Engine, result: PlanResult) -> None:
    from sqlalchemy import func

    with Session(engine) as s:
        q = (select(LedgerRow.status, LedgerRow.reason, func.count())
             .where(LedgerRow.campaign_id == result.campaign_id, LedgerRow.occurrence == result.occurrence)
             .group_by(LedgerRow.status, LedgerRow.reason))
        for status, reason, n in s.execute(q):
            result.statuses[status] = result.statuses.get(status, 0) + n
            if reason:
                result.reasons[reason] = result.reasons.get(reason, 0) + n


# ------------------------------------------------------------------ triggers


def trigger_delay(campaign: Campaign, user_id: str, occurrence: str) -> timedelta:
    """The delay after the trigger: fixed, or spread between delay and delay_max by a per-user hash."""
    sched = campaign.schedule
    assert isinstance(sched, TriggeredSchedule)
    if sched.delay_max is None or sched.delay_max == sched.delay:
        return sched.delay
    u = int.from_bytes(hashlib.sha256(f"{campaign.id}\x1f{occurrence}\x1f{user_id}".encode()).digest()[:8], "big")
    frac = (u % 1_000_000) / 1_000_000
    return sched.delay + (sched.delay_max - sched.delay) * frac


def _matches(sched: TriggeredSchedule, props: dict[str, Any]) -> bool:
    if sched.segment is not None and props.get("segment") != sched.segment:
        return False
    return all(props.get(k) == v for k, v in sched.where.items())


def scan_triggers(ws: Any, campaign: Campaign, cursor: str | None, *, now: datetime | None = None,
                  limit: int = 50_000) -> tuple[int, str | None]:
    """Turn trigger events stored since `cursor` (received_at) into scheduled ledger rows; returns (n, cursor)."""
    sched = campaign.schedule
    assert isinstance(sched, TriggeredSchedule)
    now = now or now_utc()
    since = datetime.fromisoformat(cursor) if cursor else now - timedelta(seconds=1)
    sql = ("SELECT message_id, user_id, ts, received_at, CAST(properties AS VARCHAR) FROM events "
           "WHERE event = ? AND received_at > ? AND user_id IS NOT NULL ORDER BY received_at LIMIT ?")
    if ws.store.dialect == "clickhouse":
        sql = ("SELECT message_id, user_id, ts, received_at, toString(properties) FROM events WHERE event = "
               "{e:String} AND received_at > {s:DateTime64(6)} AND user_id IS NOT NULL ORDER BY received_at "
               "LIMIT {n:UInt64}")
        table = ws.store.query(sql, {"e": sched.event, "s": since, "n": limit})
    else:
        table = ws.store.query(sql, [sched.event, since, limit])
    rows: list[dict[str, Any]] = []
    last = cursor
    found = list(zip(*[table.column(i).to_pylist() for i in range(5)], strict=True))
    if len(found) >= limit and found[0][3] != found[-1][3]:
        # a full page: leave the events sharing the last received_at for the next scan, so none is skipped
        found = [f for f in found if f[3] != found[-1][3]]
    for mid, uid, ts, received, props in found:
        last = received.isoformat()
        try:
            properties = orjson.loads(props) if props else {}
        except orjson.JSONDecodeError:
            properties = {}
        if not _matches(sched, properties):
            continue
        occurrence = str(mid)
        due = ts + trigger_delay(campaign, uid, occurrence)
        rows.append({"campaign_id": campaign.id, "occurrence": occurrence, "user_id": uid, "variant": "-",
                     "channel": campaign.channels[0], "segment": sched.segment, "status": "scheduled",
                     "reason": None, "detail": None, "message_id": f"{campaign.id}:{occurrence}:{uid}",
                     "provider_id": None, "attempts": 0, "due_at": due, "queued_at": now, "sent_at": None,
                     "delivered_at": None, "updated_at": now, "worker": None, "lease_until": None, "payload": None,
                     "context": {"event": sched.event, "timestamp": ts.isoformat(), "properties": properties},
                     "emitted": None})
    ledger_insert(ws.appdb, rows)
    return len(rows), last


def _did_since(store: EventStore, user_ids: Sequence[str], events: Sequence[str]) -> dict[str, datetime]:
    """The latest time each user did any of these events (users without one are absent)."""
    if not user_ids or not events:
        return {}
    if store.dialect == "clickhouse":
        table = store.query("SELECT user_id, max(ts) FROM events WHERE event IN {e:Array(String)} AND user_id IN "
                            "{u:Array(String)} GROUP BY user_id", {"e": list(events), "u": list(user_ids)})
    else:
        table = store.query("SELECT user_id, max(ts) FROM events WHERE list_contains(?::VARCHAR[], event) AND "
                            "user_id IN (SELECT unnest(?::VARCHAR[])) GROUP BY user_id",
                            [list(events), list(user_ids)])
    return dict(zip(table.column(0).to_pylist(), table.column(1).to_pylist(), strict=True))


def prepare_due(ws: Any, campaign: Campaign, *, now: datetime | None = None, limit: int = 20_000) -> int:
    """Send-time checks for due `scheduled` rows: target re-check, cancel_on, guardrails, render -> queued etc."""
    now = now or now_utc()
    with Session(ws.appdb) as s:
        due_rows = s.execute(select(LedgerRow.id, LedgerRow.user_id, LedgerRow.occurrence, LedgerRow.context,
                                    LedgerRow.due_at)
                             .where(LedgerRow.campaign_id == campaign.id, LedgerRow.status == "scheduled",
                                    LedgerRow.due_at <= now).order_by(LedgerRow.due_at).limit(limit)).all()
    if not due_rows:
        return 0
    sched = campaign.schedule
    users = sorted({r.user_id for r in due_rows})
    in_target: dict[str, str] | None = None
    if isinstance(sched, TriggeredSchedule) and sched.recheck and campaign.target:
        in_target = dict(resolve_audience(ws, campaign))
    elif campaign.exclude:
        from segmint.segments.saved import segment_members

        excluded = {u for name in campaign.exclude for u in segment_members(ws, name)}
        in_target = {u: "" for u in users if u not in excluded}
    cancels = _did_since(ws.store, users, sched.cancel_on) if isinstance(sched, TriggeredSchedule) else {}
    profiles = load_profiles(ws.store, users)
    rails = guardrails_for(ws, campaign, users, now)
    updates: list[dict[str, Any]] = []
    decided: list[tuple[Any, Decision | None, str | None]] = []
    eligible: list[Recipient] = []
    for r in due_rows:
        traits, tz = profiles.get(r.user_id, ({}, None))
        zone = zone_of(tz or traits.get("timezone"), ws.config.zone)
        ctx = r.context or {}
        trig_ts = datetime.fromisoformat(ctx["timestamp"]) if ctx.get("timestamp") else r.due_at
        segment = None
        d: Decision | None = None
        if in_target is not None and r.user_id not in in_target:
            d = Decision(r.user_id, "-", campaign.channels[0], "suppressed", now, "recheck_failed", RECHECK_DETAIL)
        elif r.user_id in cancels and cancels[r.user_id] > trig_ts:
            d = Decision(r.user_id, "-", campaign.channels[0], "suppressed", now, "cancelled",
                         cancel_detail(sched))  # type: ignore[arg-type]
        else:
            segment = (in_target or {}).get(r.user_id) or None
            eligible.append(Recipient(r.user_id, traits, zone, segment, ctx or None))
        decided.append((r, d, segment))
    # the guardrails column-wise over the eligible rows (each row with its own occurrence)
    slots = [i for i, (_r, d, _s) in enumerate(decided) if d is None]
    results = decide_many(rails, eligible, [decided[i][0].occurrence for i in slots], [now] * len(slots))
    for k, i in enumerate(slots):
        decided[i] = (decided[i][0], results[k], decided[i][2])
    for r, d, segment in decided:
        assert d is not None
        if d.variant == "-":
            from segmint.campaigns.assignment import assign

            d.variant = assign(campaign.id, r.user_id, campaign.split)
        if d.status == "queued" and d.due_at > now:
            # delayed by quiet hours / the night rule: stay `scheduled`, so the re-check, cancel_on and every
            # guardrail run again when it may really go out (a purchase meanwhile still cancels it)
            d.status, d.payload = "scheduled", None
        updates.append({"_id": r.id, "variant": d.variant, "channel": d.channel, "status": d.status,
                        "reason": d.reason, "detail": d.detail, "due_at": d.due_at, "payload": d.payload,
                        "sent_at": d.due_at if d.status == "holdout" else None, "updated_at": now,
                        **({"segment": segment} if segment else {})})
    _bulk_update(ws.appdb, updates)
    return len(updates)


def _bulk_update(engine: Engine, updates: list[dict[str, Any]]) -> None:
    """Update ledger rows by id (each dict: `_id` plus the columns to set)."""
    from sqlalchemy import bindparam

    groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for u in updates:
        groups.setdefault(tuple(sorted(k for k in u if k != "_id")), []).append(u)
    table = LedgerRow.__table__
    with engine.begin() as con:
        for keys, rows in groups.items():
            stmt = update(table).where(table.c.id == bindparam("b__id")).values(
                {k: bindparam("b_" + k) for k in keys})
            con.execute(stmt, [{"b_" + k: v for k, v in r.items()} for r in rows])
