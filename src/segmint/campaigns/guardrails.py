"""Guardrails, applied per recipient in a fixed order, each outcome recorded with a reason code.

Order (the first that stops a message decides its reason):

1. channel choice: for each campaign channel in order of preference, the channel is usable when the user
   has an address (`no_address`), has consented for this purpose (`no_consent`: advertising always needs the
   channel's consent trait, informational only with `policy.informational_needs_consent`), is not on the
   suppression list (`unsubscribed`), and the ad law allows it (`ad_law_alimtalk`: AlimTalk refuses
   advertising). The first usable channel is taken; if none is, the most preferred channel's reason is kept.
2. frequency caps (`frequency_cap`): global ("*") and per channel, N per calendar day/week in the user's zone,
   counted from the ledger (sending, sent, delivered, and queued rows already planned).
3. Korean ad law night rule (`ad_law_night`): advertising between 21:00 and 08:00 local needs the night
   consent trait; otherwise delayed to 08:00 (or dropped when quiet hours say drop).
4. quiet hours (`quiet_hours`): local start-end (default 21:00-08:00), delay to the end or drop.
5. rendering (`missing_variable`, `template_error`): strict Liquid; the ad law adds "(광고)", sender and an
   opt-out line to advertising.
6. assignment: the control group (`holdout`) passes the same checks, then is recorded and not sent, so
   variants and control are compared on the same eligible population.

Dedupe is the ledger's unique (campaign_id, occurrence, user_id); the send-rate limit is in deliver.py.
"""

from __future__ import annotations

import html as html_lib
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from segmint.campaigns.assignment import HOLDOUT, assign
from segmint.campaigns.links import LinkMaker
from segmint.campaigns.model import Campaign, Message
from segmint.campaigns.templates import CompiledTemplate, build_variables, compile_template, render

REASONS = {
    "no_address": "no address for the channel (email, phone, push token)",
    "no_consent": "no consent for this channel and purpose",
    "unsubscribed": "on the suppression list (unsubscribed, bounced or added by hand)",
    "ad_law_alimtalk": "AlimTalk is informational only; advertising is refused (정보통신망법 제50조)",
    "frequency_cap": "frequency cap reached",
    "ad_law_night": "advertising at night (21:00-08:00) without night consent",
    "quiet_hours": "inside the user's quiet hours",
    "missing_variable": "a template variable is missing and has no default",
    "template_error": "the template failed to render or exceeded a limit",
    "audience_cap": "beyond the campaign's audience cap",
    "recheck_failed": "no longer in the target at send time",
    "cancelled": "did a cancel_on event after the trigger",
    "paused": "campaign paused",
    "provider_refused": "the channel refused the message",
    "provider_failed": "the provider failed it",
    "uncertain": "worker died between the provider call and the record (settled by policy)",
}
ADDRESS_TRAITS = {"email": ("email",), "sms": ("phone",), "kakao": ("phone",), "kakao_brand": ("phone",),
                  "push": ("push_token", "fcm_token")}
COUNTED = ("queued", "sending", "sent", "delivered")


def zone_of(name: Any, default: ZoneInfo) -> ZoneInfo:
    """The ZoneInfo of a name, or the default when it is missing or unknown."""
    if not name:
        return default
    try:
        return ZoneInfo(str(name))
    except (ZoneInfoNotFoundError, ValueError):
        return default


def _in_window(t: time, start: time, end: time) -> bool:
    return (start <= t < end) if start < end else (t >= start or t < end)


def next_allowed(utc: datetime, zone: ZoneInfo, start: time, end: time) -> datetime | None:
    """None when `utc` (naive UTC) is outside the local window start-end; else the naive UTC time it ends."""
    local = utc.replace(tzinfo=UTC).astimezone(zone)
    if not _in_window(local.time(), start, end):
        return None
    day = local.date() if local.time() < end else local.date() + timedelta(days=1)
    ends = datetime.combine(day, end, tzinfo=zone)
    return ends.astimezone(UTC).replace(tzinfo=None)


@dataclass
class Recipient:
    """One user about to be decided: traits (profile + computed), time zone, matched segment, trigger event."""

    user_id: str
    traits: dict[str, Any]
    zone: ZoneInfo
    segment: str | None = None
    event: dict[str, Any] | None = None  # {"event", "timestamp", "properties"}


@dataclass
class Decision:
    """The outcome for one recipient: status, reason code, channel, variant, due time, rendered payload."""

    user_id: str
    variant: str
    channel: str
    status: str  # queued | suppressed | holdout
    due_at: datetime
    reason: str | None = None
    detail: str | None = None
    payload: dict[str, Any] | None = None
    checks: list[dict[str, Any]] = field(default_factory=list)


