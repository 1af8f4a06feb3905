"""A campaign's dry run for the composer: who the next occurrence would reach and how many each guardrail
would suppress, computed with the campaign library's planning pieces (audience, cap, guardrails) but writing
nothing to the ledger.

It follows `plan.plan_occurrence`: target members minus exclusions, the audience cap (same deterministic
order), each user's profile and zone, `Guardrails.decide` at the occurrence's due time (a per-user local time
for `local_time` one-offs); a triggered campaign is tried as if every current target member fired the trigger
now (send time = now + delay), with their latest trigger event's properties for the templates. Large
audiences are decided on a deterministic sample and scaled.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import orjson

from segmint.campaigns.assignment import bucket
from segmint.campaigns.guardrails import Recipient, zone_of
from segmint.campaigns.model import Campaign, OnceSchedule, RecurringSchedule, TriggeredSchedule
from segmint.campaigns.plan import _did_since, guardrails_for, load_profiles, local_due, resolve_audience

SAMPLE = 10_000  # users decided one by one (about 0.13 ms CPU each); above this, counts are scaled from a sample


def next_due(campaign: Campaign, now: datetime, zone: ZoneInfo) -> datetime:
    """The naive UTC time the next occurrence is planned for (triggered: now + delay)."""
    sched = campaign.schedule
    if isinstance(sched, OnceSchedule):
        if sched.at is None or sched.local_time:
            return now
        at = sched.at if sched.at.tzinfo is None else sched.at.astimezone(UTC).replace(tzinfo=None)
        return max(at, now)
    if isinstance(sched, RecurringSchedule):
        from cronsim import CronSim

        tz = ZoneInfo(sched.timezone) if sched.timezone else zone
        local = now.replace(tzinfo=UTC).astimezone(tz).replace(tzinfo=None)
        nxt = next(iter(CronSim(sched.cron, local)))
        return nxt.replace(tzinfo=tz).astimezone(UTC).replace(tzinfo=None)
    assert isinstance(sched, TriggeredSchedule)
    return now + sched.delay


def dry_run(ws: Any, campaign: Campaign, *, now: datetime | None = None, sample: int = SAMPLE) -> dict[str, Any]:
    """Counts of the next occurrence by outcome (queued, delayed, holdout, suppressed) and suppression reason."""
    now = now or datetime.now(UTC).replace(tzinfo=None)
    sched = campaign.schedule
    due = next_due(campaign, now, ws.config.zone)
    out: dict[str, Any] = {"campaign_id": campaign.id, "schedule": sched.type, "due_at": due.isoformat(),
                           "audience": 0, "decided": 0, "estimated": False, "statuses": {}, "reasons": {},
                           "delayed": {}, "per_variant": {}, "note": None}
    if isinstance(sched, TriggeredSchedule):
        out["recheck"] = send_time_recheck(ws, campaign, now)
    if isinstance(sched, TriggeredSchedule) and not campaign.target:
        out["note"] = "no_target"  # a trigger without a target: anyone firing it; no audience to count now
        return out
    members = resolve_audience(ws, campaign)
    capped = 0
    if campaign.audience_cap is not None and len(members) > campaign.audience_cap:
        members.sort(key=lambda m: (bucket(campaign.id, m[0], "cap"), m[0]))
        capped = len(members) - campaign.audience_cap
        members = members[:campaign.audience_cap]
    out["audience"] = len(members) + capped
    scale = 1.0
    if len(members) > sample:
        members.sort(key=lambda m: (bucket(campaign.id, m[0], "dryrun"), m[0]))
        scale, members = len(members) / sample, members[:sample]
        out["estimated"] = True
    ids = [u for u, _ in members]
    profiles = load_profiles(ws.store, ids)
    rails = guardrails_for(ws, campaign, ids, now)
    statuses: Counter[str] = Counter()
    reasons: Counter[str] = Counter()
    delayed: Counter[str] = Counter()
    per_variant: dict[str, Counter[str]] = {}
    last = last_events(ws.store, sched.event, ids) if isinstance(sched, TriggeredSchedule) else {}
    for uid, seg in members:
        traits, tz = profiles.get(uid, ({}, None))
        zone = zone_of(tz or traits.get("timezone"), ws.config.zone)
        when = due
        if isinstance(sched, OnceSchedule) and sched.local_time and sched.at is not None:
            when = local_due(sched.at.replace(tzinfo=None), zone, now)
        trigger = None
        if isinstance(sched, TriggeredSchedule):  # the user's latest trigger event stands in for the next one
            trigger = {"event": sched.event, "timestamp": now.isoformat(), "properties": last.get(uid, {})}
        d = rails.decide(Recipient(uid, traits, zone, seg, trigger), "dry-run", when)
        statuses[d.status] += 1
        per_variant.setdefault(d.variant, Counter())[d.status] += 1
        if d.status == "suppressed" and d.reason:
            reasons[d.reason] += 1
        elif d.status == "queued" and d.reason:
            delayed[d.reason] += 1
    out["decided"] = len(members)

    def scaled(c: Counter[str]) -> dict[str, int]:
        return {k: round(v * scale) for k, v in sorted(c.items(), key=lambda kv: -kv[1])}

    out["statuses"], out["reasons"], out["delayed"] = scaled(statuses), scaled(reasons), scaled(delayed)
    out["per_variant"] = {k: scaled(v) for k, v in sorted(per_variant.items())}
    if capped:
        out["reasons"]["audience_cap"] = capped
        out["statuses"]["suppressed"] = out["statuses"].get("suppressed", 0) + capped
    return out


def last_events(store: Any, event: str, user_ids: list[str]) -> dict[str, dict[str, Any]]:
    """Each user's latest `event` properties (users without one are absent), in one query."""
    if not user_ids:
        return {}
    if store.dialect == "clickhouse":
        table = store.query("SELECT user_id, toString(argMax(properties, ts)) FROM events WHERE event = {e:String} "
                            "AND user_id IN {u:Array(String)} GROUP BY user_id", {"e": event, "u": user_ids})
    else:
        table = store.query("SELECT user_id, CAST(arg_max(properties, ts) AS VARCHAR) FROM events WHERE event = ? "
                            "AND user_id IN (SELECT unnest(?::VARCHAR[])) GROUP BY user_id", [event, user_ids])
    out: dict[str, dict[str, Any]] = {}
    for uid, props in zip(table.column(0).to_pylist(), table.column(1).to_pylist(), strict=True):
        try:
            parsed = orjson.loads(props) if props else {}
        except orjson.JSONDecodeError:
            parsed = {}
        out[str(uid)] = parsed if isinstance(parsed, dict) else {}
    return out


