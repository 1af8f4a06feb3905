"""Hypothesis strategies for SQL-vs-reference equivalence: histories over the demo vocabulary, random trees.

Histories put timestamps exactly on window edges (and one microsecond either side), give several events
the same timestamp, mix nulls, missing keys, numeric text, booleans, unicode and hostile strings, and
include young profiles and users in other time zones (DST, half-hour offsets, +14 h, unknown names).
Timestamps also fall exactly on calendar edges (midnight in Seoul, Los Angeles, UTC, Kolkata and
Kiritimati; the Monday of the week), and message sends/opens feed streaks. Trait and property date texts
come in several ISO forms (offsets, fractions) and invalid ones.

Trees cover every node type: traits, performed (every window kind, `each`, calendar in the user's or the
workspace zone), aggregates (compared with numbers, traits, other aggregates; property filters compared
with aggregates), first/last, sequences (then / not followed by), streaks, interval ratios, saved
segments (`in segment`, resolved by SAVED), and `with` anchors nested two deep.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from hypothesis import strategies as st

from segmint.segments import model as m

AS_OF = datetime(2024, 6, 1, 12, 0, 0)
EVENTS = ["cart_added", "product_viewed", "order_completed", "review_viewed", "app_opened"]
MESSAGE_EVENTS = ["message_sent", "message_opened"]
CHANNELS = ["push", "email"]
CATEGORIES = ["뷰티", "패션", "식품", "x'; DROP TABLE events; --", 'q"uote', "a\\b\tc"]
PRODUCTS = ["p1", "p2", "p3", "샴푸"]
DAYS = [0, 1, 3, 7, 14, 30, 90]
# users' zones: DST (Los Angeles), half-hour offsets (Kolkata), +14 h, an unknown name (-> the workspace zone)
ZONES = ["Asia/Seoul", "America/Los_Angeles", "UTC", "Asia/Kolkata", "Pacific/Kiritimati", "Mars/Olympus", None]
WORKSPACE_ZONES = ["Asia/Seoul", "America/Los_Angeles", "UTC", "Asia/Kolkata"]
TYPED = {"category": "string", "price": "number"}  # declared columns (values honour these types)


def _offsets() -> st.SearchStrategy[timedelta]:
    edge = st.sampled_from(DAYS).flatmap(
        lambda d: st.sampled_from(
            [timedelta(days=d), timedelta(days=d, microseconds=1), timedelta(days=d, microseconds=-1)]
        )
    )
    free = st.integers(min_value=-2 * 86400, max_value=100 * 86400).map(lambda s: timedelta(seconds=s))
    # calendar edges before AS_OF (Sat 2024-06-01 12:00 UTC): midnight UTC / LA / Seoul, and that week's Monday
    # (Kolkata midnight is 18:30 UTC: 17.5 h before AS_OF; Kiritimati's day and month start 2 h and 26 h before)
    hours = (12, 5, 21, 17.5, 2, 26, 5 * 24 + 12, 5 * 24 + 5, 5 * 24 + 21, 5 * 24 + 17.5)
    cal = st.sampled_from([timedelta(hours=h) for h in hours]).flatmap(
        lambda d: st.sampled_from([d, d + timedelta(microseconds=1), d - timedelta(microseconds=1)])
    )
    return st.one_of(edge, edge, free, cal)


_price = st.one_of(
    st.none(),
    st.integers(-5, 50_000),
    st.sampled_from([0.5, 1e3, 19900.0]),
    st.sampled_from(["1000", "12.5", "abc", "", "1e3"]),
    st.booleans(),
)


_DATE_FORMS = [
    "%Y-%m-%d",
    "%Y-%m-%dT%H:%M:%S",
    "%Y-%m-%d %H:%M:%S.%f",
    "%Y-%m-%dT%H:%M",
    "%Y-%m-%dT%H:%M:%SZ",
    "%Y-%m-%dT%H:%M:%S+09:00",
    "%Y-%m-%dT%H:%M:%S.%f-07:30",
]


@st.composite
def _date_text(draw: st.DrawFn) -> Any:
    """Date text for date tests on traits: edge instants in several ISO forms, and text that is no date."""
    t = AS_OF - draw(_offsets())
    fmt = draw(st.sampled_from(_DATE_FORMS))
    if fmt.endswith("+09:00"):  # the same instant written in another zone
        t += timedelta(hours=9)
    elif fmt.endswith("-07:30"):
        t -= timedelta(hours=7, minutes=30)
    bad = st.sampled_from(
        [
            "2024-02-30",
            "2024-05-25T24:00:00",
            "1899-12-31",
            "2024-05-25T12:00:00.1234567",
            "yesterday",
            "",
            "2024-5-25",
            20240525,
            None,
        ]
    )
    return draw(st.one_of(st.just(t.strftime(fmt)), st.just(t.strftime(fmt)), bad))


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
    if draw(st.integers(0, 4)) == 0:
        props["when"] = draw(_date_text())
    return props


@st.composite
def message_properties(draw: st.DrawFn, refs: list[str]) -> dict[str, Any]:
    """Properties of message_sent / message_opened: a channel and a reference to a send (sometimes odd)."""
    props: dict[str, Any] = {}
    if draw(st.integers(0, 5)) > 0:
        props["channel"] = draw(st.one_of(st.sampled_from(CHANNELS), st.just(1), st.none()))
    if refs and draw(st.integers(0, 3)) > 0:
        props["message_id_ref"] = draw(st.one_of(st.sampled_from(refs), st.just(7)))
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
            if draw(st.integers(0, 3)) == 0:  # a message send or open
                name = draw(st.sampled_from(MESSAGE_EVENTS))
                refs = [e["message_id"] for e in events if e["event"] == "message_sent"] + [f"m{mid:05d}"]
                props = draw(message_properties(refs))
            else:
                name = draw(st.sampled_from(EVENTS))
                props = draw(properties())
            events.append({"message_id": f"m{mid:05d}", "event": name, "ts": ts, "properties": props})
        traits: dict[str, Any] = {}
        if draw(st.booleans()):
            traits["age"] = draw(st.one_of(st.integers(10, 70), st.sampled_from(["29", "n/a"]), st.none()))
        if draw(st.booleans()):
            traits["region"] = draw(st.sampled_from(["서울", "부산", "제주"]))
        if draw(st.booleans()):
            traits["consent_push"] = draw(st.booleans())
        if draw(st.booleans()):
            traits["signup"] = draw(_date_text())
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
    st.builds(
        m.CalendarWindow, unit=st.sampled_from(["day", "week", "month"]), zone=st.sampled_from(["user", "workspace"])
    ),
    st.builds(m.EachWindow, periods=st.integers(1, 4), unit=st.sampled_from(["days", "weeks"])),
)


Anchors = str | tuple[str, ...] | None


def _names(anchor: Anchors) -> st.SearchStrategy[str]:
    """One of the bound anchor names."""
    return st.sampled_from([anchor] if isinstance(anchor, str) else list(anchor or ()))


def _agg_expr(fn: str, event: str, window: Any, factor: float | None, where: list[Any]) -> m.AggregateExpr:
    return m.AggregateExpr(
        fn=fn, event=event, property=None if fn == "count" else ["price"], window=window, factor=factor, where=where
    )


def _avg_price(anchor: Anchors) -> st.SearchStrategy[m.AggregateExpr]:
    """The user's average / max price (or count) of an event, x factor: a right-hand side."""
    where = (
        st.just([])
        if not anchor
        else st.lists(
            st.builds(
                m.PropertyFilter,
                path=st.just(["category"]),
                op=st.just("eq"),
                value=st.builds(m.AnchorRef, anchor=_names(anchor), path=st.just(["category"])),
            ),
            max_size=1,
        )
    )
    return st.builds(
        _agg_expr,
        st.sampled_from(["avg", "max", "count"]),
        st.sampled_from(EVENTS),
        st.sampled_from([m.EverWindow(), m.LastWindow(duration=m.Duration(amount=7, unit="days"))]),
        st.sampled_from([None, 2.0, 0.5]),
        where,
    )


