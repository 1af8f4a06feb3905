"""Next-change timers of live segments, driven by a simulated clock with NO sweep: a window's end is recorded at
its exact instant by the timer alone, an event moves the timer, an edit drops the old timers, the timers survive
a restart (and fire once), and at every step the history equals the as-of evaluation."""

from __future__ import annotations

import random
from datetime import timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from segmint.config import LiveConfig
from segmint.segments import live_log, saved
from segmint.segments.dsl import parse
from segmint.segments.live import LiveSegments, transitions
from segmint.segments.live_timers import LiveTimerRow, due_query, uncovered
from segmint.segments.live_times import footprint, next_change
from segmint.segments.reference import Event, Profile
from test_live import T0, Clock, check_consistent, members_from_history, send

SEG = "recent_openers"


def _engine(ws, clock: Clock) -> LiveSegments:
    return LiveSegments(ws.store, ws.appdb, config=LiveConfig(sweep_interval_seconds=60, timers=True),
                        workspace_tz="Asia/Seoul", clock=clock)


def _stored_timers(ws, segment: str) -> dict[str, tuple[int, object]]:
    with Session(ws.appdb) as s:
        rows = s.execute(select(LiveTimerRow.user_id, LiveTimerRow.version, LiveTimerRow.due)
                         .where(LiveTimerRow.segment == segment)).all()
    return {u: (v, d) for u, v, d in rows}


def _sweeps(ws, segment: str) -> int:
    return len(live_log.list_evaluations(ws.appdb, segment, kind="sweep"))


@pytest.fixture
def clock() -> Clock:
    return Clock(T0)


def test_window_end_is_recorded_by_the_timer_at_the_exact_instant_without_a_sweep(workspace, clock):
    ws = workspace
    saved.create_segment(ws.appdb, SEG, "did app_opened in last 14 days")
    opened = T0 - timedelta(hours=5, seconds=3, microseconds=17)
    send(ws, None, ("u1", "app_opened", opened), ("u2", "app_opened", T0 - timedelta(days=30)))
    live = _engine(ws, clock)
    live.start(thread=False)
    live.step(clock(), sweep=False)  # the edit evaluation (creation) enters u1 and sets its timer
    assert live.members(SEG) == ["u1"]
    assert live.timers.due[SEG] == {"u1": (opened + timedelta(days=14), T0)}
    assert _stored_timers(ws, SEG) == {"u1": (1, opened + timedelta(days=14))}  # flushed with the step

    clock.t = opened + timedelta(days=14) - timedelta(microseconds=1)
    assert live.step(clock(), sweep=False).changes == []  # not due yet
    clock.t = opened + timedelta(days=14, seconds=1)
    res = live.step(clock(), sweep=False)
    assert [(c.user_id, c.kind, c.cause, c.ts) for c in res.changes] == [
        ("u1", "exit", "time", opened + timedelta(days=14))]
    assert _sweeps(ws, SEG) == 0  # no sweep ran: the timer alone found it
    assert live.timers.due[SEG] == {} and _stored_timers(ws, SEG) == {}
    assert live.perf["timers_fired"] == 1 and live.perf["timer_changes"] == 1
    check_consistent(ws, live, clock())


def test_an_event_before_the_due_time_moves_the_timer(workspace, clock):
    ws = workspace
    saved.create_segment(ws.appdb, SEG, "did app_opened in last 14 days")
    send(ws, None, ("u1", "app_opened", T0 - timedelta(days=1)))
    live = _engine(ws, clock)
    live.start(thread=False)
    live.step(clock(), sweep=False)
    assert live.timers.due[SEG]["u1"][0] == T0 + timedelta(days=13)

    again = clock.advance(days=10)
    send(ws, live, ("u1", "app_opened", again))
    live.step(clock(), sweep=False)  # the per-user path sets the user's timer again
    assert live.timers.due[SEG]["u1"][0] == again + timedelta(days=14)
    assert _stored_timers(ws, SEG)["u1"][1] == again + timedelta(days=14)

    clock.t = T0 + timedelta(days=13, seconds=1)  # the old due time passes: nothing happens
    assert live.step(clock(), sweep=False).changes == []
    assert live.members(SEG) == ["u1"] and live.perf["timers_fired"] == 0
    clock.t = again + timedelta(days=14, milliseconds=300)
    res = live.step(clock(), sweep=False)
    assert [(c.kind, c.cause, c.ts) for c in res.changes] == [("exit", "time", again + timedelta(days=14))]
    check_consistent(ws, live, clock())