RECHECK_MIN_LOOKBACK = timedelta(days=1)


def pending_triggers(store: Any, sched: TriggeredSchedule, since: datetime) -> dict[str, datetime]:
    """Each user's latest trigger event since `since` that the trigger's `segment` / `where` filters accept
    (the events `plan.scan_triggers` turns into scheduled rows): user -> event time (naive UTC)."""
    if store.dialect == "clickhouse":
        table = store.query("SELECT user_id, ts, toString(properties) FROM events WHERE event = {e:String} AND "
                            "ts > {s:DateTime64(6)} AND user_id IS NOT NULL", {"e": sched.event, "s": since})
    else:
        table = store.query("SELECT user_id, ts, CAST(properties AS VARCHAR) FROM events WHERE event = ? AND "
                            "ts > ? AND user_id IS NOT NULL", [sched.event, since])
    out: dict[str, datetime] = {}
    for uid, ts, props in zip(*[table.column(i).to_pylist() for i in range(3)], strict=True):
        try:
            parsed = orjson.loads(props) if props else {}
        except orjson.JSONDecodeError:
            parsed = {}
        parsed = parsed if isinstance(parsed, dict) else {}
        if sched.segment is not None and parsed.get("segment") != sched.segment:
            continue
        if any(parsed.get(k) != v for k, v in sched.where.items()):
            continue
        if uid not in out or ts > out[uid]:
            out[str(uid)] = ts
    return out


def send_time_recheck(ws: Any, campaign: Campaign, now: datetime, *,
                      lookback: timedelta | None = None) -> dict[str, Any]:
    """If every recent trigger's message went out now: how many would be dropped because the user is no longer
    in the target (`recheck_failed`) or did a `cancel_on` event after the trigger (`cancelled`), as
    `plan.prepare_due` decides them; the rest pass on to the guardrails."""
    sched = campaign.schedule
    assert isinstance(sched, TriggeredSchedule)
    longest = sched.delay_max or sched.delay
    since = now - (lookback if lookback is not None else max(longest, RECHECK_MIN_LOOKBACK))
    triggers = pending_triggers(ws.store, sched, since)
    users = sorted(triggers)
    in_target: set[str] | None = None
    if sched.recheck and campaign.target:
        in_target = {u for u, _seg in resolve_audience(ws, campaign)}
    elif campaign.exclude:
        from segmint.segments.saved import segment_members

        excluded = {u for name in campaign.exclude for u in segment_members(ws, name)}
        in_target = {u for u in users if u not in excluded}
    cancels = _did_since(ws.store, users, sched.cancel_on)
    counts: Counter[str] = Counter()
    for uid in users:
        if in_target is not None and uid not in in_target:
            counts["recheck_failed"] += 1
        elif uid in cancels and cancels[uid] > triggers[uid]:
            counts["cancelled"] += 1
        else:
            counts["passed"] += 1
    return {"since": since.isoformat(), "pending": len(users), "recheck_failed": counts["recheck_failed"],
            "cancelled": counts["cancelled"], "passed": counts["passed"]}
