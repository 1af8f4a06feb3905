"""The reference evaluator: every seed-catalog segment on small hand-made histories, and the edge rules
(window edges, equal timestamps, nulls, typed comparisons, unicode, young profiles, calendar zones)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from segmint.errors import NotFound
from segmint.segments import model as m
from segmint.segments.dsl import parse
from segmint.segments.errors import SegmentSyntaxError
from segmint.segments.reference import (
    Profile,
    SegmentCycleError,
    evaluate,
    evaluate_user,
    explain,
    load_user,
    members,
)
from segmint.segments.seeds import SEEDS, SEEDS_BY_ID
from segmint.segments.validate import Catalog

AS_OF = datetime(2026, 3, 31, 12, 0, 0)  # 21:00 in Seoul
_ids = iter(range(10**9))


def ev(event: str, ago: float | timedelta, **props: Any) -> dict[str, Any]:
    """An event `ago` days (or a timedelta) before AS_OF."""
    delta = ago if isinstance(ago, timedelta) else timedelta(days=ago)
    return {"event": event, "ts": AS_OF - delta, "properties": props, "message_id": f"m{next(_ids):06d}"}


Users = dict[str, tuple[list[dict[str, Any]], Profile | None]]


def who(text: str, users: Users, **kw: Any) -> set[str]:
    """Members among the users of the segment text, as of AS_OF."""
    return members(parse(text), users, AS_OF, **kw)


def seed(seed_id: str, users: Users) -> set[str]:
    return members(SEEDS_BY_ID[seed_id].segment().definition, users, AS_OF)


def test_every_seed_parses_and_is_documented() -> None:
    doc = Path("docs/segment-language.md").read_text(encoding="utf-8")
    for s in SEEDS:
        assert s.segment().name == s.name
        assert s.id in doc, s.id
        first_line = s.text.splitlines()[0]
        assert first_line in doc, (s.id, first_line)


# ---------------------------------------------------------------- A1


A1_USERS: Users = {
    "u1": (
        [ev("app_opened", 5), ev("product_viewed", 3), ev("product_viewed", 10), ev("cart_added", 2)],
        None,
    ),
    "u2": (
        [
            ev("app_opened", 5),
            ev("product_viewed", 3),
            ev("product_viewed", 10),
            ev("cart_added", 2),
            ev("coupon_downloaded", 60, coupon_id="SPRING20"),
        ],
        None,
    ),
    "u3": (
        [ev("app_opened", 5), ev("product_viewed", 3), ev("product_viewed", 31), ev("cart_added", 2)],
        None,
    ),
    "u4": ([ev("app_opened", 5), ev("product_viewed", 3), ev("product_viewed", 4)], None),
    # visit exactly 30 days before as_of: outside "last 1 month" (the older edge is exclusive)
    "u5": (
        [ev("app_opened", 30), ev("product_viewed", 3), ev("product_viewed", 4), ev("cart_added", 1)],
        None,
    ),
    "u6": (
        [
            ev("app_opened", timedelta(days=30) - timedelta(seconds=1)),
            ev("product_viewed", 3),
            ev("product_viewed", 4),
            ev("cart_added", 1),
        ],
        None,
    ),
    # the cart add is after as_of: ignored
    "u7": (
        [
            ev("app_opened", 1),
            ev("product_viewed", 3),
            ev("product_viewed", 4),
            ev("cart_added", timedelta(hours=-1)),
        ],
        None,
    ),
    # the coupon download is after as_of: ignored, so still "has not downloaded"
    "u8": (
        [
            ev("app_opened", 1),
            ev("product_viewed", 3),
            ev("product_viewed", 4),
            ev("cart_added", 0),
            ev("coupon_downloaded", timedelta(seconds=-1)),
        ],
        None,
    ),
    "u9": ([], None),
}


def test_a1_basic() -> None:
    assert seed("A1-basic", A1_USERS) == {"u1", "u3", "u4", "u5", "u6", "u7", "u8", "u9"}


def test_a1_advanced() -> None:
    assert seed("A1-advanced", A1_USERS) == {"u1", "u6", "u8"}


# ---------------------------------------------------------------- A2


def _a2_base(cart_ago: float = 5, product: str = "P1", category: str = "뷰티") -> list[dict[str, Any]]:
    return [
        ev("cart_added", cart_ago, product_id=product, category=category, price=32000),
        ev("product_viewed", 8, product_id="P7", category=category),
        ev("product_viewed", 1, product_id="P8", category=category),
    ]


A2_USERS: Users = {
    "c1": (_a2_base(), None),
    "c2": ([*_a2_base(), ev("product_purchased", 4, product_id="P1", category="뷰티")], None),
    "c3": ([*_a2_base(), ev("review_viewed", 20, product_id="P1", category="뷰티")], None),
    "c4": (_a2_base(cart_ago=2), None),  # added too recently
    "c5": (_a2_base(cart_ago=3), None),  # exactly 3 days ago: "at least 3 days ago" includes the edge
    # two cart items: P1 was bought after, P2 (패션) qualifies on its own
    "c6": (
        [
            *_a2_base(),
            ev("product_purchased", 4, product_id="P1", category="뷰티"),
            ev("cart_added", 4, product_id="P2", category="패션"),
            ev("product_viewed", 6, product_id="P9", category="패션"),
            ev("product_viewed", 2, product_id="P10", category="패션"),
        ],
        None,
    ),
    # only one view of the category; the other view has no category (null never matches)
    "c7": (
        [
            ev("cart_added", 5, product_id="P1", category="뷰티"),
            ev("product_viewed", 1, category="뷰티"),
            ev("product_viewed", 2, product_id="P3"),
        ],
        None,
    ),
    # bought P1 before the cart add: does not count as buying that cart item
    "c8": ([ev("product_purchased", 10, product_id="P1"), *_a2_base()], None),
}


def test_a2_basic() -> None:
    assert seed("A2-basic", A2_USERS) == {"c1", "c3", "c4", "c5", "c6", "c7", "c8"}


def test_a2_advanced() -> None:
    assert seed("A2-advanced", A2_USERS) == {"c1", "c5", "c6", "c8"}


def test_a2_explain_names_the_cart_event() -> None:
    tree = SEEDS_BY_ID["A2-advanced"].segment().definition
    evs = A2_USERS["c6"][0]
    node = explain(tree, evs, None, AS_OF)
    assert node.result and node.kind == "with"
    p2_cart = next(e for e in evs if e["event"] == "cart_added" and e["properties"]["product_id"] == "P2")
    assert node.events[0]["id"] == p2_cart["message_id"]
    assert node.children[0].result
    as_dict = node.to_dict()
    assert as_dict["events"][0]["ts"] == p2_cart["ts"].isoformat()


# ---------------------------------------------------------------- A3


A3_USERS: Users = {
    "d1": (
        [ev("app_opened", 40), ev("order_completed", 60), ev("comment_event_joined", 100, event_id="E1")],
        None,
    ),
    "d2": ([ev("app_opened", 10), ev("order_completed", 60), ev("comment_event_joined", 100)], None),
    "d3": ([ev("order_completed", 20), ev("comment_event_joined", 100)], None),
    "d4": ([ev("app_opened", 40), ev("order_completed", 60)], None),
    "d5": ([ev("app_opened", 40), ev("order_completed", 100), ev("comment_event_joined", 100)], None),
    "d6": (
        [ev("order_completed", 90), ev("comment_event_joined", 100)],
        None,
    ),  # 3 months = 90 days, edge out
    "d7": (
        [ev("order_completed", timedelta(days=90) - timedelta(seconds=1)), ev("comment_event_joined", 100)],
        None,
    ),
}


def test_a3_basic() -> None:
    assert seed("A3-basic", A3_USERS) == {"d1", "d3", "d4", "d5", "d6", "d7"}


def test_a3_advanced() -> None:
    assert seed("A3-advanced", A3_USERS) == {"d1", "d7"}


# ---------------------------------------------------------------- A4


def _bought(ago: float, product: Any, category: str = "생활용품") -> list[dict[str, Any]]:
    return [
        ev("order_completed", ago, order_id=f"O{ago}", revenue=15000),
        ev(
            "product_purchased",
            ago,
            order_id=f"O{ago}",
            product_id=product,
            product_name="샴푸",
            category=category,
        ),
    ]


A4_USERS: Users = {
    "r1": ([*_bought(70, "P1"), *_bought(35, "P1")], None),
    "r2": ([*_bought(70, "P1"), *_bought(35, "P1"), ev("product_viewed", 5, category="생활용품")], None),
    "r3": ([*_bought(70, "P1"), *_bought(35, "P2")], None),
    "r4": ([*_bought(70, "P1"), *_bought(10, "P1")], None),
    # P1's category browsed recently, but P2 (도서) was also bought twice and its category was not
    "r5": (
        [
            *_bought(80, "P1"),
            *_bought(70, "P2", "도서"),
            *_bought(50, "P1"),
            *_bought(40, "P2", "도서"),
            ev("product_viewed", 3, category="생활용품"),
        ],
        None,
    ),
    "r6": ([*_bought(70, "P1"), *_bought(30, "P1")], None),  # last order exactly 1 month (30 days) ago
    "r7": ([*_bought(70, "P1"), *_bought(35, "P1"), ev("product_viewed", 14, category="생활용품")], None),
    # the anchor's product_id is a number, so the comparison is numeric and "101" (text) matches it
    "r8": ([*_bought(70, 101), *_bought(35, "101")], None),
    # a string anchor value compares as text only: 102 (a number) does not equal "102"
    "r9": ([*_bought(70, 102), *_bought(35, "102")], None),
}


def test_a4_basic() -> None:
    assert seed("A4-basic", A4_USERS) == {"r1", "r2", "r3", "r4", "r5", "r6", "r7", "r8", "r9"}


def test_a4_advanced() -> None:
    # r9: anchor "102" (text) matches only the text purchase; anchor 102 (number) matches both -> member
    assert seed("A4-advanced", A4_USERS) == {"r1", "r5", "r6", "r7", "r8", "r9"}


def test_a4_typed_anchor_comparison_text_only() -> None:
    users = {"r10": ([*_bought(70, "103"), *_bought(35, 104)], None)}
    assert seed("A4-advanced", users) == set()


# ---------------------------------------------------------------- B


def prof(**traits: Any) -> Profile:
    return Profile(traits=traits)


def test_b_attributes() -> None:
    users: Users = {
        "f20": ([], prof(gender="F", age=20, device="Android", region="서울", signup_channel="kakao")),
        "f29": ([], prof(gender="F", age=29, device="iOS", region="부산")),
        "f30": ([], prof(gender="F", age=30, region="경기")),
        "m25": ([], prof(gender="M", age=25, device="Android")),
        "fnone": ([], prof(gender="F")),
        "ftext": ([], prof(gender="F", age="25")),  # numeric text is compared as a number
        "fbad": ([], prof(gender="F", age="스물다섯")),
        "null": ([], prof(gender=None, age=None)),
        "noprof": ([], None),
    }
    assert seed("B-women-20s", users) == {"f20", "f29", "ftext"}
    assert seed("B-android", users) == {"f20", "m25"}
    assert seed("B-kakao-signup", users) == {"f20"}
    assert seed("B-capital-region", users) == {"f20", "f30"}
    assert who('trait gender != "F"', users) == {"m25"}  # missing/null never compare, not even with !=
    assert who('trait region not in ["서울"]', users) == {"f29", "f30"}
    assert who("trait age exists", users) == {"f20", "f29", "f30", "m25", "ftext", "fbad"}
    assert who("trait age not exists", users) == {"fnone", "null", "noprof"}


def test_b_cart_not_bought() -> None:
    users: Users = {
        "bought": ([ev("cart_added", 3), ev("order_completed", 1)], None),
        "open": ([ev("cart_added", 3)], None),
        "same_ts": (
            [ev("cart_added", 3), {**ev("order_completed", 3), "ts": AS_OF - timedelta(days=3)}],
            None,
        ),
        "old": ([ev("cart_added", 8)], None),
        "two": ([ev("cart_added", 6), ev("order_completed", 5), ev("cart_added", 2)], None),
    }
    # "then" is strictly later: an order at the same second does not follow the cart add
    assert seed("B-cart-no-buy-7d", users) == {"open", "same_ts", "two"}


def test_b_event_page() -> None:
    page = {"name": "이벤트 페이지", "url": "https://shop.example/event"}
    users: Users = {
        "three": ([ev("$page", 1, **page), ev("$page", 2, **page), ev("$page", 300, **page)], None),
        "two": ([ev("$page", 1, **page), ev("$page", 2, **page), ev("$page", 3, name="홈")], None),
    }
    assert seed("B-event-page-3x", users) == {"three"}


def _sent(ago: float, ref: str, channel: str = "push") -> dict[str, Any]:
    return ev("message_sent", ago, channel=channel, campaign_id="C1", message_id_ref=ref)


def _opened(ago: float, ref: str, channel: str = "push") -> dict[str, Any]:
    return ev("message_opened", ago, channel=channel, campaign_id="C1", message_id_ref=ref)


def test_b_push_streak() -> None:
    five = [_sent(10 - i, f"r{i}") for i in range(5)]
    users: Users = {
        "five": (five, None),
        "four": (five[1:], None),
        "opened_one": ([*five, _opened(6, "r3")], None),
        "opened_older": ([_sent(20, "r-old"), *five, _opened(19, "r-old")], None),
        "email_only": ([_sent(10 - i, f"e{i}", "email") for i in range(6)], None),
        # opened after as_of: not yet opened at as_of
        "late_open": ([*five, _opened(-1, "r4")], None),
    }
    assert seed("B-push-unopened-5", users) == {"five", "opened_older", "late_open"}


def test_b_churn() -> None:
    daily = [ev("app_opened", 10 - i) for i in range(6)]  # days 10..5 ago: gaps of 1 day, last 5 days ago
    users: Users = {
        "gap": (daily, None),  # 5 days since last >= 2 x 1 day
        "recent": ([*daily, ev("app_opened", 1.5)], None),  # gaps 1,1,1,1,1,3.5 -> median 1; 1.5 < 2
        "two_events": ([ev("app_opened", 30), ev("app_opened", 20)], None),  # 1 gap: not enough history
        "edge": ([ev("app_opened", 4), ev("app_opened", 3), ev("app_opened", 2)], None),  # 2 days == 2 x 1
    }
    assert seed("B-revisit-gap-2x", users) == {"gap", "edge"}
    no_login: Users = {
        "young": ([], Profile(first_seen=AS_OF - timedelta(days=10))),
        "old": ([], Profile(first_seen=AS_OF - timedelta(days=40))),
        "from_events": ([ev("order_completed", 50)], None),  # no profile: history starts with its events
        "active": ([ev("app_opened", 3)], Profile(first_seen=AS_OF - timedelta(days=40))),
        "edge": ([], Profile(first_seen=AS_OF - timedelta(days=14))),  # exactly as old as the window
    }
    assert seed("B-no-login-14d", no_login) == {"old", "from_events", "edge"}
    assert who("did not app_opened in last 14 days", no_login) == {"young", "old", "from_events", "edge"}


def test_b_funnel() -> None:
    users: Users = {
        "browse": ([ev("product_viewed", 1)], None),
        "cart": ([ev("product_viewed", 1), ev("cart_added", 1)], None),
        "pay": ([ev("product_viewed", 1), ev("cart_added", 1), ev("checkout_started", 0.5)], None),
        "done": (
            [
                ev("product_viewed", 1),
                ev("cart_added", 1),
                ev("checkout_started", 0.5),
                ev("order_completed", 0.4),
            ],
            None,
        ),
    }
    assert seed("B-funnel-browsing", users) == {"browse"}
    assert seed("B-funnel-cart", users) == {"cart"}
    assert seed("B-funnel-checkout", users) == {"pay"}


def test_b_new_users() -> None:
    users: Users = {
        "installed": ([ev("app_installed", 3)], None),
        "reinstall": ([ev("app_installed", 10), ev("app_installed", 2)], None),  # first install is old
        "signed": ([ev("signed_up", 7, channel="naver")], None),  # exactly 7 days: outside
        "signed_in": ([ev("signed_up", timedelta(days=7) - timedelta(seconds=1))], None),
    }
    assert seed("B-new-users", users) == {"installed", "signed_in"}
    assert who(
        "profile first_seen in last 7 days",
        {
            "new": ([], Profile(first_seen=AS_OF - timedelta(days=1))),
            "old": ([], Profile(first_seen=AS_OF - timedelta(days=8))),
            "none": ([], Profile()),
        },
    ) == {"new"}


def test_b_dormant_and_channels() -> None:
    users: Users = {
        "dormant": ([ev("app_opened", 100)], prof(consent_email=True, consent_push=True)),
        "dormant_no_consent": ([ev("app_opened", 100)], prof(consent_email=False)),
        "active": ([ev("app_opened", 2)], prof(consent_push=True, consent_email=True)),
        "active_text": ([ev("app_opened", 2)], prof(consent_push="true")),  # text is not a boolean
    }
    assert seed("B-dormant-30d", users) == {"dormant", "dormant_no_consent"}
    assert seed("B-long-dormant-email", users) == {"dormant"}
    assert seed("B-recent-push", users) == {"active"}


def test_b_high_value() -> None:
    checkouts = [ev("checkout_started", 20, cart_value=40000), ev("checkout_started", 10, cart_value=60000)]
    users: Users = {
        "yes": ([*checkouts, ev("product_viewed", 1, price=100000)], None),  # avg 50000, 2x = 100000
        "no": ([*checkouts, ev("product_viewed", 1, price=99999)], None),
        "text_price": ([*checkouts, ev("product_viewed", 1, price="120000")], None),
        "no_checkout": ([ev("product_viewed", 1, price=10**7)], None),  # no average: never compares
        "bad_values": (
            [
                ev("checkout_started", 3, cart_value="n/a"),
                ev("checkout_started", 2, cart_value=1000),
                ev("product_viewed", 1, price=2000),
            ],
            None,
        ),  # non-numbers are left out of avg
    }
    assert seed("B-high-value-click", users) == {"yes", "text_price", "bad_values"}
    premium = [ev("product_viewed", i, category="가전", price=1_500_000) for i in range(1, 6)]
    assert seed("B-premium-category", {"p": (premium, None), "q": (premium[:4], None)}) == {"p"}


def test_b_campaign_timing_and_frequency_cap() -> None:
    users: Users = {
        "two_days": ([ev("cart_added", 2)], None),
        "half_day": ([ev("cart_added", 5), ev("cart_added", 0.5)], None),  # the LAST add is too recent
        "three": ([ev("cart_added", 3)], None),
        "one": ([ev("cart_added", 1)], None),
    }
    assert seed("B-cart-1-3-days", users) == {"two_days", "one"}
    cap: Users = {
        "two": ([_sent(1, "a"), _sent(2, "b"), _sent(1, "c", "email")], None),
        "three": ([_sent(1, "a"), _sent(2, "b"), _sent(6.9, "c")], None),
        "none": ([], None),
    }
    assert seed("B-frequency-cap", cap) == {"two", "none"}


# ---------------------------------------------------------------- rules


def test_window_edges_to_the_second() -> None:
    edge = {
        "at": ([ev("x", 7)], None),
        "in": ([ev("x", timedelta(days=7) - timedelta(seconds=1))], None),
        "now": ([ev("x", 0)], None),
        "future": ([ev("x", timedelta(seconds=-1))], None),
    }
    assert who("did x in last 7 days", edge) == {"in", "now"}
    assert who("did x at least 7 days ago", edge) == {"at"}
    assert who("did x in last 1 week", edge) == {"in", "now"}
    month = {"m30": ([ev("x", 30)], None), "m29": ([ev("x", 29.99)], None)}
    assert who("did x in last 1 month", month) == {"m29"}  # a month is exactly 30 days
    start = (AS_OF - timedelta(days=2)).isoformat()
    end = (AS_OF - timedelta(days=1)).isoformat()
    absolute = {"start": ([ev("x", 2)], None), "end": ([ev("x", 1)], None)}
    assert who(f"did x from {start} to {end}", absolute) == {"start"}  # start inclusive, end exclusive
    assert who(f"did x since {end}", absolute) == {"end"}
    assert who(f"did x before {end}", absolute) == {"start"}


def test_calendar_windows_use_the_users_zone() -> None:
    seoul_midnight = datetime(2026, 3, 30, 15, 0, 0)  # 2026-03-31 00:00 in Seoul
    la_midnight = datetime(2026, 3, 31, 7, 0, 0)  # 2026-03-31 00:00 in Los Angeles (PDT)
    users: Users = {
        "seoul_at": (
            [{"event": "x", "ts": seoul_midnight, "properties": {}}],
            Profile(timezone="Asia/Seoul"),
        ),
        "seoul_before": (
            [{"event": "x", "ts": seoul_midnight - timedelta(seconds=1), "properties": {}}],
            Profile(timezone="Asia/Seoul"),
        ),
        "la_before": (
            [{"event": "x", "ts": la_midnight - timedelta(seconds=1), "properties": {}}],
            Profile(timezone="America/Los_Angeles"),
        ),
        "la_at": (
            [{"event": "x", "ts": la_midnight, "properties": {}}],
            Profile(timezone="America/Los_Angeles"),
        ),
        "unknown_zone": (
            [{"event": "x", "ts": seoul_midnight, "properties": {}}],
            Profile(timezone="Mars/Base"),
        ),
    }
    assert who("did x today", users) == {"seoul_at", "la_at", "unknown_zone"}
    assert who("did x today in workspace zone", users) == {"seoul_at", "la_before", "la_at", "unknown_zone"}
    week = {
        "mon": (
            [{"event": "x", "ts": datetime(2026, 3, 29, 15, 0), "properties": {}}],
            None,
        ),  # Mon 00:00 KST
        "sun": ([{"event": "x", "ts": datetime(2026, 3, 29, 14, 59, 59), "properties": {}}], None),
    }
    assert who("did x this week", week) == {"mon"}
    assert who("did x this month", week) == {"mon", "sun"}


def test_each_of_the_last_weeks() -> None:
    weekly = [ev("app_opened", 1), ev("app_opened", 8), ev("app_opened", 15), ev("app_opened", 22)]
    users: Users = {
        "regular": (weekly, None),
        "gap": (weekly[:2] + weekly[3:], None),
        "edge": (
            [ev("app_opened", 1), ev("app_opened", 7), ev("app_opened", 14), ev("app_opened", 28)],
            None,
        ),
    }
    # period i is (as_of-(i+1) weeks, as_of-i weeks]: days 7 and 14 count in weeks 1 and 2, but day 28 is
    # the open edge of week 3 (days 21..28], so week 3 is empty
    assert who("did app_opened in each of the last 4 weeks", users) == {"regular"}
    assert who("did app_opened in each of the last 3 weeks", users) == {"regular", "edge"}


def test_property_typing_and_nulls() -> None:
    users: Users = {
        "num": ([ev("x", 1, price=12000, category="뷰티")], None),
        "text_num": ([ev("x", 1, price="12000", category="1")], None),
        "bad": ([ev("x", 1, price="12,000", category=1)], None),
        "missing": ([ev("x", 1)], None),
        "null": ([ev("x", 1, price=None, category=None)], None),
        "bool": ([ev("x", 1, price=True, category=True)], None),
        "nested": ([ev("x", 1, option={"color": "빨강", "size": 270})], None),
    }
    assert who("did x where price >= 10000", users) == {"num", "text_num"}
    assert who("did x where price = 12000.0", users) == {"num", "text_num"}
    assert who('did x where category = "1"', users) == {"text_num"}  # a string literal matches strings only
    assert who("did x where category = 1", users) == {"text_num", "bad"}
    assert who('did x where category != "뷰티"', users) == {"text_num"}
    assert who("did x where category exists", users) == {"num", "text_num", "bad", "bool"}
    assert who("did x where category not exists", users) == {"missing", "null", "nested"}
    assert who("did x where category = true", users) == {"bool"}
    assert who('did x where option.color = "빨강", option.size between 260 and 270', users) == {"nested"}
    assert who('did x where category contains "뷰"', users) == {"num"}
    assert who('did x where category starts with "1"', users) == {"text_num"}
    assert who("did x where price in [12000, 13000]", users) == {"num", "text_num"}
    assert who("did x where price not in [13000]", users) == {"num", "text_num"}


def test_equal_timestamps_and_tie_breaks() -> None:
    t = AS_OF - timedelta(days=1)
    evs = [
        {"event": "cart_added", "ts": t, "properties": {"product_id": "B"}, "message_id": "m2"},
        {"event": "cart_added", "ts": t, "properties": {"product_id": "A"}, "message_id": "m1"},
    ]
    users: Users = {"u": (evs, None)}
    # the last of equal-time events is the one with the greater message_id
    assert who(
        'with last cart_added as c: did cart_added where product_id = c.product_id, product_id = "B"', users
    ) == {"u"}
    assert who(
        'with first cart_added as c: did cart_added where product_id = c.product_id, product_id = "A"', users
    ) == {"u"}
    # "after c" is strictly later: the other cart add at the same second is not after it
    assert who("with any cart_added as c: did cart_added after c", users) == set()
    assert who("did cart_added then cart_added", users) == set()


def test_aggregates() -> None:
    orders = [
        ev("order_completed", 10, revenue=30000),
        ev("order_completed", 40, revenue=50000),
        ev("order_completed", 100, revenue="20000"),
    ]
    users: Users = {"u": (orders, prof(target=70000)), "none": ([], prof(target=0))}
    assert who("sum revenue of order_completed in last 90 days >= 80000", users) == {"u"}
    assert who("sum revenue of order_completed in last 90 days < 1", users) == {"none"}  # empty sum is 0
    assert who("avg revenue of order_completed = 40000", users) == set()  # (30000+50000+20000)/3
    assert who("avg revenue of order_completed between 33333 and 33334", users) == {"u"}
    assert who("max revenue of order_completed >= 0", users) == {"u"}  # no events: max is undefined
    assert who("count of order_completed >= 3", users) == {"u"}
    assert who("count of order_completed = 0", users) == {"none"}
    assert who("sum revenue of order_completed in last 90 days > trait target", users) == {"u"}
    assert who(
        "sum revenue of order_completed >= 0.5 * (sum revenue of order_completed in last 30 days)", users
    ) == {"u", "none"}
    distinct = {
        "u": (
            [
                ev("v", 1, c="뷰티"),
                ev("v", 2, c="뷰티"),
                ev("v", 3, c="패션"),
                ev("v", 4, c=1),
                ev("v", 5, c=1.0),
                ev("v", 6),
            ],
            None,
        )
    }
    assert who("count distinct c of v = 3", distinct) == {"u"}  # 뷰티, 패션, 1 (1 and 1.0 are one number)


def test_first_last_and_sequence_within() -> None:
    users: Users = {
        # the last step exactly 2 hours after the first: within (inclusive)
        "fast": (
            [
                ev("product_viewed", 5),
                ev("cart_added", timedelta(days=5) - timedelta(hours=1)),
                ev("checkout_started", timedelta(days=5) - timedelta(hours=2)),
            ],
            None,
        ),
        "slow": ([ev("product_viewed", 5), ev("cart_added", 4), ev("checkout_started", 3)], None),
        "edge": (
            [
                ev("product_viewed", 5),
                ev("cart_added", timedelta(days=5) - timedelta(hours=1)),
                ev("checkout_started", timedelta(days=5) - timedelta(hours=2, seconds=1)),
            ],
            None,
        ),
    }
    assert who("did product_viewed then cart_added then checkout_started within 2 hours", users) == {"fast"}
    assert who("did product_viewed then cart_added then checkout_started", users) == {"fast", "slow", "edge"}
    assert who("first product_viewed in last 7 days", users) == {"fast", "slow", "edge"}
    assert who("last checkout_started at least 4 days ago", users) == {"fast", "edge"}


def test_in_segment_and_cycles() -> None:
    saved = {
        "vip": parse("sum revenue of order_completed >= 100000"),
        "a": parse('in segment "b"'),
        "b": parse('in segment "a"'),
    }
    users: Users = {"rich": ([ev("order_completed", 5, revenue=150000)], None), "poor": ([], None)}
    assert who('in segment "vip"', users, resolve=saved.__getitem__) == {"rich"}
    assert who('not in segment "vip"', users, resolve=saved.__getitem__) == {"poor"}
    with pytest.raises(SegmentCycleError, match="a -> b -> a"):
        who('in segment "a"', users, resolve=saved.__getitem__)
    with pytest.raises(NotFound):
        who('in segment "vip"', users)


def test_profile_builtins_and_dates() -> None:
    p = Profile(
        traits={"signup_date": "2026-03-28T00:00:00+09:00", "birthday": "1990-01-01"},
        first_seen=AS_OF - timedelta(days=3),
        timezone="America/Los_Angeles",
    )
    users: Users = {"u": ([], p)}
    assert who("trait signup_date in last 7 days", users) == {"u"}
    assert who("trait birthday at least 30 days ago", users) == {"u"}
    assert who("trait signup_date < 2026-03-27T15:00:01", users) == {"u"}
    assert who("trait signup_date < 2026-03-27T15:00:00", users) == set()
    assert who('profile timezone starts with "America/"', users) == {"u"}
    assert who("profile first_seen at least 3 days ago", users) == {"u"}


def test_as_of_defaults_to_now_and_accepts_aware_times() -> None:
    now = datetime.now(UTC)
    evs = [{"event": "x", "ts": now - timedelta(minutes=5), "properties": {}}]
    assert evaluate(parse("did x in last 10 minutes"), evs)
    assert evaluate(parse("did x in last 10 minutes"), evs, None, now.astimezone())


def test_load_user_from_store(workspace: Any) -> None:
    import pyarrow as pa

    from segmint.store.base import ProfileUpdate, WriteBatch
    from segmint.store.schema import events_to_arrow

    rows = [
        {
            "message_id": f"s{i}",
            "type": "track",
            "event": "product_viewed",
            "user_id": "kim",
            "ts": AS_OF - timedelta(days=i),
            "received_at": AS_OF,
            "properties": {"category": "뷰티"},
        }
        for i in (1, 2, 40)
    ]
    rows.append(
        {
            "message_id": "other",
            "type": "track",
            "event": "product_viewed",
            "user_id": "lee",
            "ts": AS_OF - timedelta(days=1),
            "received_at": AS_OF,
            "properties": {"category": "뷰티"},
        }
    )
    table: pa.Table = events_to_arrow(rows)
    store = workspace.store
    store.write(
        WriteBatch(
            events=table,
            profiles=[
                ProfileUpdate("kim", {"gender": "F", "age": 27}, AS_OF - timedelta(days=50), "Asia/Seoul")
            ],
        )
    )
    events, profile = load_user(store, "kim", AS_OF)
    assert [e.message_id for e in events] == ["s40", "s2", "s1"]
    assert profile.traits == {"gender": "F", "age": 27} and profile.timezone == "Asia/Seoul"
    tree = parse(
        'did product_viewed where category = "뷰티" at least 2 times in last 30 days '
        'and trait gender = "F" and trait age between 20 and 29'
    )
    node = evaluate_user(tree, store, "kim", AS_OF)
    assert node.result
    assert [e["id"] for e in node.children[0].events] == ["s2", "s1"]
    assert not evaluate_user(tree, store, "lee", AS_OF).result
    cat = Catalog.from_store(store)
    assert cat.events == {"product_viewed": {"category"}} and cat.traits == {"gender", "age"}
    with pytest.raises(SegmentSyntaxError, match="did you mean category"):
        parse('did product_viewed where categori = "뷰티"', cat)


def test_explain_marks_each_node() -> None:
    tree = parse("did a and not did b")
    node = explain(tree, [ev("a", 1), ev("b", 2)], None, AS_OF)
    assert not node.result
    assert [c.result for c in node.children] == [True, False]
    assert node.children[1].children[0].result is True
    assert node.children[1].children[0].events[0]["event"] == "b"
    assert node.text == "did a and not did b" and node.children[1].text == "not did b"
    assert node.to_dict()["children"][0]["text"] == "did a"


def test_model_json_round_trip_of_seeds() -> None:
    for s in SEEDS:
        seg = s.segment()
        assert m.Segment.model_validate_json(seg.model_dump_json()) == seg


# ---------------------------------------------------------------- equivalences on random histories

_EVENTS = st.lists(
    st.builds(
        lambda name, secs, cat, price, mid: {
            "event": name,
            "ts": AS_OF - timedelta(seconds=secs),
            "message_id": f"r{mid}",
            "properties": {k: v for k, v in (("category", cat), ("price", price)) if v is not ...},
        },
        st.sampled_from(["cart_added", "order_completed", "product_viewed"]),
        st.integers(-86400, 40 * 86400).map(lambda s: s - s % 3600),  # hour grid: many equal times
        st.sampled_from(["뷰티", "패션", None, ...]),
        st.sampled_from([1000, "2000", "n/a", None, ...]),
        st.integers(0, 10**6),
    ),
    max_size=12,
)

_EQUIVALENT = [
    ("did not cart_added in last 7 days", "not did cart_added in last 7 days"),
    ("did product_viewed at least 3 times in last 14 days", "count of product_viewed in last 14 days >= 3"),
    (
        "first cart_added in last 7 days",
        "did cart_added in last 7 days and did not cart_added at least 7 days ago",
    ),
    ("last cart_added at least 3 days ago", "did cart_added and did not cart_added in last 3 days"),
    ("did cart_added then order_completed", "with any cart_added as a: did order_completed after a"),
    (
        "did cart_added not followed by order_completed within 2 days",
        "with any cart_added as a: did not order_completed after a within 2 days",
    ),
    (
        'did product_viewed where category = "뷰티", price >= 1500',
        'with any product_viewed where price >= 1500 as p: did product_viewed where category = "뷰티", '
        "price = p.price",
    ),
    ("with last cart_added as a: did cart_added after a", "did cart_added and not did cart_added"),
    ('did product_viewed where category != "뷰티"', 'did product_viewed where category in ["패션"]'),
]


@settings(max_examples=150, deadline=None)
@given(_EVENTS)
def test_equivalent_forms_agree(events: list[dict[str, Any]]) -> None:
    for left, right in _EQUIVALENT:
        assert evaluate(parse(left), events, None, AS_OF) == evaluate(parse(right), events, None, AS_OF), left