class CapCounter:
    """Messages per user per channel with their send times, from the ledger plus what this run adds."""

    def __init__(self) -> None:
        self.sends: dict[str, list[tuple[str, datetime]]] = defaultdict(list)

    def add(self, user_id: str, channel: str, at: datetime) -> None:
        """Count one more message."""
        self.sends[user_id].append((channel, at))

    def count(self, user_id: str, channel: str, start: datetime, end: datetime) -> int:
        """Messages on a channel ("*" = any) between two naive UTC times."""
        return sum(1 for ch, at in self.sends.get(user_id, ()) if (channel == "*" or ch == channel)
                   and start <= at < end)


def _period(at: datetime, zone: ZoneInfo, per: str) -> tuple[datetime, datetime]:
    """The calendar day or week (Monday first) containing `at`, in the zone, as naive UTC bounds."""
    local = at.replace(tzinfo=UTC).astimezone(zone)
    first: date = local.date() - timedelta(days=local.weekday() if per == "week" else 0)
    start = datetime.combine(first, time(0), tzinfo=zone)
    end = datetime.combine(first + timedelta(days=7 if per == "week" else 1), time(0), tzinfo=zone)
    return start.astimezone(UTC).replace(tzinfo=None), end.astimezone(UTC).replace(tzinfo=None)


