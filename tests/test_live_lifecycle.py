"""Live segments beyond events and time: deleting a segment closes its memberships (cause `edit`, with
`segment_exited` events), a static segment's frozen list is recorded as membership (cause `manual`), a segment
deleted while no engine ran is closed at the next start, and threaded sweeps are spread over the interval."""

from __future__ import annotations

from datetime import timedelta

import pytest

from segmint.config import LiveConfig
from segmint.segments import saved
from segmint.segments.live import ENTERED, EXITED, LiveSegments, current_members, history, transitions
from test_live import T0, Clock, check_consistent, send


def _engine(ws, clock: Clock, *, timers: bool = True) -> LiveSegments:
    return LiveSegments(ws.store, ws.appdb, config=LiveConfig(sweep_interval_seconds=60, timers=timers),
                        workspace_tz="Asia/Seoul", clock=clock)


def _segment_events(ws, segment: str) -> list[tuple[str, str, str]]:
    rows = ws.store.query(
        "SELECT user_id, event, properties->>'cause' AS cause FROM events WHERE event IN ($e, $x) "
        "AND properties->>'segment' = $s ORDER BY ts, user_id, event", {"e": ENTERED, "x": EXITED, "s": segment})
    return [(r["user_id"], r["event"], r["cause"]) for r in rows.to_pylist()]


@pytest.fixture
def clock() -> Clock:
    return Clock(T0)


def test_deleting_a_dynamic_segment_closes_memberships_with_exit_events(workspace, clock):
    ws = workspace
    saved.create_segment(ws.appdb, "buyers", "did purchase")
    saved.create_segment(ws.appdb, "openers", "did app_open")
    send(ws, None, ("a", "purchase", T0 - timedelta(hours=1)), ("b", "purchase", T0 - timedelta(hours=1)),
         ("a", "app_open", T0 - timedelta(hours=1)))
    live = _engine(ws, clock)
    live.start(thread=False)
    live.step(clock())
    assert current_members(ws.store, "buyers") == ["a", "b"]

    deleted_at = clock.advance(seconds=30)
    saved.delete_segment(ws.appdb, "buyers")
    res = live.step(clock())
    assert sorted((c.segment, c.user_id, c.kind, c.cause, c.ts) for c in res.changes) == [
        ("buyers", "a", "exit", "edit", deleted_at), ("buyers", "b", "exit", "edit", deleted_at)]
    assert current_members(ws.store, "buyers") == [] and "buyers" not in live.tracked
    assert [(h["user_id"], h["exited_at"], h["exit_cause"]) for h in history(ws.store, "buyers")] == [
        ("a", deleted_at, "edit"), ("b", deleted_at, "edit")]
    assert _segment_events(ws, "buyers") == [("a", ENTERED, "edit"), ("b", ENTERED, "edit"),
                                             ("a", EXITED, "edit"), ("b", EXITED, "edit")]
    # the other segment is untouched, and a later step records nothing more
    clock.advance(seconds=61)
    assert live.step(clock()).changes == []
    assert current_members(ws.store, "openers") == ["a"]
    check_consistent(ws, live, clock())


def test_static_lists_are_recorded_as_manual_membership(workspace, clock):
    ws = workspace
    send(ws, None, *[(u, "app_open", T0 - timedelta(days=1)) for u in ("a", "b", "c")])
    saved.create_segment(ws.appdb, "vip", "did app_open", kind="static")
    saved.freeze_members(ws.appdb, ws.store, "vip", members=["a", "b"])
    live = _engine(ws, clock)
    live.start(thread=False)  # a list stored before the engine started is recorded at the start
    live.step(clock())
    assert current_members(ws.store, "vip") == ["a", "b"] and live.members("vip") == ["a", "b"]
    assert {(r["user_id"], r["kind"], r["cause"], r["version"]) for r in transitions(ws.store, "vip")} == {
        ("a", "enter", "manual", 1), ("b", "enter", "manual", 1)}

    # a new version with another list: the difference is recorded, nothing else
    clock.advance(seconds=5)
    saved.update_segment(ws.appdb, "vip", definition="did app_open at least 2 times")
    saved.freeze_members(ws.appdb, ws.store, "vip", members=["b", "c"])
    res = live.step(clock())
    assert sorted((c.user_id, c.kind, c.cause, c.version) for c in res.changes) == [
        ("a", "exit", "manual", 2), ("c", "enter", "manual", 2)]
    assert current_members(ws.store, "vip") == ["b", "c"]

    # a restart records nothing again (the list is already the membership)
    live.stop()
    again = _engine(ws, clock)
    again.start(thread=False)
    assert again.step(clock()).changes == []

    # deleting it closes the list with cause edit
    clock.advance(seconds=5)
    saved.delete_segment(ws.appdb, "vip")
    res = again.step(clock())
    assert sorted((c.user_id, c.kind, c.cause) for c in res.changes) == [("b", "exit", "edit"), ("c", "exit", "edit")]
    assert current_members(ws.store, "vip") == []
    assert _segment_events(ws, "vip")[-2:] == [("b", EXITED, "edit"), ("c", EXITED, "edit")]


