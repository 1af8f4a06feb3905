"""Guardrails for a whole audience at once, column by column: the same rules, order and reason codes as
`Guardrails.decide` (guardrails.py), without a Python call chain per recipient.

Each rule is a column (numpy / pyarrow) over the audience: addresses and consents per channel, the
suppression list as one hash lookup per channel (`pyarrow.compute.is_in`), frequency caps (a count is read
only for users who already have messages counted; everyone else has none), and the ad-law night window and
quiet hours computed once per (time zone, due time) and mapped back to the recipients. Only what is
per-recipient by nature stays per recipient: variant assignment (a hash of user and campaign), Liquid
rendering of those still eligible, and the cap counter update of the queued. A user who appears twice in
one batch (two trigger events) is decided by `decide` in input order, so the second sees the first's cap
count, exactly as before.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from segmint.campaigns.assignment import HOLDOUT, assign
from segmint.campaigns.guardrails import ADDRESS_TRAITS, REASONS, Decision, Guardrails, Recipient, _truthy

_CODES = (None, "no_address", "no_consent", "unsubscribed", "ad_law_alimtalk")


def _truth_column(values: list[Any]) -> np.ndarray:
    """`_truthy` of each value, evaluated once per distinct value."""
    seen: dict[Any, bool] = {}
    out = np.empty(len(values), dtype=bool)
    for i, v in enumerate(values):
        try:
            got = seen.get(v)
            if got is None:
                got = seen[v] = _truthy(v)
        except TypeError:  # unhashable (a list or dict trait)
            got = _truthy(v)
        out[i] = got
    return out


def _in_set(user_ids: pa.Array, members: set[str]) -> np.ndarray:
    """Whether each user id is in the set (one hash lookup per user, in Arrow)."""
    if not members:
        return np.zeros(len(user_ids), dtype=bool)
    return pc.is_in(user_ids, value_set=pa.array(sorted(members), pa.string())).to_numpy(zero_copy_only=False)


def decide_many(g: Guardrails, recipients: Sequence[Recipient], occurrence: str | Sequence[str],
                dues: Sequence[datetime]) -> list[Decision]:
    """Decisions for recipients (each with its due time, and occurrence when a list is given), equal to
    `[g.decide(r, occurrence, due) ...]` in input order."""
    n = len(recipients)
    if n == 0:
        return []
    occs = [occurrence] * n if isinstance(occurrence, str) else list(occurrence)
    if g.explain:
        return [g.decide(r, o, d) for r, o, d in zip(recipients, occs, dues, strict=True)]
    out: list[Decision | None] = [None] * n
    uids = [r.user_id for r in recipients]
    counts: dict[str, int] = {}
    for u in uids:
        counts[u] = counts.get(u, 0) + 1
    # -- dedupe: a user twice in the batch is decided in order by `decide` (the cap count runs on)
    single = np.fromiter((counts[u] == 1 for u in uids), dtype=bool, count=n)
    if not single.all():
        for i in np.flatnonzero(~single):
            out[i] = g.decide(recipients[i], occs[i], dues[i])
    idx = np.flatnonzero(single)
    if len(idx) == 0:
        return out  # type: ignore[return-value]
    rs = [recipients[i] for i in idx]
    ds = [dues[i] for i in idx]
    m = len(rs)
    c, pol = g.c, g.c.policy
    ids = pa.array([r.user_id for r in rs], pa.string())
    groups = [assign(c.id, r.user_id, g.split) for r in rs]
    first = c.variants[0].key
    variants = [v if v != HOLDOUT else first for v in groups]
    traits = [r.traits for r in rs]
    # -- 1. channel choice: one reason column per channel, in order of preference
    chosen = np.full(m, -1, dtype=np.int64)
    first_code = np.zeros(m, dtype=np.int64)
    addresses: list[list[str | None]] = []
    suppressed_all = {u for u, ch in g.suppressed if ch == "*"}
    for k, ch in enumerate(c.channels):
        names = ADDRESS_TRAITS.get(ch)
        templated = {v for v in set(variants) if (v, ch) in g.to_templates}
        addr: list[str | None]
        if names is None:
            addr = [r.user_id for r in rs]
        else:
            addr = [None] * m
            for name in reversed(names):  # the first trait with a value wins
                for i, t in enumerate(traits):
                    value = t.get(name)
                    if value is not None and value != "":
                        addr[i] = str(value)
        if templated:
            for i, v in enumerate(variants):
                if v in templated:
                    addr[i] = g._address(rs[i], v, ch)
        addresses.append(addr)
        code = np.zeros(m, dtype=np.int64)
        no_addr = np.fromiter((a is None for a in addr), dtype=bool, count=m)
        trait = pol.consent_traits.get(ch)
        if g.consent_needed and trait:
            no_consent = ~_truth_column([t.get(trait) for t in traits])
        else:
            no_consent = np.zeros(m, dtype=bool)
        unsub = _in_set(ids, suppressed_all | {u for u, x in g.suppressed if x == ch})
        kakao_ad = ch == "kakao" and c.advertising and pol.korean_ad_law
        code = np.where(no_addr, 1, np.where(no_consent, 2, np.where(unsub, 3, 4 if kakao_ad else 0)))
        fresh = (chosen < 0) & (code == 0)
        chosen[fresh] = k
        first_code = np.where((chosen < 0) & (first_code == 0), code, first_code)
    channel_of = [c.channels[k] if k >= 0 else c.channels[0] for k in chosen.tolist()]
    alive = chosen >= 0
    for i in np.flatnonzero(~alive):
        reason = _CODES[int(first_code[i])] or "no_address"
        out[idx[i]] = Decision(rs[i].user_id, groups[i], channel_of[i], "suppressed", ds[i], reason, REASONS[reason])
    # -- 2. frequency caps: only users with messages already counted can reach one (max >= 1)
    for i in np.flatnonzero(alive):
        uid = rs[i].user_id
        if uid not in g.caps.sends:
            continue
        ch = channel_of[i]
        for cap in pol.frequency_caps:
            if cap.channel not in ("*", ch):
                continue
            start, end = g._period(ds[i], rs[i].zone, cap.per)
            cnt = g.caps.count(uid, cap.channel, start, end)
            if cnt >= cap.max:
                out[idx[i]] = Decision(uid, groups[i], ch, "suppressed", ds[i], "frequency_cap",
                                       f"{cnt} {cap.channel} messages this {cap.per} (max {cap.max})")
                alive[i] = False
                break
    # -- 3 + 4. ad-law night rule, then quiet hours: each window computed once per (zone, due)
    live = np.flatnonzero(alive)
    key_of: dict[tuple[Any, datetime], int] = {}
    keys: list[tuple[Any, datetime]] = []
    kidx = np.empty(len(live), dtype=np.int64)
    for j, i in enumerate(live):
        key = (rs[i].zone, ds[i])
        got = key_of.get(key)
        if got is None:
            got = key_of[key] = len(keys)
            keys.append(key)
        kidx[j] = got
    drop = pol.quiet_hours.action == "drop"
    night_rule = c.advertising and pol.korean_ad_law
    night_later = [g._next_allowed(due, zone, pol.night_start, pol.night_end) if night_rule else None
                   for zone, due in keys]

    def quiet(zone: Any, due: datetime) -> datetime | None:
        return g._next_allowed(due, zone, pol.quiet_hours.start, pol.quiet_hours.end) \
            if pol.quiet_hours.enabled else None

    quiet_plain = [quiet(zone, due) for zone, due in keys]
    quiet_after_night = [quiet(zone, later) if later is not None else None
                         for (zone, _due), later in zip(keys, night_later, strict=True)]
    needs_night = np.zeros(len(live), dtype=bool)
    if night_rule:
        needs_night = ~_truth_column([traits[i].get(pol.night_consent_trait) for i in live])
    to_render: list[tuple[int, datetime, str | None]] = []
    for j, i in enumerate(live):
        k = int(kidx[j])
        due, delay = ds[i], None
        if needs_night[j] and night_later[k] is not None:
            if drop:
                out[idx[i]] = Decision(rs[i].user_id, groups[i], channel_of[i], "suppressed", due, "ad_law_night",
                                       REASONS["ad_law_night"])
                continue
            due, delay = night_later[k], "ad_law_night"  # type: ignore[assignment]
            later = quiet_after_night[k]
        else:
            later = quiet_plain[k]
        if later is not None:
            if drop:
                out[idx[i]] = Decision(rs[i].user_id, groups[i], channel_of[i], "suppressed", due, "quiet_hours",
                                       REASONS["quiet_hours"])
                continue
            due, delay = later, "quiet_hours"
        to_render.append((int(i), due, delay))
    # -- 5 + 6. rendering (per recipient by nature), cap counter, holdout
    for i, due, delay in to_render:
        r, ch = rs[i], channel_of[i]
        address = addresses[int(chosen[i])][i]
        payload, problem = g.render(r, variants[i], ch, occs[idx[i]], address)  # type: ignore[arg-type]
        if problem is not None:
            code = "missing_variable" if problem.startswith("missing variable") else "template_error"
            out[idx[i]] = Decision(r.user_id, groups[i], ch, "suppressed", due, code, problem)
            continue
        g.caps.add(r.user_id, ch, due)
        if payload is not None:
            payload["zone"] = r.zone.key
        if groups[i] == HOLDOUT:
            out[idx[i]] = Decision(r.user_id, groups[i], ch, "holdout", due, None, None, None)
        else:
            out[idx[i]] = Decision(r.user_id, groups[i], ch, "queued", due, delay,
                                   REASONS[delay] if delay else None, payload)
    return out  # type: ignore[return-value]
