"""Property: the column-wise guardrails (`decide_many`) decide exactly as the per-recipient `Guardrails.decide`
on randomized audiences: consents, addresses, suppression lists, prior cap counts, time zones with half- and
quarter-hour offsets, due times across Seoul day and night, policies (ad law, quiet hours delay/drop, caps),
template gaps and users twice in one batch. Times are generated, never read from the clock."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from segmint.campaigns.guardrail_columns import decide_many
from segmint.campaigns.guardrails import CapCounter, Guardrails, Recipient, zone_of
from segmint.campaigns.links import LinkMaker
from segmint.campaigns.model import Campaign

SEOUL = ZoneInfo("Asia/Seoul")
ZONES = ["Asia/Seoul", "Asia/Kolkata", "Asia/Kathmandu", "Australia/Adelaide", "America/St_Johns", "UTC",
         "America/New_York", "Pacific/Chatham", "Not/AZone", None]
TRUTHY = [True, False, None, "yes", "no", "1", "0", " TRUE ", "", 0, 1, ["x"]]
BASE = datetime(2026, 3, 2, 0, 0)  # 09:00 in Seoul; offsets below cover two full days in minutes
USERS = [f"u{i}" for i in range(12)]


@st.composite
def campaigns(draw: Any) -> Campaign:
    channels = draw(st.lists(st.sampled_from(["push", "email", "sms", "kakao", "webhook"]), min_size=1, max_size=3,
                             unique=True))
    caps = draw(st.lists(st.fixed_dictionaries({
        "channel": st.sampled_from(["*", "push", "email", "sms"]), "max": st.integers(1, 3),
        "per": st.sampled_from(["day", "week"])}), max_size=2))
    messages: dict[str, Any] = {}
    for ch in channels:
        text = draw(st.sampled_from(["안녕하세요 {{ user.name }}님", "{{ user.nickname }}님 쿠폰", "고정 문구",
                                     "{{ user.nickname | default: '고객' }}님"]))
        msg: dict[str, Any] = {"subject": "세일 {{ user.name }}", "text": text}
        if ch == "email" and draw(st.booleans()):
            msg["to"] = "{{ user.work_email }}"
        if ch == "kakao":
            msg["data"] = {"template_code": "T1"}
        messages[ch] = msg
    data = {
        "id": "prop", "name": "속성", "target": ["all"], "channels": channels,
        "purpose": draw(st.sampled_from(["advertising", "advertising", "informational"])),
        "holdout": draw(st.sampled_from([0.0, 0.2])),
        "sender": {"name": "데모몰", "contact": "02-1", "opt_out": draw(st.sampled_from(["", "080-000-0000"]))},
        "policy": {"korean_ad_law": draw(st.booleans()), "frequency_caps": caps,
                   "informational_needs_consent": draw(st.booleans()),
                   "quiet_hours": {"enabled": draw(st.booleans()),
                                   "action": draw(st.sampled_from(["delay", "delay", "drop"])),
                                   "start": draw(st.sampled_from(["21:00", "22:30", "00:00"])),
                                   "end": draw(st.sampled_from(["08:00", "07:15"]))}},
        "variants": [{"key": "A", "messages": messages}, {"key": "B", "messages": messages}],
    }
    return Campaign.model_validate(data)


@st.composite
def audiences(draw: Any) -> dict[str, Any]:
    users = draw(st.lists(st.sampled_from(USERS), min_size=1, max_size=25))  # repeats: twice in one batch
    traits: dict[str, dict[str, Any]] = {}
    for u in set(users):
        t: dict[str, Any] = {"name": draw(st.sampled_from(["지민", "민준", ""]))}
        for key, values in (("email", [None, "", "a@x.kr"]), ("push_token", [None, "", "tok"]),
                            ("fcm_token", [None, "f-tok"]), ("phone", [None, "010-1"]),
                            ("nickname", [None, "별"]), ("work_email", [None, "", "w@x.kr"]),
                            ("timezone", [None, "Asia/Kolkata"])):
            v = draw(st.sampled_from(values))
            if v is not None:
                t[key] = v
        for key in ("consent_push", "consent_email", "consent_sms", "consent_night"):
            v = draw(st.sampled_from(TRUTHY))
            if v is not None:
                t[key] = v
        traits[u] = t
    zones = {u: zone_of(draw(st.sampled_from(ZONES)), SEOUL) for u in set(users)}
    common = draw(st.booleans())
    minutes = draw(st.lists(st.integers(0, 2 * 24 * 60), min_size=len(users), max_size=len(users)))
    dues = [BASE + timedelta(minutes=minutes[0] if common else m) for m in minutes]
    occs = [f"o{i % draw(st.integers(1, 3))}" for i in range(len(users))]
    suppressed = {(u, ch) for u in set(users)
                  for ch in [draw(st.sampled_from([None, None, "*", "push", "email", "sms", "kakao"]))] if ch}
    prior = draw(st.lists(st.tuples(st.sampled_from(USERS), st.sampled_from(["push", "email", "sms"]),
                                    st.integers(-3 * 24 * 60, 2 * 24 * 60)), max_size=12))
    return {"users": users, "traits": traits, "zones": zones, "dues": dues, "occs": occs, "suppressed": suppressed,
            "prior": prior}


def _rails(c: Campaign, a: dict[str, Any]) -> Guardrails:
    caps = CapCounter()
    for u, ch, m in a["prior"]:
        caps.add(u, ch, BASE + timedelta(minutes=m))
    return Guardrails(c, links=LinkMaker("https://t.example", "secret"), suppressed=set(a["suppressed"]), caps=caps,
                      default_zone=SEOUL, explain=False)


def _view(d: Any) -> tuple[Any, ...]:
    return (d.user_id, d.variant, d.channel, d.status, d.due_at, d.reason, d.detail, d.payload)


def test_column_wise_decisions_equal_per_recipient_decide() -> None:
    seen: set[tuple[str, str | None]] = set()

    @settings(max_examples=400, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
    @given(c=campaigns(), a=audiences())
    def same(c: Campaign, a: dict[str, Any]) -> None:
        recipients = [Recipient(u, a["traits"][u], a["zones"][u], "all") for u in a["users"]]
        one, many = _rails(c, a), _rails(c, a)
        expected = [one.decide(r, o, d) for r, o, d in zip(recipients, a["occs"], a["dues"], strict=True)]
        got = decide_many(many, recipients, a["occs"], a["dues"])
        assert [_view(d) for d in got] == [_view(d) for d in expected]
        assert {u: sorted(v) for u, v in many.caps.sends.items()} == \
            {u: sorted(v) for u, v in one.caps.sends.items()}
        seen.update((d.status, d.reason) for d in got)

    same()
    # the generated cases reach every rule, each way it can end (derandomized: the same cases every run)
    assert seen >= {("queued", None), ("holdout", None), ("queued", "quiet_hours"), ("queued", "ad_law_night"),
                    ("suppressed", "no_address"), ("suppressed", "no_consent"), ("suppressed", "unsubscribed"),
                    ("suppressed", "ad_law_alimtalk"), ("suppressed", "frequency_cap"),
                    ("suppressed", "ad_law_night"), ("suppressed", "quiet_hours"),
                    ("suppressed", "missing_variable")}, seen


def test_seoul_night_and_day_are_both_covered() -> None:
    """The generated due times span two days, so Seoul quiet hours and the night rule are exercised both ways."""
    c = Campaign.model_validate({
        "id": "n", "name": "밤", "target": ["all"], "channels": ["push"], "sender": {"name": "몰", "contact": "02"},
        "variants": [{"key": "A", "messages": {"push": {"subject": "s", "text": "t"}}}]})
    g = Guardrails(c, links=LinkMaker("https://t.example", "s"), suppressed=set(), explain=False)
    r = Recipient("u1", {"push_token": "t", "consent_push": True}, SEOUL)
    night, day = BASE + timedelta(hours=14), BASE + timedelta(hours=3)  # 23:00 and 12:00 in Seoul
    got = decide_many(g, [r, Recipient("u2", r.traits, SEOUL)], "o", [night, day])
    assert (got[0].reason, got[0].due_at) == ("ad_law_night", BASE + timedelta(hours=23))  # 08:00 next morning
    assert (got[1].status, got[1].reason, got[1].due_at) == ("queued", None, day)