def test_dormancy_enters_by_timer_and_an_event_arriving_after_the_due_time_is_dated_after_it(workspace, clock):
    ws = workspace
    saved.create_segment(ws.appdb, "dormant", "did app_opened and did not app_opened in last 2 hours")
    opened = T0 - timedelta(minutes=30)
    send(ws, None, ("u1", "app_opened", opened))
    live = _engine(ws, clock)
    live.start(thread=False)
    live.step(clock(), sweep=False)
    assert live.members("dormant") == []
    # the step runs 40 s after the due time, and an app_opened 10 s after the due time is in the same step:
    # the timer comes first (enter at the due time), then the per-user path (exit at the event)
    due = opened + timedelta(hours=2)
    clock.t = due + timedelta(seconds=40)
    send(ws, live, ("u1", "app_opened", due + timedelta(seconds=10)))
    live.step(clock(), sweep=False)
    rows = transitions(ws.store, "dormant", "u1")
    assert [(r["kind"], r["cause"], r["ts"]) for r in rows] == [
        ("exit", "event", due + timedelta(seconds=10)), ("enter", "time", due)]
    assert live.timers.due["dormant"]["u1"][0] == due + timedelta(hours=2, seconds=10)
    check_consistent(ws, live, clock())


def test_editing_the_definition_drops_the_old_timers(workspace, clock):
    ws = workspace
    saved.create_segment(ws.appdb, SEG, "did app_opened in last 14 days")
    send(ws, None, ("u1", "app_opened", T0 - timedelta(days=1)), ("u2", "app_opened", T0 - timedelta(days=3)))
    live = _engine(ws, clock)
    live.start(thread=False)
    live.step(clock(), sweep=False)
    assert {u: d for u, (d, _) in live.timers.due[SEG].items()} == {
        "u1": T0 + timedelta(days=13), "u2": T0 + timedelta(days=11)}

    clock.advance(seconds=5)
    saved.update_segment(ws.appdb, SEG, definition="did app_opened in last 2 days")
    live.step(clock(), sweep=False)  # version 2: u2 leaves by the edit; u1's timer is the new window's
    assert live.timers.meta[SEG][0] == 2
    assert {u: d for u, (d, _) in live.timers.due[SEG].items()} == {"u1": T0 + timedelta(days=1)}
    assert _stored_timers(ws, SEG) == {"u1": (2, T0 + timedelta(days=1))}
    clock.t = T0 + timedelta(days=11, seconds=1)  # the old version's due times: nothing fires for them
    res = live.step(clock(), sweep=False)
    assert [(c.user_id, c.kind, c.cause, c.version, c.ts) for c in res.changes] == [
        ("u1", "exit", "time", 2, T0 + timedelta(days=1))]
    check_consistent(ws, live, clock())

    saved.update_segment(ws.appdb, SEG, definition="did app_opened")  # nothing in it moves with time
    live.step(clock(), sweep=False)
    assert live.tracked[SEG].untimed is not None
    assert SEG not in live.timers.due and _stored_timers(ws, SEG) == {}


def test_timers_survive_a_restart_and_a_refired_timer_records_nothing_twice(workspace, clock):
    ws = workspace
    saved.create_segment(ws.appdb, SEG, "did app_opened in last 1 hour")
    opened = T0 - timedelta(minutes=20)
    send(ws, None, ("u1", "app_opened", opened), ("u2", "app_opened", opened + timedelta(minutes=5)))
    first = _engine(ws, clock)
    first.start(thread=False)
    first.step(clock(), sweep=False)
    assert set(_stored_timers(ws, SEG)) == {"u1", "u2"}
    # killed here (no stop); the next process starts after both windows closed
    clock.t = opened + timedelta(hours=2)
    second = _engine(ws, clock)
    second.timers.flush = lambda: 0  # and is killed after recording the exits, before flushing its timers
    second.start(thread=False)
    res = second.step(clock(), sweep=False)
    assert sorted((c.user_id, c.kind, c.cause, c.ts) for c in res.changes) == [
        ("u1", "exit", "time", opened + timedelta(hours=1)),
        ("u2", "exit", "time", opened + timedelta(hours=1, minutes=5))]
    assert _sweeps(ws, SEG) == 0
    third = _engine(ws, clock)  # loads the same (stale) timers again: they fire and find nothing to record
    third.start(thread=False)
    assert third.step(clock(), sweep=False).changes == []
    assert third.perf["timers_fired"] == 2
    assert len(transitions(ws.store, SEG)) == 4  # two enters (creation) and two exits, once each
    check_consistent(ws, third, clock())