def _truthy(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("true", "1", "yes", "y", "on")
    return bool(value)


class Guardrails:
    """Decides recipients of one campaign: compiled templates, links, suppression set, cap counter."""

    def __init__(self, campaign: Campaign, *, links: LinkMaker, suppressed: set[tuple[str, str]],
                 caps: CapCounter | None = None, default_zone: ZoneInfo | None = None, explain: bool = True) -> None:
        self.c = campaign
        self.explain = explain  # record every check in Decision.checks (previews); planning leaves it off
        self._windows: dict[tuple[Any, ...], Any] = {}  # (due, zone, ...) -> period bounds / window end
        self.links = links
        self.suppressed = suppressed
        self.caps = caps or CapCounter()
        self.default_zone = default_zone or ZoneInfo("Asia/Seoul")
        self.templates: dict[tuple[str, str], dict[str, CompiledTemplate]] = {}
        self.to_templates: dict[tuple[str, str], CompiledTemplate] = {}
        self.split = campaign.split
        self.messages = {v.key: v.messages for v in campaign.variants}
        self.constant: dict[tuple[str, str, str], str] = {}
        self.data_templates: dict[tuple[str, str], dict[str, CompiledTemplate]] = {}
        self.reads_unsubscribe: set[tuple[str, str]] = set()
        for v in campaign.variants:
            for ch, msg in v.messages.items():
                where = f"variants.{v.key}.messages.{ch}"
                parts = {"subject": compile_template(msg.subject, name=f"{where}.subject"),
                         "text": compile_template(msg.text, name=f"{where}.text")}
                if msg.html is not None:
                    parts["html"] = compile_template(msg.html, name=f"{where}.html", html=True)
                self.templates[(v.key, ch)] = parts
                for part, t in parts.items():  # a template without variables renders the same for everyone
                    if not t.variables():
                        out = render({part: t}, {})
                        if out.ok:
                            self.constant[(v.key, ch, part)] = out.parts[part]
                    if any(x.split(".")[0] in ("unsubscribe_url", "links") for x in t.variables()):
                        self.reads_unsubscribe.add((v.key, ch))
                if msg.to:
                    self.to_templates[(v.key, ch)] = compile_template(msg.to, name=f"{where}.to")
                data_tpl: dict[str, CompiledTemplate] = {}
                for key, value in msg.data.items():  # string values (and one level below) are templates too
                    if isinstance(value, str) and "{" in value:
                        data_tpl[key] = compile_template(value, name=f"{where}.data.{key}")
                    elif isinstance(value, dict):
                        for sub, inner in value.items():
                            if isinstance(inner, str) and "{" in inner:
                                data_tpl[f"{key}\x1f{sub}"] = compile_template(inner, name=f"{where}.data.{key}.{sub}")
                if data_tpl:
                    self.data_templates[(v.key, ch)] = data_tpl
        self.dynamic = {key: {k: t for k, t in parts.items() if (key[0], key[1], k) not in self.constant}
                        for key, parts in self.templates.items()}
        self.constant_parts = {key: {k: self.constant[(key[0], key[1], k)] for k in parts
                                     if (key[0], key[1], k) in self.constant}
                               for key, parts in self.templates.items()}
        ad_law = campaign.advertising and campaign.policy.korean_ad_law
        self.needs_link = {key: key[1] == "email" or key in self.reads_unsubscribe or (
            ad_law and (not campaign.sender.opt_out or key[1] in ("in_app", "outbox"))) for key in self.templates}
        self.consent_needed = campaign.advertising or campaign.policy.informational_needs_consent

    def _period(self, due: datetime, zone: ZoneInfo, per: str) -> tuple[datetime, datetime]:
        key = ("p", due, zone, per)
        got = self._windows.get(key)
        if got is None:
            if len(self._windows) > 100_000:
                self._windows.clear()
            got = self._windows[key] = _period(due, zone, per)
        return got

    def _next_allowed(self, due: datetime, zone: ZoneInfo, start: time, end: time) -> datetime | None:
        key = ("w", due, zone, start, end)
        if key in self._windows:
            return self._windows[key]  # type: ignore[no-any-return]
        if len(self._windows) > 100_000:
            self._windows.clear()
        got = self._windows[key] = next_allowed(due, zone, start, end)
        return got

    # -- step 1 ------------------------------------------------------------------------------------
    def _address(self, r: Recipient, variant: str, channel: str) -> str | None:
        if (variant, channel) in self.to_templates:
            out = render({"to": self.to_templates[(variant, channel)]}, self._variables(r, None, {}))
            return out.parts.get("to", "").strip() or None if out.ok else None
        names = ADDRESS_TRAITS.get(channel)
        if names is None:
            return r.user_id  # webhook, in_app, outbox address the user id
        for n in names:
            value = r.traits.get(n)
            if value not in (None, ""):
                return str(value)
        return None

    def _channel_check(self, r: Recipient, variant: str, channel: str) -> tuple[str | None, str | None]:
        """(address, None) when usable, else (None, reason code)."""
        address = self._address(r, variant, channel)
        if address is None:
            return None, "no_address"
        consent_trait = self.c.policy.consent_traits.get(channel)
        if self.consent_needed and consent_trait and not _truthy(r.traits.get(consent_trait)):
            return None, "no_consent"
        if (r.user_id, channel) in self.suppressed or (r.user_id, "*") in self.suppressed:
            return None, "unsubscribed"
        if channel == "kakao" and self.c.advertising and self.c.policy.korean_ad_law:
            return None, "ad_law_alimtalk"
        return address, None

    # -- the whole decision -------------------------------------------------------------------------
    def decide(self, r: Recipient, occurrence: str, due: datetime, *, variant: str | None = None) -> Decision:
        """Run every guardrail for one recipient; the result says queued, suppressed (why) or holdout.

        `variant` forces a variant (previews); otherwise the user's assigned group is used."""
        group = variant or assign(self.c.id, r.user_id, self.split)
        variant = group if group != HOLDOUT else self.c.variants[0].key
        checks: list[dict[str, Any]] = []
        explain = self.explain
        channel, address, first_reason = self.c.channels[0], None, None
        for ch in self.c.channels:
            addr, reason = self._channel_check(r, variant, ch)
            if explain:
                checks.append({"check": f"channel:{ch}", "ok": reason is None, "reason": reason})
            if reason is None:
                channel, address = ch, addr
                break
            first_reason = first_reason or reason
        if address is None:
            return Decision(r.user_id, group, channel, "suppressed", due, first_reason, REASONS[first_reason or
                            "no_address"], checks=checks)
        for cap in self.c.policy.frequency_caps:
            if cap.channel not in ("*", channel):
                continue
            start, end = self._period(due, r.zone, cap.per)
            n = self.caps.count(r.user_id, cap.channel, start, end)
            ok = n < cap.max
            if explain:
                checks.append({"check": f"frequency_cap:{cap.channel}:{cap.max}/{cap.per}", "ok": ok, "count": n})
            if not ok:
                return Decision(r.user_id, group, channel, "suppressed", due, "frequency_cap",
                                f"{n} {cap.channel} messages this {cap.per} (max {cap.max})", checks=checks)
        delay_reason = None
        pol = self.c.policy
        if self.c.advertising and pol.korean_ad_law and not _truthy(r.traits.get(pol.night_consent_trait)):
            later = self._next_allowed(due, r.zone, pol.night_start, pol.night_end)
            if explain:
                checks.append({"check": "ad_law_night", "ok": later is None})
            if later is not None:
                if pol.quiet_hours.action == "drop":
                    return Decision(r.user_id, group, channel, "suppressed", due, "ad_law_night",
                                    REASONS["ad_law_night"], checks=checks)
                due, delay_reason = later, "ad_law_night"
        if pol.quiet_hours.enabled:
            later = self._next_allowed(due, r.zone, pol.quiet_hours.start, pol.quiet_hours.end)
            if explain:
                checks.append({"check": "quiet_hours", "ok": later is None})
            if later is not None:
                if pol.quiet_hours.action == "drop":
                    return Decision(r.user_id, group, channel, "suppressed", due, "quiet_hours",
                                    REASONS["quiet_hours"], checks=checks)
                due, delay_reason = later, "quiet_hours"
        payload, problem = self.render(r, variant, channel, occurrence, address)
        if explain:
            checks.append({"check": "render", "ok": problem is None, "reason": problem})
        if problem is not None:
            code = "missing_variable" if problem.startswith("missing variable") else "template_error"
            return Decision(r.user_id, group, channel, "suppressed", due, code, problem, checks=checks)
        self.caps.add(r.user_id, channel, due)
        if payload is not None:
            payload["zone"] = r.zone.key  # the worker re-checks frequency caps in the user's zone at send time
        if group == HOLDOUT:
            return Decision(r.user_id, group, channel, "holdout", due, None, None, None, checks)
        return Decision(r.user_id, group, channel, "queued", due, delay_reason,
                        REASONS[delay_reason] if delay_reason else None, payload, checks)

    # -- rendering ---------------------------------------------------------------------------------
    def _variables(self, r: Recipient, unsubscribe: str | None, links: dict[str, str]) -> dict[str, Any]:
        ev = r.event or {}
        return build_variables(
            user_id=r.user_id, traits=r.traits, computed=r.traits.get("computed") if isinstance(
                r.traits.get("computed"), dict) else None,
            event=ev.get("properties") if r.event is not None else None, event_name=ev.get("event"),
            event_timestamp=ev.get("timestamp"), campaign={"id": self.c.id, "name": self.c.name},
            unsubscribe_url=unsubscribe, links=links)

    def render(self, r: Recipient, variant: str, channel: str, occurrence: str,
               address: str) -> tuple[dict[str, Any] | None, str | None]:
        """The payload (to, subject, text, html, data, advertising, unsubscribe_url) or the reason it failed."""
        message_id = f"{self.c.id}:{occurrence}:{r.user_id}"
        ref = {"m": message_id, "u": r.user_id, "c": self.c.id, "v": variant, "ch": channel}
        key = (variant, channel)
        ad_law = self.c.advertising and self.c.policy.korean_ad_law
        unsubscribe = self.links.unsubscribe(ref) if self.needs_link[key] else None
        msg: Message = self.messages[variant][channel]  # type: ignore[index]
        links = {name: self.links.click(ref, url) for name, url in msg.links.items()} if msg.links else {}
        dynamic = self.dynamic[key]
        variables = self._variables(r, unsubscribe, links)
        out = render(dynamic, variables) if dynamic else None
        if out is not None and not out.ok:
            return None, out.suppressed
        data = dict(msg.data) if msg.data else {}
        if (variant, channel) in self.data_templates:
            rendered = render(self.data_templates[(variant, channel)], variables)
            if not rendered.ok:
                return None, rendered.suppressed
            for name, value in rendered.parts.items():
                if "\x1f" in name:
                    top, sub = name.split("\x1f", 1)
                    data[top] = {**data[top], sub: value}
                else:
                    data[name] = value
        parts = {**self.constant_parts[key], **(out.parts if out is not None else {})}
        subject, text, body_html = parts.get("subject", ""), parts.get("text", ""), parts.get("html")
        if ad_law:
            subject, text, body_html = self._ad_law(channel, subject, text, body_html, unsubscribe)
        if body_html is not None and channel == "email":
            pixel = f'<img src="{html_lib.escape(self.links.open_pixel(ref))}" width="1" height="1" alt="">'
            body_html = body_html.replace("</body>", pixel + "</body>") if "</body>" in body_html else \
                body_html + pixel
        return {"to": address, "subject": subject, "text": text, "html": body_html, "data": data,
                "advertising": self.c.advertising, "unsubscribe_url": unsubscribe}, None

    def _ad_law(self, channel: str, subject: str, text: str, body_html: str | None,
                unsubscribe: str | None) -> tuple[str, str, str | None]:
        """(광고) at the start, sender name and contact, and a free opt-out line (정보통신망법 제50조)."""
        prefix = self.c.policy.ad_prefix
        s = self.c.sender
        opt_out = s.opt_out or f"무료 수신거부: {unsubscribe}"
        footer = f"{s.name} {s.contact}\n{opt_out}"
        if channel in ("email", "push", "in_app", "webhook", "outbox") and not subject.startswith(prefix):
            subject = f"{prefix} {subject}".rstrip()
        if channel in ("sms", "push", "in_app", "webhook", "outbox", "kakao", "kakao_brand") and \
                not text.startswith(prefix):
            text = f"{prefix} {text}"
        text = f"{text}\n\n{footer}"
        if body_html is not None:
            esc = html_lib.escape
            link = f' <a href="{esc(unsubscribe)}">수신거부</a>' if unsubscribe else ""
            block = (f'<p style="font-size:12px;color:#666">{esc(s.name)} {esc(s.contact)}<br>'
                     f'{esc(s.opt_out) if s.opt_out else ""}{link}</p>')
            body_html = body_html.replace("</body>", block + "</body>") if "</body>" in body_html else \
                body_html + block
        return subject, text, body_html
