"""Preview a campaign for one real user: their group, each variant rendered, and every guardrail's verdict."""

from __future__ import annotations

from typing import Any

import orjson

from segmint.campaigns.assignment import assign
from segmint.campaigns.guardrails import REASONS, Recipient, zone_of
from segmint.campaigns.model import Campaign, TriggeredSchedule
from segmint.campaigns.plan import guardrails_for, load_profiles
from segmint.campaigns.repo import now_utc
from segmint.errors import NotFound
from segmint.store.base import EventStore


def last_trigger_event(store: EventStore, event: str, user_id: str) -> dict[str, Any] | None:
    """The user's latest event of this name as template context ({"event", "timestamp", "properties"})."""
    ph = ("{e:String}", "{u:String}") if store.dialect == "clickhouse" else ("$e", "$u")
    sql = (f"SELECT ts, CAST(properties AS VARCHAR) FROM events WHERE event = {ph[0]} AND user_id = {ph[1]} "
           "ORDER BY ts DESC LIMIT 1")
    if store.dialect == "clickhouse":
        sql = sql.replace("CAST(properties AS VARCHAR)", "toString(properties)")
    rows = store.query(sql, {"e": event, "u": user_id}).to_pylist()
    if not rows:
        return None
    ts, props = list(rows[0].values())
    return {"event": event, "timestamp": ts.isoformat(), "properties": orjson.loads(props) if props else {}}


def preview_user(ws: Any, campaign: Campaign, user_id: str, *, store: EventStore | None = None,
                 event: dict[str, Any] | None = None) -> dict[str, Any]:
    """What `user_id` would get now: assigned group, target membership, and per variant the guardrail checks,
    the outcome (queued / suppressed with reason / holdout) and the rendered message."""
    store = store or ws.store
    profiles = load_profiles(store, [user_id])
    if user_id not in profiles:
        raise NotFound(f"no profile for user {user_id!r}", where="user")
    traits, tz = profiles[user_id]
    zone = zone_of(tz or traits.get("timezone"), ws.config.zone)
    now = now_utc()
    membership: dict[str, bool] = {}
    if campaign.target or campaign.exclude:
        from segmint.segments.evaluate import evaluate
        from segmint.segments.saved import guarded, segment_tree

        for name in [*campaign.target, *campaign.exclude]:
            membership[name] = user_id in set(guarded(evaluate, store, segment_tree(ws.appdb, name)))
    in_target = (not campaign.target or any(membership[n] for n in campaign.target)) and not any(
        membership[n] for n in campaign.exclude)
    if event is None and isinstance(campaign.schedule, TriggeredSchedule):
        event = last_trigger_event(store, campaign.schedule.event, user_id)
    rails = guardrails_for(ws, campaign, [user_id], now, explain=True)
    segment = next((n for n in campaign.target if membership.get(n)), None)
    recipient = Recipient(user_id, traits, zone, segment, event)
    variants = []
    for v in campaign.variants:
        d = rails.decide(recipient, "preview", now, variant=v.key)
        rails.caps = guardrails_for(ws, campaign, [user_id], now).caps  # previews must not count each other
        variants.append({"variant": v.key, "channel": d.channel, "outcome": d.status, "reason": d.reason,
                         "reason_text": REASONS.get(d.reason or "", d.detail), "detail": d.detail,
                         "due_at": d.due_at, "checks": d.checks, "message": d.payload})
    return {"campaign_id": campaign.id, "user_id": user_id, "group": assign(campaign.id, user_id, campaign.split),
            "event": event,
            "timezone": str(zone), "in_target": in_target, "membership": membership, "variants": variants}