def test_a_timer_lost_in_a_kill_is_recovered_from_the_last_sweep(workspace, clock):
    ws = workspace
    saved.create_segment(ws.appdb, SEG, "did app_opened in last 1 hour")
    live = _engine(ws, clock)
    live.start(thread=False)
    live.step(clock())  # creation (no members yet)
    live.timers.flush = lambda: 0  # its timers never reach the app DB
    opened = clock.advance(seconds=30)
    send(ws, live, ("u1", "app_opened", opened))
    live.step(clock(), sweep=False)
    assert live.members(SEG) == ["u1"] and _stored_timers(ws, SEG) == {}
    clock.t = opened + timedelta(hours=3)
    again = _engine(ws, clock)
    again.start(thread=False)
    res = again.step(clock(), sweep=False)  # the per-user catch-up comes after the recovered timer
    assert [(c.user_id, c.kind, c.cause, c.ts) for c in res.changes] == [
        ("u1", "exit", "time", opened + timedelta(hours=1))]


def test_history_equals_as_of_evaluation_at_every_step_with_timers_only(workspace, clock):
    ws = workspace
    rnd = random.Random(11)
    defs = {
        "active": "did app_open at least 2 times in last 20 minutes",
        "lapsed": "did purchase and did not purchase in last 30 minutes",
        "viewers": 'did view where category = "shoes" in last 45 minutes',
        "recency": "last purchase at least 10 minutes ago and last purchase in last 50 minutes",
        "fresh": "trait signup in last 25 minutes or (did view and not did view in last 15 minutes)",
    }
    for name, text in defs.items():
        saved.create_segment(ws.appdb, name, text)
    live = _engine(ws, clock)
    live.start(thread=False)
    live.step(clock(), sweep=False)
    assert all(t.untimed is None for t in live.tracked.values())
    users = [f"u{i}" for i in range(10)]
    steps = []
    for _ in range(24):
        clock.advance(seconds=rnd.choice([5, 30, 60, 90, 200, 400]))
        batch = []
        for _ in range(rnd.randint(0, 3)):
            name = rnd.choice(["app_open", "purchase", "view", "$identify"])
            ts = clock() - timedelta(milliseconds=rnd.randint(0, 500))
            if name == "$identify":
                batch.append({"user_id": rnd.choice(users), "event": name, "type": "identify", "ts": ts,
                              "traits": {"signup": (ts - timedelta(minutes=rnd.randint(0, 30))).isoformat()}})
            else:
                props = {"category": rnd.choice(["shoes", "bags"])} if name == "view" else {}
                batch.append({"user_id": rnd.choice(users), "event": name, "ts": ts, "properties": props})
        if batch:
            send(ws, live, *batch)
        live.step(clock(), sweep=False)
        expected = {n: saved.segment_members(ws, n, as_of=clock()) for n in defs}
        assert {n: live.members(n) for n in defs} == expected  # memory == as-of evaluation at every step
        steps.append((clock(), expected))
    check_consistent(ws, live, clock())  # the store too, and one segment event per transition
    for at, expected in steps:
        for name, ids in expected.items():
            assert members_from_history(ws, name, at) == ids, (name, at)
    assert sum(_sweeps(ws, n) for n in defs) == 0
    causes = {r["cause"] for r in ws.store.query("SELECT cause FROM segment_transitions").to_pylist()}
    assert "time" in causes and live.perf["timer_changes"] > 0