def _filters(anchor: Anchors = None) -> st.SearchStrategy[list[m.PropertyFilter]]:
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
    vs_agg = st.builds(
        m.PropertyFilter, path=st.just(["price"]), op=st.sampled_from(["gte", "lt"]), value=_avg_price(anchor)
    )
    when = st.builds(
        m.PropertyFilter,
        path=st.just(["when"]),
        op=st.sampled_from(["gt", "lte", "eq"]),
        value=st.builds(m.DateTimeValue, value=st.sampled_from([AS_OF - timedelta(days=d) for d in DAYS])),
    )
    options = [cat, cat_in, price, price_b, pid, ex, nested, vs_agg, when]
    if anchor:
        ref = st.builds(
            m.AnchorRef, anchor=_names(anchor), path=st.sampled_from([["category"], ["product_id"], ["price"]])
        )
        options.append(
            st.builds(
                m.PropertyFilter,
                path=st.sampled_from([["category"], ["product_id"], ["price"]]),
                op=st.sampled_from(["eq", "ne", "gte"]),
                value=ref,
            )
        )
        # between with an anchor property as one or both bounds (mixed kinds never match)
        bound = st.one_of(ref, st.builds(m.Value, value=st.sampled_from([0, 1000, "p", "뷰티", 20000])))
        options.append(
            st.builds(
                m.PropertyFilter,
                path=st.sampled_from([["category"], ["product_id"], ["price"]]),
                op=st.just("between"),
                value=st.one_of(ref, bound),
                value2=ref,
            )
        )
        options.append(
            st.builds(
                m.PropertyFilter,
                path=st.sampled_from([["category"], ["price"]]),
                op=st.just("between"),
                value=ref,
                value2=bound,
            )
        )
    return st.lists(st.one_of(*options), max_size=2)


