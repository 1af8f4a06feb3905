"""The ingest pipeline: journal -> store, identity stitching, dedupe, replay after a crash."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from segmint.ingest.journal import Journal
from segmint.ingest.messages import normalize, parse_message
from segmint.ingest.pipeline import Ingestor
from segmint.workspace import Workspace

NOW = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


def _ev(raw: dict, received: datetime = NOW) -> dict:
    return normalize(parse_message(raw), received)


def _ingestor(ws: Workspace) -> Ingestor:
    ing = Ingestor(ws.store, Journal(ws.journal_dir), flush_interval=0.01)
    ing.start()
    return ing


def test_events_stored_with_identity_and_traits(workspace: Workspace) -> None:
    ing = _ingestor(workspace)
    ing.submit([
        _ev({"type": "track", "anonymousId": "a1", "event": "product_viewed", "messageId": "m1",
             "timestamp": "2026-11-01T01:00:00Z"}),
        _ev({"type": "identify", "anonymousId": "a1", "userId": "u1", "messageId": "m2",
             "traits": {"age": 27, "gender": "F", "timezone": "Asia/Seoul"}}),
    ])
    ing.submit([_ev({"type": "track", "anonymousId": "a1", "event": "cart_added", "messageId": "m3"})])
    assert ing.wait_stored()
    rows = workspace.store.query("SELECT message_id, user_id FROM events ORDER BY message_id").to_pylist()
    assert rows == [{"message_id": "m1", "user_id": "u1"}, {"message_id": "m2", "user_id": "u1"},
                    {"message_id": "m3", "user_id": "u1"}]
    prof = workspace.store.query("SELECT traits::VARCHAR AS t, timezone FROM profiles WHERE user_id='u1'").to_pylist()
    assert prof[0]["timezone"] == "Asia/Seoul" and '"age":27' in prof[0]["t"]
    ing.stop()


def test_anonymous_history_counts_towards_first_seen(workspace: Workspace) -> None:
    ing = _ingestor(workspace)
    ing.submit([_ev({"type": "track", "anonymousId": "a9", "event": "app_opened", "messageId": "x1",
                     "timestamp": "2026-10-01T00:00:00Z"})])
    assert ing.wait_stored()
    ing.submit([_ev({"type": "identify", "anonymousId": "a9", "userId": "u9", "messageId": "x2",
                     "timestamp": "2026-10-05T00:00:00Z"})])
    assert ing.wait_stored()
    ing.stop()
    row = workspace.store.query("SELECT first_seen, last_seen FROM profiles WHERE user_id = 'u9'").to_pylist()
    assert row == [{"first_seen": datetime(2026, 10, 1), "last_seen": datetime(2026, 10, 5)}]


def test_duplicate_message_ids_are_stored_once(workspace: Workspace) -> None:
    ing = _ingestor(workspace)
    ev = {"type": "track", "userId": "u1", "event": "x", "messageId": "dup"}
    ing.submit([_ev(ev), _ev(ev)])
    ing.wait_stored()
    ing.submit([_ev(ev)])
    ing.wait_stored()
    ing.stop()
    assert workspace.store.query("SELECT count(*) AS n FROM events").to_pylist() == [{"n": 1}]
    assert ing.stats["duplicates"] == 2


def test_clock_skew_corrected_with_sent_at() -> None:
    received = NOW
    ev = _ev({"type": "track", "userId": "u", "event": "e", "timestamp": "2026-11-01T13:00:00Z",
              "sentAt": "2026-11-01T13:00:10Z"}, received)
    # client clock is one hour fast: the event happened 10 s before it reached us
    assert datetime.fromisoformat(ev["ts"]) == received - timedelta(seconds=10)


def test_journal_replayed_after_crash(workspace: Workspace) -> None:
    journal = Journal(workspace.journal_dir)
    ing = Ingestor(workspace.store, journal)
    # accepted (fsynced) but the writer never ran: simulates kill -9 right after the 2xx
    ing.submit([_ev({"type": "track", "userId": "u1", "event": "x", "messageId": f"m{i}"}) for i in range(5)])
    journal.close()
    with open(next(workspace.journal_dir.glob("*.log")), "ab") as f:
        f.write(b"\x00\x00\x01\x00torn")  # a partial record from a request that was never acknowledged
    ing2 = Ingestor(workspace.store, Journal(workspace.journal_dir))
    ing2.start()
    ing2.stop()
    assert workspace.store.query("SELECT count(*) AS n FROM events").to_pylist() == [{"n": 5}]
    # a second restart replays nothing more
    ing3 = Ingestor(workspace.store, Journal(workspace.journal_dir))
    ing3.start()
    ing3.stop()
    assert workspace.store.query("SELECT count(*) AS n FROM events").to_pylist() == [{"n": 5}]