@pytest.mark.parametrize("text", [
    "did app_open in last 3 hours",
    "did not app_open in last 3 hours",
    "did app_open at least 2 times in last 3 hours",
    'did app_open where screen = "home" in last 2 hours',
    "did app_open at least 1 hours ago",
    "last app_open at least 90 minutes ago",
    "first app_open in last 4 hours",
    "did app_open in last 2 hours and not did purchase in last 1 hours",
    "did app_open then purchase within 30 minutes",
    "with last app_open as a in last 3 hours: not did purchase after a within 1 hours",
    "trait signup in last 2 hours",
    "profile first_seen at least 1 hours ago",
])
def test_bulk_due_time_is_never_after_the_exact_next_change(workspace, text):
    """The SQL due time is a lower bound of the reference evaluator's next change (equal for single leaves
    with an exact rule), over random users, so a timer never fires late."""
    ws = workspace
    rnd = random.Random(hash(text) % 1000)
    rows = []
    for i in range(25):
        for _ in range(rnd.randint(0, 5)):
            rows.append({"user_id": f"u{i}", "event": rnd.choice(["app_open", "purchase"]),
                         "ts": T0 - timedelta(minutes=rnd.randint(0, 300)),
                         "properties": {"screen": rnd.choice(["home", "cart"])}})
        if rnd.random() < 0.5:
            rows.append({"user_id": f"u{i}", "event": "$identify", "type": "identify", "ts": T0 - timedelta(days=1),
                         "traits": {"signup": (T0 - timedelta(minutes=rnd.randint(-30, 200))).isoformat()}})
    send(ws, None, *rows)
    tree = parse(text)
    assert uncovered(tree) is None
    sql, params = due_query(tree, typed=ws.store.property_columns()).at(T0)
    got = {r["user_id"]: r["due"] for r in ws.store.query(sql, params).to_pylist()}
    fp = footprint(tree)
    exact_rule = text.startswith(("did app_open in", "did not", "did app_open where", "last", "first", "trait",
                                  "profile"))
    from segmint.segments.live import load_users

    data = load_users(ws.store, [f"u{i}" for i in range(25)], T0)
    for u, (events, profile) in data.items():
        nxt = next_change(tree, fp, events, profile, T0, "Asia/Seoul")
        if nxt is None:
            continue
        assert u in got and got[u] <= nxt, (u, got.get(u), nxt)
        if exact_rule:
            assert got[u] == nxt, (u, got[u], nxt)


def test_next_change_and_coverage():
    tree = parse("did app_open in last 1 hours")
    evs = [Event("app_open", T0, {}, "m1"), Event("app_open", T0 + timedelta(minutes=10), {}, "m2")]
    assert next_change(tree, footprint(tree), evs, Profile("u"), T0 + timedelta(minutes=20), "UTC") == \
        T0 + timedelta(hours=1, minutes=10)
    assert next_change(tree, footprint(tree), [], Profile("u"), T0, "UTC") is None
    assert "calendar" in uncovered(parse("did app_open today"))
    assert "interval ratio" in uncovered(parse("since last purchase >= 2 * usual gap"))
    assert "nothing" in uncovered(parse("did purchase at least 2 times"))


def test_a_sweep_leaves_users_whose_timer_fell_due_to_the_timer(workspace, clock):
    ws = workspace
    saved.create_segment(ws.appdb, SEG, "did app_opened in last 1 hour")
    opened = T0 - timedelta(minutes=59)
    send(ws, None, ("u1", "app_opened", opened), ("u2", "app_opened", opened))
    live = _engine(ws, clock)
    live.start(thread=False)
    live.step(clock(), sweep=False)
    live.timers.drop(SEG)  # u2 has no timer (say its per-user step failed): the sweep is its safety net
    live.timers.set(SEG, 1, live.tracked[SEG].digest, {"u1": opened + timedelta(hours=1)}, clock())
    swept = clock.advance(seconds=65)  # 5 s after the due time, the sweep runs before the timer could fire
    b = live._bulk_query(SEG, "sweep", swept)
    assert b is not None and [c.user_id for c in live._apply_bulk(b)] == ["u2"]
    clock.advance(seconds=1)
    res = live.step(clock(), sweep=False)
    assert [(c.user_id, c.kind, c.cause, c.ts) for c in res.changes] == [
        ("u1", "exit", "time", opened + timedelta(hours=1))]
    check_consistent(ws, live, clock())


def test_a_burst_of_due_timers_fires_in_chunks_each_at_its_instant(workspace, clock):
    ws = workspace
    saved.create_segment(ws.appdb, SEG, "did app_opened in last 1 hour")
    users = [f"u{i:03d}" for i in range(450)]  # more than one chunk of timers
    send(ws, None, *[(u, "app_opened", T0 - timedelta(minutes=30, seconds=i)) for i, u in enumerate(users)])
    live = _engine(ws, clock)
    live.start(thread=False)
    live.step(clock(), sweep=False)
    clock.advance(hours=2)  # every window closed while the engine was busy elsewhere
    for _ in range(50):  # the per-step budget may spread them over several steps
        live.step(clock(), sweep=False)
        if not live.members(SEG):
            break
    rows = {r["user_id"]: r for r in transitions(ws.store, SEG, limit=5000) if r["kind"] == "exit"}
    assert len(rows) == len(users)
    for i, u in enumerate(users):
        assert (rows[u]["cause"], rows[u]["ts"]) == ("time", T0 + timedelta(minutes=30, seconds=-i)), u
    check_consistent(ws, live, clock())
