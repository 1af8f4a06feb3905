"""Guardrails, one by one and in order: consent, address, suppression, ad law, frequency caps, quiet hours,
rendering, holdout; with the reason code each records."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from segmint.campaigns.assignment import HOLDOUT, assign
from segmint.campaigns.guardrails import CapCounter, Guardrails, Recipient, next_allowed
from segmint.campaigns.links import LinkMaker, read_token
from segmint.campaigns.model import Campaign, parse_campaign
from segmint.errors import Forbidden, InvalidInput

SEOUL = ZoneInfo("Asia/Seoul")
NOON_KST = datetime(2026, 3, 2, 3, 0)  # 12:00 in Seoul, naive UTC
NIGHT_KST = datetime(2026, 3, 2, 14, 0)  # 23:00 in Seoul


def campaign(**over: Any) -> Campaign:
    data: dict[str, Any] = {
        "id": "c1", "name": "봄 세일", "target": ["all"], "channels": ["push", "email"],
        "sender": {"name": "데모몰", "contact": "02-123-4567", "opt_out": "무료수신거부 080-000-0000"},
        "variants": [{"key": "A", "messages": {
            "push": {"subject": "{{ user.name }}님", "text": "봄 세일 {{ user.name | josa: '을/를' }} 위해"},
            "email": {"subject": "세일", "text": "안녕하세요 {{ user.name }}님", "html": "<p>{{ user.name }}</p>"}}}],
    }
    data.update(over)
    return Campaign.model_validate(data)


def rails(c: Campaign, suppressed: set[tuple[str, str]] | None = None, caps: CapCounter | None = None) -> Guardrails:
    return Guardrails(c, links=LinkMaker("https://t.example", "secret"), suppressed=suppressed or set(), caps=caps)


def user(uid: str = "u1", zone: ZoneInfo = SEOUL, **traits: Any) -> Recipient:
    base = {"name": "지민", "email": "jimin@example.kr", "push_token": "tok-1", "consent_push": True,
            "consent_email": True}
    base.update(traits)
    return Recipient(uid, {k: v for k, v in base.items() if v is not None}, zone, "all")


def test_first_usable_channel_is_chosen_and_reasons_name_the_preferred_channel() -> None:
    g = rails(campaign())
    assert g.decide(user(), "once", NOON_KST).channel == "push"
    d = g.decide(user(consent_push=False), "once", NOON_KST)
    assert (d.status, d.channel) == ("queued", "email")  # fell back to email
    d = g.decide(user(consent_push=False, consent_email=False), "once", NOON_KST)
    assert (d.status, d.reason) == ("suppressed", "no_consent")
    d = g.decide(user(push_token=None, email=None), "once", NOON_KST)
    assert (d.status, d.reason) == ("suppressed", "no_address")
    assert [c["check"] for c in d.checks] == ["channel:push", "channel:email"]


def test_informational_messages_do_not_need_marketing_consent_unless_configured() -> None:
    info = campaign(purpose="informational")
    assert rails(info).decide(user(consent_push=False), "once", NOON_KST).channel == "push"
    strict = campaign(purpose="informational", policy={"informational_needs_consent": True})
    assert rails(strict).decide(user(consent_push=False), "once", NOON_KST).channel == "email"


def test_suppression_list_per_channel_and_everywhere() -> None:
    c = campaign()
    assert rails(c, {("u1", "push")}).decide(user(), "once", NOON_KST).channel == "email"
    d = rails(c, {("u1", "*")}).decide(user(), "once", NOON_KST)
    assert (d.status, d.reason) == ("suppressed", "unsubscribed")


def test_alimtalk_refuses_advertising_but_carries_information() -> None:
    msgs = {"kakao": {"text": "주문하신 상품이 발송되었어요", "data": {"template_code": "SHIP01"}}}
    ad = campaign(channels=["kakao"], variants=[{"key": "A", "messages": msgs}])
    d = rails(ad).decide(user(phone="010-1234-5678", consent_sms=True), "once", NOON_KST)
    assert (d.status, d.reason) == ("suppressed", "ad_law_alimtalk")
    info = campaign(channels=["kakao"], purpose="informational", variants=[{"key": "A", "messages": msgs}])
    d = rails(info).decide(user(phone="010-1234-5678"), "once", NOON_KST)
    assert d.status == "queued" and d.payload["to"] == "010-1234-5678"
    assert d.payload["data"]["template_code"] == "SHIP01" and not d.payload["text"].startswith("(광고)")


def test_advertising_gets_prefix_sender_and_free_opt_out() -> None:
    d = rails(campaign()).decide(user(), "once", NOON_KST)
    p = d.payload
    assert p["subject"] == "(광고) 지민님"
    assert p["text"].startswith("(광고) 봄 세일 지민을 위해")
    assert "데모몰 02-123-4567" in p["text"] and "무료수신거부 080-000-0000" in p["text"]
    email = rails(campaign(channels=["email"])).decide(user(), "once", NOON_KST).payload
    assert email["subject"].startswith("(광고)") and "수신거부" in email["html"] and "/t/o/" in email["html"]
    token = email["unsubscribe_url"].rsplit("/", 1)[1]
    assert read_token("secret", "unsubscribe", token)["u"] == "u1"
    with pytest.raises(Forbidden):
        read_token("secret", "click", token)  # a token of one kind cannot be used as another


def test_ad_law_can_be_switched_off_and_needs_sender_when_on() -> None:
    off = campaign(policy={"korean_ad_law": False}, sender={})
    assert rails(off).decide(user(), "once", NOON_KST).payload["subject"] == "지민님"
    with pytest.raises(InvalidInput, match="sender"):
        parse_campaign({**campaign().model_dump(mode="json"), "sender": {}})


def test_frequency_cap_counts_in_the_users_local_day() -> None:
    caps = CapCounter()
    # 2026-03-02 00:30 in Seoul = 03-01 15:30 UTC: the same local day as noon on 03-02
    caps.add("u1", "push", datetime(2026, 3, 1, 15, 30))
    caps.add("u1", "email", datetime(2026, 3, 1, 16, 0))
    c = campaign(policy={"frequency_caps": [{"channel": "*", "max": 2, "per": "day"}]})
    d = rails(c, caps=caps).decide(user(), "once", NOON_KST)
    assert (d.status, d.reason) == ("suppressed", "frequency_cap")
    # 14:30 UTC on 03-01 is 23:30 on 03-01 in Seoul: the previous local day, not counted
    caps2 = CapCounter()
    caps2.add("u1", "push", datetime(2026, 3, 1, 14, 30))
    caps2.add("u1", "push", datetime(2026, 3, 1, 14, 40))
    assert rails(c, caps=caps2).decide(user(), "once", NOON_KST).status == "queued"
    per_channel = campaign(policy={"frequency_caps": [{"channel": "push", "max": 1, "per": "week"}]})
    d = rails(per_channel, caps=caps).decide(user(), "once", NOON_KST)
    assert (d.status, d.channel) == ("suppressed", "push")  # the cap on push stops it (no silent fallback)


def test_caps_count_what_the_same_run_queued() -> None:
    g = rails(campaign(policy={"frequency_caps": [{"channel": "*", "max": 1, "per": "day"}]}))
    assert g.decide(user(), "once", NOON_KST).status == "queued"
    assert g.decide(user(), "again", NOON_KST).reason == "frequency_cap"


def test_quiet_hours_delay_to_local_morning_or_drop() -> None:
    c = campaign(purpose="informational")
    d = rails(c).decide(user(), "once", NIGHT_KST)
    assert d.status == "queued" and d.reason == "quiet_hours"
    assert d.due_at == datetime(2026, 3, 2, 23, 0)  # 08:00 on 03-03 in Seoul
    la = ZoneInfo("America/Los_Angeles")
    d = rails(c).decide(user(zone=la), "once", NIGHT_KST)  # 06:00 in Los Angeles: quiet too
    assert d.due_at == datetime(2026, 3, 2, 16, 0)  # 08:00 PST
    drop = campaign(purpose="informational", policy={"quiet_hours": {"action": "drop"}})
    assert rails(drop).decide(user(), "once", NIGHT_KST).reason == "quiet_hours"
    assert rails(campaign(purpose="informational", policy={"quiet_hours": {"enabled": False}})).decide(
        user(), "once", NIGHT_KST).due_at == NIGHT_KST


def test_night_advertising_needs_night_consent() -> None:
    c = campaign(policy={"quiet_hours": {"enabled": False}})
    d = rails(c).decide(user(), "once", NIGHT_KST)
    assert (d.status, d.reason, d.due_at) == ("queued", "ad_law_night", datetime(2026, 3, 2, 23, 0))
    d = rails(c).decide(user(consent_night=True), "once", NIGHT_KST)
    assert (d.reason, d.due_at) == (None, NIGHT_KST)


def test_missing_variable_suppresses_and_default_rescues() -> None:
    c = campaign(variants=[{"key": "A", "messages": {
        "push": {"subject": "hi", "text": "{{ user.nickname }}님"},
        "email": {"subject": "{{ user.nickname | default: '고객' }}님", "text": "x"}}}])
    d = rails(c).decide(user(), "once", NOON_KST)
    assert (d.status, d.reason) == ("suppressed", "missing_variable") and "user.nickname" in d.detail
    d = rails(c).decide(user(consent_push=False), "once", NOON_KST)
    assert d.status == "queued" and d.payload["subject"] == "(광고) 고객님"


def test_holdout_passes_the_same_checks_and_is_not_sent() -> None:
    c = campaign(holdout=0.5)
    users = [f"u{i}" for i in range(200)]
    control = [u for u in users if assign("c1", u, c.split) == HOLDOUT]
    assert 60 < len(control) < 140
    g = rails(c)
    d = g.decide(user(control[0]), "once", NOON_KST)
    assert (d.status, d.variant, d.payload) == ("holdout", HOLDOUT, None)
    d = g.decide(user(control[1], consent_push=False, consent_email=False), "once", NOON_KST)
    assert (d.status, d.variant, d.reason) == ("suppressed", HOLDOUT, "no_consent")


def test_next_allowed_window_edges() -> None:
    start, end = datetime(2026, 1, 1, 21).time(), datetime(2026, 1, 1, 8).time()
    assert next_allowed(datetime(2026, 1, 1, 11, 59), SEOUL, start, end) is None  # 20:59 KST
    assert next_allowed(datetime(2026, 1, 1, 12, 0), SEOUL, start, end) == datetime(2026, 1, 1, 23, 0)  # 21:00
    assert next_allowed(datetime(2026, 1, 1, 22, 59), SEOUL, start, end) == datetime(2026, 1, 1, 23, 0)  # 07:59
    assert next_allowed(datetime(2026, 1, 1, 23, 0), SEOUL, start, end) is None  # 08:00


def test_campaign_model_errors_name_the_field() -> None:
    base = campaign().model_dump(mode="json")
    with pytest.raises(InvalidInput, match=r"schedule\.recurring\.cron"):
        parse_campaign({**base, "schedule": {"type": "recurring", "cron": "every day"}})
    with pytest.raises(InvalidInput, match="no message for channel"):
        parse_campaign({**base, "channels": ["push", "sms"]})
    with pytest.raises(InvalidInput, match=r"Extra inputs"):
        parse_campaign({**base, "colour": "red"})
    with pytest.raises(InvalidInput, match="needs `segment`"):
        parse_campaign({**base, "schedule": {"type": "triggered", "event": "segment_entered"}})
    c = parse_campaign({**base, "schedule": {"type": "triggered", "event": "cart_added", "delay": "1d",
                                             "delay_max": "3d"}})
    assert c.schedule.delay.days == 1 and c.schedule.delay_max.days == 3


def test_rate_limiter_spaces_sends_after_the_burst() -> None:
    from segmint.campaigns.deliver import RateLimiter

    clock = {"t": 100.0}
    waits: list[float] = []

    def sleep(s: float) -> None:
        waits.append(s)
        clock["t"] += s

    limiter = RateLimiter({"sms": 5}, clock=lambda: clock["t"], sleep=sleep)
    for _ in range(15):
        limiter.acquire("sms")
    assert abs(sum(waits) - 2.0) < 1e-6  # 5 at once, then 10 more at 5 per second
    limiter.limit("sms", 10)  # a higher rate does not loosen the provider's limit
    assert limiter.rates["sms"] == 5
    limiter.acquire("email")  # no limit: never waits
    assert abs(sum(waits) - 2.0) < 1e-6