_count = st.one_of(
    st.builds(m.CountSpec, op=st.sampled_from(["gte", "lte", "eq"]), n=st.integers(0, 3)),
    st.builds(m.CountSpec, op=st.just("between"), n=st.just(1), n2=st.integers(1, 3)),
)


def _windows(anchor: Anchors = None) -> st.SearchStrategy[Any]:
    """Windows, with windows relative to a bound anchor when there is one."""
    if not anchor:
        return windows
    return st.one_of(
        windows,
        st.builds(m.AfterAnchorWindow, anchor=_names(anchor), within=st.one_of(st.none(), _dur)),
        st.builds(m.BeforeAnchorWindow, anchor=_names(anchor), within=st.one_of(st.none(), _dur)),
    )


def performed(anchor: Anchors = None) -> st.SearchStrategy[m.Performed]:
    """A Performed leaf (anchor windows when an anchor is bound)."""
    w = _windows(anchor)
    return st.builds(
        m.Performed,
        event=st.sampled_from(EVENTS),
        where=_filters(anchor),
        count=_count,
        window=w,
        new_profiles=st.sampled_from(["include", "include", "exclude"]),
    )


def aggregate(anchor: Anchors = None) -> st.SearchStrategy[m.AggregateCondition]:
    """An aggregate over price compared with a number, the user's age trait, or another aggregate."""
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
        _avg_price(anchor),
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
    st.builds(  # "signed up within the last 7 days": a trait holding date text
        m.TraitCondition,
        name=st.just("signup"),
        op=st.sampled_from(["within_last", "older_than"]),
        duration=_dur,
    ),
    st.builds(
        m.TraitCondition,
        name=st.sampled_from(["signup", "first_seen"]),
        source=st.just("trait"),
        op=st.sampled_from(["gt", "gte", "lt", "lte", "eq", "ne"]),
        value=st.builds(m.DateTimeValue, value=st.sampled_from([AS_OF - timedelta(days=d) for d in DAYS])),
    ),
    st.builds(
        m.TraitCondition,
        name=st.sampled_from(["signup"]),
        op=st.just("between"),
        value=st.builds(m.DateTimeValue, value=st.sampled_from([AS_OF - timedelta(days=d) for d in (30, 7)])),
        value2=st.builds(m.DateTimeValue, value=st.sampled_from([AS_OF - timedelta(days=d) for d in (1, 0)])),
    ),
    st.builds(
        m.TraitCondition,
        name=st.just("first_seen"),
        source=st.just("profile"),
        op=st.sampled_from(["gt", "lte"]),
        value=st.builds(m.DateTimeValue, value=st.sampled_from([AS_OF - timedelta(days=d) for d in DAYS])),
    ),
)


