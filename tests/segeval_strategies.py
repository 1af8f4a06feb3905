"""Hypothesis strategies for SQL-vs-reference equivalence: histories over the demo vocabulary, random trees.

Histories put timestamps exactly on window edges (and one microsecond either side), give several events
the same timestamp, mix nulls, missing keys, numeric text, booleans, unicode and hostile strings, and
include young profiles and users in other time zones.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from hypothesis import strategies as st

from segmint.segments import model as m

AS_OF = datetime(2024, 6, 1, 12, 0, 0)
EVENTS = ["cart_added", "product_viewed", "order_completed", "review_viewed", "app_opened"]
CATEGORIES = ["뷰티", "패션", "식품", "x'; DROP TABLE events; --", 'q"uote', "a\\b\tc"]
PRODUCTS = ["p1", "p2", "p3", "샴푸"]
DAYS = [0, 1, 3, 7, 14, 30, 90]
ZONES = ["Asia/Seoul", "America/Los_Angeles", "UTC", None]
TYPED = {"category": "string", "price": "number"}  # declared columns (values honour these types)


def _offsets() -> st.SearchStrategy[timedelta]:
    edge = st.sampled_from(DAYS).flatmap(
        lambda d: st.sampled_from(
            [timedelta(days=d), timedelta(days=d, microseconds=1), timedelta(days=d, microseconds=-1)]
        )
    )
    free = st.integers(min_value=-2 * 86400, max_value=100 * 86400).map(lambda s: timedelta(seconds=s))
    return st.one_of(edge, edge, free)


_price = st.one_of(
    st.none(),
    st.integers(-5, 50_000),
    st.sampled_from([0.5, 1e3, 19900.0]),
    st.sampled_from(["1000", "12.5", "abc", "", "1e3"]),
    st.booleans(),
)


@st.composite
def properties(draw: st.DrawFn) -> dict[str, Any]:
    """Event properties: some keys missing, some null, mixed types for untyped keys."""
    props: dict[str, Any] = {}
    if draw(st.booleans()):
        props["category"] = draw(st.one_of(st.sampled_from(CATEGORIES), st.none()))
    if draw(st.booleans()):
        props["price"] = draw(_price)
    if draw(st.booleans()):
        props["product_id"] = draw(st.one_of(st.sampled_from(PRODUCTS), st.integers(1, 3), st.none()))
    if draw(st.integers(0, 4)) == 0:
        props["meta"] = {"source": draw(st.sampled_from(["ad", "기사", None]))}
    return props


@st.composite
def histories(draw: st.DrawFn, max_users: int = 12) -> dict[str, Any]:
    """Users -> events and profile traits; message ids unique; some timestamps shared."""
    n = draw(st.integers(1, max_users))
    users: dict[str, Any] = {}
    mid = 0
    for i in range(n):
        uid = draw(st.sampled_from([f"u{i}", f"사용자{i}", f"u'{i}\""]))
        k = draw(st.integers(0, 8))
        events = []
        shared = AS_OF - draw(_offsets())
        for _ in range(k):
            ts = shared if draw(st.integers(0, 3)) == 0 else AS_OF - draw(_offsets())
            mid += 1
            events.append(
                {
                    "message_id": f"m{mid:05d}",
                    "event": draw(st.sampled_from(EVENTS)),
                    "ts": ts,
                    "properties": draw(properties()),
                }
            )
        traits: dict[str, Any] = {}
        if draw(st.booleans()):
            traits["age"] = draw(st.one_of(st.integers(10, 70), st.sampled_from(["29", "n/a"]), st.none()))
        if draw(st.booleans()):
            traits["region"] = draw(st.sampled_from(["서울", "부산", "제주"]))
        if draw(st.booleans()):
            traits["consent_push"] = draw(st.booleans())
        profile_ts = AS_OF - draw(_offsets())
        users[uid] = {
            "events": events,
            "traits": traits,
            "profile_ts": profile_ts,
            "timezone": draw(st.sampled_from(ZONES)),
            "has_profile": draw(st.integers(0, 5)) > 0 or not events,
        }
    return users


# ---------------------------------------------------------------- trees

_dur = st.builds(m.Duration, amount=st.sampled_from([1, 3, 7, 14, 30]), unit=st.sampled_from(["days", "weeks"]))
windows = st.one_of(
    st.just(m.EverWindow()),
    st.builds(m.LastWindow, duration=_dur),
    st.builds(m.AgoWindow, duration=_dur),
    st.builds(
        m.BetweenWindow,
        start=st.sampled_from([AS_OF - timedelta(days=d) for d in DAYS]),
        end=st.sampled_from([None, AS_OF + timedelta(days=1)]),
    ),
)


def _filters(anchor: str | None = None) -> st.SearchStrategy[list[m.PropertyFilter]]:
    cat = st.builds(
        m.PropertyFilter,
        path=st.just(["category"]),
        op=st.sampled_from(["eq", "ne", "starts_with", "contains"]),
        value=st.builds(m.Value, value=st.sampled_from([*CATEGORIES, "뷰"])),
    )
    cat_in = st.builds(
        m.PropertyFilter,
        path=st.just(["category"]),
        op=st.sampled_from(["in", "not_in"]),
        value=st.builds(m.ValueList, values=st.lists(st.sampled_from(CATEGORIES), min_size=1, max_size=3)),
    )
    price = st.builds(
        m.PropertyFilter,
        path=st.just(["price"]),
        op=st.sampled_from(["gt", "gte", "lt", "lte", "eq", "ne"]),
        value=st.builds(m.Value, value=st.sampled_from([0, 1000, 12.5, 19900])),
    )
    price_b = st.builds(
        m.PropertyFilter,
        path=st.just(["price"]),
        op=st.just("between"),
        value=st.builds(m.Value, value=st.sampled_from([0, 1000])),
        value2=st.builds(m.Value, value=st.sampled_from([1000, 20000])),
    )
    pid = st.builds(
        m.PropertyFilter,
        path=st.just(["product_id"]),
        op=st.sampled_from(["eq", "ne"]),
        value=st.builds(m.Value, value=st.sampled_from(["p1", "샴푸", 1, True])),
    )
    ex = st.builds(
        m.PropertyFilter,
        path=st.sampled_from([["price"], ["meta", "source"], ["product_id"]]),
        op=st.sampled_from(["exists", "not_exists"]),
    )
    nested = st.builds(
        m.PropertyFilter,
        path=st.just(["meta", "source"]),
        op=st.just("eq"),
        value=st.builds(m.Value, value=st.sampled_from(["ad", "기사"])),
    )
    options = [cat, cat_in, price, price_b, pid, ex, nested]
    if anchor:
        options.append(
            st.builds(
                m.PropertyFilter,
                path=st.sampled_from([["category"], ["product_id"], ["price"]]),
                op=st.sampled_from(["eq", "ne", "gte"]),
                value=st.builds(
                    m.AnchorRef,
                    anchor=st.just(anchor),
                    path=st.sampled_from([["category"], ["product_id"], ["price"]]),
                ),
            )
        )
    return st.lists(st.one_of(*options), max_size=2)


_count = st.one_of(
    st.builds(m.CountSpec, op=st.sampled_from(["gte", "lte", "eq"]), n=st.integers(0, 3)),
    st.builds(m.CountSpec, op=st.just("between"), n=st.just(1), n2=st.integers(1, 3)),
)


def performed(anchor: str | None = None) -> st.SearchStrategy[m.Performed]:
    """A Performed leaf (anchor windows when an anchor is bound)."""
    w = windows
    if anchor:
        w = st.one_of(
            windows,
            st.builds(m.AfterAnchorWindow, anchor=st.just(anchor), within=st.one_of(st.none(), _dur)),
            st.builds(m.BeforeAnchorWindow, anchor=st.just(anchor), within=st.one_of(st.none(), _dur)),
        )
    return st.builds(
        m.Performed,
        event=st.sampled_from(EVENTS),
        where=_filters(anchor),
        count=_count,
        window=w,
        new_profiles=st.sampled_from(["include", "include", "exclude"]),
    )


def aggregate(anchor: str | None = None) -> st.SearchStrategy[m.AggregateCondition]:
    """An aggregate over price compared with a number or the user's age trait."""
    agg = st.one_of(
        st.builds(
            m.AggregateExpr,
            fn=st.sampled_from(["sum", "avg", "min", "max"]),
            event=st.sampled_from(EVENTS),
            property=st.just(["price"]),
            where=_filters(anchor),
            window=windows,
        ),
        st.builds(
            m.AggregateExpr,
            fn=st.just("count"),
            event=st.sampled_from(EVENTS),
            where=_filters(anchor),
            window=windows,
        ),
    )
    right = st.one_of(
        st.builds(m.Value, value=st.sampled_from([0, 1, 2, 1000, 20000])),
        st.builds(m.TraitRef, name=st.just("age"), factor=st.sampled_from([None, 2.0])),
    )
    return st.builds(
        m.AggregateCondition, agg=agg, op=st.sampled_from(["gt", "gte", "lt", "lte", "eq", "ne"]), value=right
    )


