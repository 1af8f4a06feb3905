"""Hypothesis strategies for random segment trees (shared by the DSL and reference tests)."""

from __future__ import annotations

from datetime import datetime

from hypothesis import strategies as st

from segmint.segments import model as m

_TEXT = st.characters(blacklist_categories=("Cs",))
NAMES = st.one_of(
    st.sampled_from(["product_viewed", "cart_added", "order_completed", "category", "price", "$page",
                     "상품_조회", "카테고리", "ever", "did", "not", "days", "times", "last", "a.b",
                     "back`tick", "with space", "x\\y"]),
    st.text(_TEXT, min_size=1, max_size=6),
)
SCALARS = st.one_of(
    st.text(_TEXT, max_size=8),
    st.booleans(),
    st.integers(min_value=-(10**12), max_value=10**12),
    st.floats(allow_nan=False, allow_infinity=False, width=64),
)
DATES = st.datetimes(min_value=datetime(1970, 1, 1), max_value=datetime(2100, 1, 1))
DURATIONS = st.builds(m.Duration, amount=st.integers(0, 400), unit=st.sampled_from(list(m.UNIT_SECONDS)))
PATHS = st.lists(NAMES, min_size=1, max_size=3)
FACTORS = st.one_of(st.none(), st.floats(min_value=-1e6, max_value=1e6, allow_nan=False))

scalar_lists = st.one_of(
    st.lists(st.text(_TEXT, max_size=5), min_size=1, max_size=3),
    st.lists(st.integers(-1000, 1000), min_size=1, max_size=3),
    st.lists(st.booleans(), min_size=1, max_size=2),
)


def windows(anchors: bool = True) -> st.SearchStrategy:
    """Any window kind; anchor windows name `cart` (bound or not: the text round trip does not care)."""
    base = [
        st.just(m.EverWindow()),
        st.builds(m.LastWindow, duration=DURATIONS),
        st.builds(m.AgoWindow, duration=DURATIONS),
        st.builds(lambda a, b: m.BetweenWindow(start=min(a, b), end=max(a, b)), DATES, DATES),
        st.builds(m.BetweenWindow, start=DATES),
        st.builds(m.BetweenWindow, end=DATES),
        st.builds(m.EachWindow, periods=st.integers(1, 12),
                  unit=st.sampled_from(["days", "weeks", "months"])),
        st.builds(m.CalendarWindow, unit=st.sampled_from(["day", "week", "month"]),
                  zone=st.sampled_from(["user", "workspace"])),
    ]
    if anchors:
        base += [st.builds(m.AfterAnchorWindow, anchor=NAMES, within=st.one_of(st.none(), DURATIONS)),
                 st.builds(m.BeforeAnchorWindow, anchor=NAMES, within=st.one_of(st.none(), DURATIONS))]
    return st.one_of(*base)


def agg_exprs(depth: int = 1) -> st.SearchStrategy:
    """Aggregate expressions, optionally nested once in a filter."""
    fn = st.sampled_from(["count", "sum", "avg", "min", "max", "count_distinct"])
    return st.builds(
        lambda f, ev, p, w, win: m.AggregateExpr(fn=f, event=ev, property=None if f == "count" else p,
                                                 where=w, window=win),
        fn, NAMES, PATHS, st.lists(filters(depth - 1), max_size=2) if depth > 0 else st.just([]),
        windows(),
    )


def operands(depth: int = 1) -> st.SearchStrategy:
    """Single-value right-hand sides."""
    opts = [st.builds(m.Value, value=SCALARS), st.builds(m.DateTimeValue, value=DATES),
            st.builds(m.AnchorRef, anchor=NAMES, path=PATHS, factor=FACTORS),
            st.builds(m.TraitRef, name=NAMES, factor=FACTORS)]
    if depth > 0:
        opts.append(agg_exprs(depth - 1).flatmap(
            lambda a: FACTORS.map(lambda f: a.model_copy(update={"factor": f}))))
    return st.one_of(*opts)