def sequence(anchor: Anchors = None) -> st.SearchStrategy[m.Sequence]:
    """E1 then E2 [then E3] within T, or E1 not followed by E2 within T (window of the first step)."""
    steps = st.builds(m.Step, event=st.sampled_from(EVENTS), where=_filters(anchor))
    within = st.one_of(st.none(), _dur, st.just(m.Duration(amount=0, unit="days")))
    return st.one_of(
        st.builds(m.Sequence, steps=st.lists(steps, min_size=2, max_size=3), within=within, window=_windows(anchor)),
        st.builds(
            m.Sequence,
            steps=st.lists(steps, min_size=2, max_size=2),
            within=within,
            window=_windows(anchor),
            followed=st.just(False),
        ),
    )


streak = st.builds(m.Streak, channel=st.sampled_from(CHANNELS), n=st.integers(1, 3))
interval_ratio = st.builds(
    m.IntervalRatio,
    event=st.sampled_from([*EVENTS, "message_sent"]),
    where=st.lists(st.builds(m.PropertyFilter, path=st.just(["price"]), op=st.just("exists")), max_size=1),
    factor=st.sampled_from([0.5, 1.0, 2.0, 3.0]),
    min_gaps=st.integers(1, 3),
)


def _ir_anchor(anchor: Anchors) -> st.SearchStrategy[m.IntervalRatio]:
    """Interval ratio whose events must share the anchor's category."""
    return st.builds(
        m.IntervalRatio,
        event=st.sampled_from(EVENTS),
        factor=st.sampled_from([1.0, 2.0]),
        where=st.just(
            [
                m.PropertyFilter(
                    path=["category"],
                    op="eq",
                    value=m.AnchorRef(anchor=anchor if isinstance(anchor, str) else anchor[-1], path=["category"]),
                )
            ]
        ),
    )


# saved segments for `in segment` (the reference resolves them; the SQL side compiles them inlined)
SAVED: dict[str, m.Condition] = {
    "buyers": m.Performed(event="order_completed", window=m.LastWindow(duration=m.Duration(amount=30, unit="days"))),
    "viewers_not_buyers": m.And(
        items=[
            m.Performed(event="product_viewed", count=m.CountSpec(op="gte", n=2)),
            m.Not(item=m.InSegment(segment="buyers")),
        ]
    ),
    "carts_this_week": m.Correlated(
        anchor=m.Anchor(name="c", pick="last", event="cart_added", window=m.CalendarWindow(unit="week")),
        condition=m.Performed(
            event="order_completed", count=m.CountSpec(op="eq", n=0), window=m.AfterAnchorWindow(anchor="c")
        ),
    ),
}
in_segment = st.builds(m.InSegment, segment=st.sampled_from(sorted(SAVED)))


def resolve(name: str) -> m.Condition:
    """The SAVED tree for a segment name."""
    return SAVED[name]


def leaves(anchor: Anchors = None) -> st.SearchStrategy[Any]:
    """Any leaf condition."""
    opts = [
        performed(anchor),
        performed(anchor),
        aggregate(anchor),
        first_last,
        traits,
        sequence(anchor),
        streak,
        interval_ratio,
        in_segment,
    ]
    if anchor:
        opts.append(_ir_anchor(anchor))
    return st.one_of(*opts)


def _combine(children: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(
        st.builds(m.And, items=st.lists(children, min_size=2, max_size=3)),
        st.builds(m.Or, items=st.lists(children, min_size=2, max_size=3)),
        st.builds(m.Not, item=children),
    )


_inner = st.builds(
    m.Correlated,
    anchor=st.builds(
        m.Anchor,
        name=st.just("item"),
        pick=st.sampled_from(["first", "last", "any"]),
        event=st.sampled_from(EVENTS),
        where=_filters("cart"),
        window=_windows("cart"),
    ),
    condition=st.recursive(leaves(("cart", "item")), _combine, max_leaves=2),
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
    condition=st.recursive(st.one_of(leaves("cart"), leaves("cart"), _inner), _combine, max_leaves=3),
)

trees = st.recursive(st.one_of(leaves(), leaves(), correlated), _combine, max_leaves=5)