first_last = st.builds(
    lambda k, e, w, f: (m.FirstCondition if k else m.LastCondition)(event=e, where=f, window=w),
    st.booleans(),
    st.sampled_from(EVENTS),
    windows,
    _filters(),
)

traits = st.one_of(
    st.builds(
        m.TraitCondition,
        name=st.just("age"),
        op=st.sampled_from(["gt", "gte", "lt", "lte", "eq", "ne"]),
        value=st.builds(m.Value, value=st.sampled_from([20, 29, 40])),
    ),
    st.builds(
        m.TraitCondition,
        name=st.just("region"),
        op=st.sampled_from(["eq", "ne", "starts_with"]),
        value=st.builds(m.Value, value=st.sampled_from(["서울", "부"])),
    ),
    st.builds(
        m.TraitCondition,
        name=st.just("consent_push"),
        op=st.sampled_from(["eq", "ne"]),
        value=st.builds(m.Value, value=st.booleans()),
    ),
    st.builds(
        m.TraitCondition,
        name=st.sampled_from(["age", "region"]),
        op=st.sampled_from(["exists", "not_exists"]),
    ),
    st.builds(
        m.TraitCondition,
        name=st.sampled_from(["first_seen", "last_seen"]),
        source=st.just("profile"),
        op=st.sampled_from(["within_last", "older_than"]),
        duration=_dur,
    ),
)


def leaves(anchor: str | None = None) -> st.SearchStrategy[Any]:
    """Any leaf condition."""
    return st.one_of(performed(anchor), performed(anchor), aggregate(anchor), first_last, traits)


def _combine(children: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(
        st.builds(m.And, items=st.lists(children, min_size=2, max_size=3)),
        st.builds(m.Or, items=st.lists(children, min_size=2, max_size=3)),
        st.builds(m.Not, item=children),
    )


correlated = st.builds(
    m.Correlated,
    anchor=st.builds(
        m.Anchor,
        name=st.just("cart"),
        pick=st.sampled_from(["first", "last", "any"]),
        event=st.sampled_from(EVENTS),
        where=_filters(),
        window=windows,
    ),
    condition=st.recursive(leaves("cart"), _combine, max_leaves=3),
)

trees = st.recursive(st.one_of(leaves(), leaves(), correlated), _combine, max_leaves=5)