def _filter(path, op, v, v2, lst):
    if op in m.NO_OPERAND_OPS:
        return m.PropertyFilter(path=path, op=op)
    if op in ("in", "not_in"):
        return m.PropertyFilter(path=path, op=op, value=m.ValueList(values=lst))
    if op == "between":
        return m.PropertyFilter(path=path, op=op, value=v, value2=v2)
    return m.PropertyFilter(path=path, op=op, value=v)


def filters(depth: int = 1) -> st.SearchStrategy:
    """Property filters with every operator."""
    ops = st.sampled_from(["eq", "ne", "gt", "gte", "lt", "lte", "between", "in", "not_in", "contains",
                           "starts_with", "exists", "not_exists"])
    return st.builds(_filter, PATHS, ops, operands(depth), operands(depth), scalar_lists)


COUNTS = st.one_of(
    st.builds(m.CountSpec, op=st.sampled_from(["gte", "lte", "eq"]), n=st.integers(0, 20)),
    st.integers(0, 10).flatmap(lambda n: st.integers(n, 20).map(
        lambda n2: m.CountSpec(op="between", n=n, n2=n2))),
)
WHERE = st.lists(filters(), max_size=2)


def _trait(name, src, op, v, v2, lst, d):
    if src == "profile":
        name = "first_seen"
    if op in ("within_last", "older_than"):
        return m.TraitCondition(name=name, source=src, op=op, duration=d)
    f = _filter([name], op, v, v2, lst)
    return m.TraitCondition(name=name, source=src, op=op, value=f.value, value2=f.value2)


LEAVES = st.one_of(
    st.builds(_trait, NAMES, st.sampled_from(["trait", "profile"]),
              st.sampled_from(["eq", "ne", "gt", "between", "in", "not_in", "contains", "starts_with",
                               "exists", "not_exists", "within_last", "older_than", "lte"]),
              operands(), operands(), scalar_lists, DURATIONS),
    st.builds(m.Performed, event=NAMES, where=WHERE, count=COUNTS, window=windows(),
              new_profiles=st.sampled_from(["include", "exclude"])),
    st.builds(lambda a, op, v, v2: m.AggregateCondition(agg=a, op=op, value=v,
                                                        value2=v2 if op == "between" else None),
              agg_exprs(), st.sampled_from(["eq", "ne", "gt", "gte", "lt", "lte", "between"]), operands(),
              operands()),
    st.builds(m.FirstCondition, event=NAMES, where=WHERE, window=windows()),
    st.builds(m.LastCondition, event=NAMES, where=WHERE, window=windows()),
    st.builds(m.Sequence, steps=st.lists(st.builds(m.Step, event=NAMES, where=WHERE), min_size=2, max_size=3),
              within=st.one_of(st.none(), DURATIONS), window=windows()),
    st.builds(lambda s, w, win: m.Sequence(steps=s, within=w, window=win, followed=False),
              st.lists(st.builds(m.Step, event=NAMES, where=WHERE), min_size=2, max_size=2),
              st.one_of(st.none(), DURATIONS), windows()),
    st.builds(m.Streak, channel=st.text(_TEXT, max_size=5), n=st.integers(1, 10), sent_event=NAMES,
              response_event=NAMES),
    st.builds(m.IntervalRatio, event=NAMES, where=WHERE, factor=st.floats(0.01, 100),
              min_gaps=st.integers(1, 5)),
    st.builds(m.InSegment, segment=st.text(_TEXT, min_size=1, max_size=8)),
)


def _extend(children: st.SearchStrategy) -> st.SearchStrategy:
    return st.one_of(
        st.builds(m.And, items=st.lists(children, min_size=2, max_size=3)),
        st.builds(m.Or, items=st.lists(children, min_size=2, max_size=3)),
        st.builds(m.Not, item=children),
        st.builds(m.Correlated,
                  anchor=st.builds(m.Anchor, name=NAMES, pick=st.sampled_from(["first", "last", "any"]),
                                   event=NAMES, where=WHERE, window=windows()),
                  condition=children),
    )


TREES = st.recursive(LEAVES, _extend, max_leaves=6)
