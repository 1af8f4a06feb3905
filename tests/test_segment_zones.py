"""Calendar windows follow the workspace's zone (or the user's) in explain and SQL alike, not Asia/Seoul."""

from __future__ import annotations

from datetime import datetime

from segmint.segments import dsl
from segmint.segments.evaluate import evaluate
from segmint.segments.reference import evaluate_user
from segmint.store.base import ProfileUpdate, WriteBatch
from segmint.store.duckdb import DuckDBEventStore
from segmint.store.schema import events_to_arrow

AS_OF = datetime(2024, 6, 1, 12, 0)  # UTC: 21:00 in Seoul (June 1), 05:00 in Los Angeles (June 1)
# 2024-06-01 06:00 UTC is 15:00 June 1 in Seoul, 23:00 May 31 in Los Angeles
OPENED = datetime(2024, 6, 1, 6, 0)


def _store(workspace_tz: str, user_tz: str | None) -> DuckDBEventStore:
    store = DuckDBEventStore(":memory:")
    store.workspace_tz = workspace_tz
    row = {"message_id": "m1", "type": "track", "event": "app_opened", "user_id": "u1", "anonymous_id": None,
           "ts": OPENED, "received_at": OPENED, "properties": {}, "source": "test"}
    store.write(WriteBatch(events=events_to_arrow([row]), profiles=[ProfileUpdate("u1", {}, OPENED, user_tz)]))
    return store


def _both(store: DuckDBEventStore, text: str) -> tuple[bool, bool]:
    tree = dsl.parse(text)
    return evaluate_user(tree, store, "u1", AS_OF).result, evaluate(store, tree, AS_OF) == ["u1"]


def test_explain_and_sql_use_the_stores_workspace_zone() -> None:
    """`today in workspace zone`: the event is today in Seoul, yesterday in Los Angeles."""
    text = "did app_opened today in workspace zone"
    seoul, la = _store("Asia/Seoul", None), _store("America/Los_Angeles", None)
    try:
        assert _both(seoul, text) == (True, True)
        assert _both(la, text) == (False, False)
    finally:
        seoul.close()
        la.close()


def test_user_zone_wins_over_the_workspace_zone() -> None:
    """`today` uses the user's zone when known; an unknown zone name falls back to the workspace's."""
    text = "did app_opened today"
    in_la = _store("Asia/Seoul", "America/Los_Angeles")
    unknown = _store("America/Los_Angeles", "Mars/Olympus")
    try:
        assert _both(in_la, text) == (False, False)
        assert _both(unknown, text) == (False, False)
    finally:
        in_la.close()
        unknown.close()
