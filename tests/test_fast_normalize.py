"""The pydantic-free hot path of ingestion must agree with the full model wherever it answers."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from segmint.errors import InvalidInput
from segmint.ingest.messages import fast_normalize, normalize, parse_message

NOW = datetime(2026, 11, 20, 3, 0, tzinfo=UTC)

ids = st.one_of(
    st.none(),
    st.just(""),
    st.text(min_size=1, max_size=8),
    st.integers(0, 99),
    st.booleans(),
    st.just("x" * 513),
)
times = st.one_of(
    st.none(),
    st.sampled_from(
        [
            "2026-11-20T10:00:00+09:00",
            "2026-11-20T01:00:00Z",
            "2026-11-20T01:00:00.123456",
            "2026-11-20T01:00:00.5Z",
            "2026-11-20",
            "yesterday",
            "2026-11-20T01:00:00.1234567Z",
            "2026-13-01T00:00:00Z",
        ]
    ),
    st.integers(0, 10**10),
)
objects = st.one_of(
    st.none(),
    st.just([1]),
    st.just("text"),
    st.dictionaries(
        st.sampled_from(["a", "timezone", "traits", "n"]),
        st.one_of(st.integers(), st.text(max_size=5), st.just({"plan": "gold", "timezone": "Asia/Seoul"})),
        max_size=3,
    ),
)
fields: dict[str, Any] = {
    "type": st.sampled_from(["track", "identify", "page", "screen", "group", "alias", "boom", 3]),
    "userId": ids,
    "anonymousId": ids,
    "messageId": ids,
    "previousId": ids,
    "groupId": ids,
    "event": st.one_of(
        st.none(), st.just(""), st.text(min_size=1, max_size=5), st.just("e" * 257), st.integers()
    ),
    "name": st.one_of(st.none(), st.text(max_size=4), st.integers()),
    "category": st.one_of(st.none(), st.text()),
    "timestamp": times,
    "originalTimestamp": times,
    "sentAt": times,
    "properties": objects,
    "traits": objects,
    "context": objects,
    "integrations": objects,
}
good_times = st.one_of(
    st.none(),
    st.sampled_from(
        [
            "2026-11-20T10:00:00+09:00",
            "2026-11-20T01:00:00Z",
            "2026-11-20T01:00:00.123456",
            "2026-11-20T01:00:00.5Z",
        ]
    ),
)
plain_dicts = st.dictionaries(
    st.sampled_from(["a", "timezone", "traits", "n"]),
    st.one_of(st.integers(), st.text(max_size=5), st.just({"plan": "gold", "timezone": "Asia/Seoul"})),
    max_size=3,
)
plain = st.fixed_dictionaries(
    {
        "type": st.sampled_from(["track", "identify", "page", "screen"]),
        "userId": st.text(min_size=1, max_size=6),
        "event": st.text(min_size=1, max_size=6),
    },
    optional={
        "anonymousId": st.text(min_size=1, max_size=6),
        "messageId": st.text(max_size=6),
        "timestamp": good_times,
        "originalTimestamp": good_times,
        "sentAt": good_times,
        "properties": plain_dicts,
        "traits": plain_dicts,
        "context": plain_dicts,
        "name": st.text(max_size=4),
        "category": st.text(max_size=4),
    },
)


@st.composite
def mutated(draw: st.DrawFn) -> dict[str, Any]:
    """A plain valid message with one field replaced by anything (valid or not) or dropped."""
    raw = draw(plain)
    key = draw(st.sampled_from(sorted(fields)))
    if draw(st.booleans()):
        raw.pop(key, None)
    else:
        raw[key] = draw(fields[key])
    return raw


messages = st.one_of(plain, mutated(), st.fixed_dictionaries({}, optional=fields))


def _slow(raw: dict[str, Any]) -> dict[str, Any] | None:
    try:
        return normalize(parse_message(raw), NOW, "http")
    except InvalidInput:
        return None


@settings(max_examples=800, deadline=None)
@given(messages)
def test_fast_path_agrees_with_the_model(raw: dict[str, Any]) -> None:
    fast = fast_normalize(raw, NOW, "http")
    if fast is None:
        return  # the full path decides
    slow = _slow(raw)
    assert slow is not None, "fast path accepted a message the model rejects"
    if not raw.get("messageId"):
        fast.pop("message_id"), slow.pop("message_id")  # both generated
    assert fast == slow


def test_fast_path_takes_the_common_shapes() -> None:
    common = [
        {
            "type": "track",
            "userId": "u1",
            "event": "Order Completed",
            "properties": {"revenue": 1},
            "timestamp": "2026-11-20T10:00:00+09:00",
            "messageId": "m1",
            "context": {"library": {"name": "x"}},
        },
        {"type": "identify", "userId": "u1", "traits": {"plan": "gold"}, "sentAt": "2026-11-20T01:00:00Z"},
        {"type": "page", "anonymousId": "a1", "name": "Home", "properties": {"path": "/"}},
        {"type": "identify", "userId": "u2", "context": {"traits": {"city": "Seoul"}}},
    ]
    for raw in common:
        fast = fast_normalize(raw, NOW)
        assert fast is not None
        slow = _slow(raw)
        assert slow is not None
        fast.pop("message_id"), slow.pop("message_id")
        assert fast == slow