def test_dynamic_made_static_keeps_its_members_as_the_list(workspace, clock):
    ws = workspace
    saved.create_segment(ws.appdb, "buyers", "did purchase")
    send(ws, None, ("a", "purchase", T0 - timedelta(hours=1)))
    live = _engine(ws, clock)
    live.start(thread=False)
    live.step(clock())
    clock.advance(seconds=5)
    saved.update_segment(ws.appdb, "buyers", kind="static")
    saved.freeze_members(ws.appdb, ws.store, "buyers")  # frozen as of now: ["a"]
    assert live.step(clock()).changes == []  # same members: no transition
    assert "buyers" not in live.tracked and live.members("buyers") == ["a"]
    clock.advance(seconds=5)
    send(ws, live, ("b", "purchase", clock()))  # a frozen list does not follow events
    assert live.step(clock()).changes == []
    assert current_members(ws.store, "buyers") == ["a"]


def test_segment_deleted_while_stopped_is_closed_at_start(workspace, clock):
    ws = workspace
    saved.create_segment(ws.appdb, "buyers", "did purchase")
    send(ws, None, ("a", "purchase", T0 - timedelta(hours=1)))
    live = _engine(ws, clock)
    live.start(thread=False)
    live.step(clock())
    live.stop()
    saved.delete_segment(ws.appdb, "buyers")
    restarted_at = clock.advance(minutes=10)
    again = _engine(ws, clock)
    again.start(thread=False)
    rows = transitions(ws.store, "buyers")
    assert [(r["user_id"], r["kind"], r["cause"], r["ts"]) for r in rows] == [
        ("a", "exit", "edit", restarted_at), ("a", "enter", "edit", T0)]
    again.stop()
    third = _engine(ws, clock)
    third.start(thread=False)  # nothing left open: nothing recorded twice
    assert len(transitions(ws.store, "buyers")) == 2


def test_threaded_sweeps_are_spread_and_never_later_than_the_interval(workspace, clock):
    ws = workspace
    for i in range(6):
        saved.create_segment(ws.appdb, f"s{i}", f"did e{i} in last 1 hour")
    live = _engine(ws, clock)
    live.refresh(clock())
    interval = timedelta(seconds=60)
    for after in (T0, T0 + timedelta(seconds=59, microseconds=7), T0 + timedelta(hours=5, seconds=1)):
        due = {n: live._grid(n, after) for n in live.tracked}
        assert all(after < at <= after + interval for at in due.values())
        # one per tenth of the interval: phases 0, 10, ... 50 s apart
        offsets = sorted((at - after) % timedelta(seconds=10) for at in due.values())
        assert len(set(offsets)) == 1 and len(set(due.values())) == 6
    live._due = {n: live._grid(n, T0) for n in live.tracked}
    first = min(live._due.values())
    assert live._next_due(first - timedelta(microseconds=1)) is None
    assert live._next_due(first) == min(live._due, key=live._due.__getitem__)


def test_sweep_dated_off_thread_keeps_users_the_live_thread_moved_meanwhile(workspace, clock):
    ws = workspace
    saved.create_segment(ws.appdb, "recent", "did purchase in last 1 hour")
    bought = T0 - timedelta(minutes=59)
    send(ws, None, ("u1", "purchase", bought), ("u2", "purchase", bought))
    live = _engine(ws, clock, timers=False)  # the sweep is what is tested here
    live.start(thread=False)
    live.step(clock())
    assert live.members("recent") == ["u1", "u2"]

    swept = clock.advance(minutes=2)  # both windows closed at bought + 1 h
    b = live._bulk_query("recent", "sweep", swept)  # what the sweeper thread does: query, read, date
    assert b is not None and b.dated is not None
    assert sorted((c.user_id, c.kind, c.ts) for c in b.dated[0]) == [
        ("u1", "exit", bought + timedelta(hours=1)), ("u2", "exit", bought + timedelta(hours=1))]
    clock.advance(seconds=1)  # meanwhile u1 buys again and the live thread records its step first
    send(ws, live, ("u1", "purchase", clock()))
    live.step(clock(), sweep=False)
    changes = live._apply_bulk(b)
    closed = bought + timedelta(hours=1)
    assert [(c.user_id, c.kind, c.cause, c.ts) for c in changes] == [("u2", "exit", "time", closed)]
    assert live.perf["predated"] == 1
    check_consistent(ws, live, clock())
