"""Live segments driven by a simulated clock: enter within one step, exit at the exact window end, edits,
and at every step membership == as-of evaluation and the segment events match the transitions."""

from __future__ import annotations

import itertools
import random
from datetime import datetime, timedelta

import pytest

from segmint.config import LiveConfig
from segmint.segments import live_log, saved
from segmint.segments.live import ENTERED, EXITED, LiveSegments, current_members, history, transitions
from segmint.store.base import WriteBatch
from segmint.store.schema import events_to_arrow

T0 = datetime(2026, 3, 2, 9, 0, 0)
_ids = itertools.count()


class Clock:
    """A simulated clock the engine reads."""

    def __init__(self, t: datetime) -> None:
        self.t = t

    def __call__(self) -> datetime:
        return self.t

    def advance(self, **kw: float) -> datetime:
        self.t += timedelta(**kw)
        return self.t


def send(ws, live: LiveSegments | None, *events: tuple[str, str, datetime] | dict) -> None:
    """Store events like the ingest writer does, then hand the batch to the live engine."""
    rows = []
    for e in events:
        if isinstance(e, tuple):
            user, name, ts = e
            e = {"user_id": user, "event": name, "ts": ts}
        rows.append({"message_id": f"m{next(_ids)}", "type": e.get("type", "track"), "event": e["event"],
                     "user_id": e["user_id"], "ts": e["ts"], "received_at": e["ts"],
                     "properties": e.get("properties", {}), "context": {}})
    batch = WriteBatch(events=events_to_arrow(rows))
    for e in events:
        if isinstance(e, dict) and e.get("traits"):
            from segmint.store.base import ProfileUpdate

            batch.profiles.append(ProfileUpdate(e["user_id"], e["traits"], e["ts"]))
    ws.store.write(batch)
    if live is not None:
        live.notify(batch.events)


def check_consistent(ws, live: LiveSegments, now: datetime) -> None:
    """Membership (memory and store) == as-of evaluation; one segment event per transition, same times."""
    for name in live.tracked:
        expected = saved.segment_members(ws, name, as_of=now)
        assert live.members(name) == expected, name
        assert current_members(ws.store, name) == expected, name
    tr = ws.store.query("SELECT id, user_id, ts, kind FROM segment_transitions ORDER BY id").to_pylist()
    ev = ws.store.query(
        "SELECT substr(message_id, 5) AS id, user_id, ts, CASE event WHEN $e THEN 'enter' ELSE 'exit' END AS kind "
        "FROM events WHERE event IN ($e, $x) ORDER BY id", {"e": ENTERED, "x": EXITED}).to_pylist()
    assert tr == ev


@pytest.fixture
def live(workspace):
    clock = Clock(T0)
    engine = LiveSegments(workspace.store, workspace.appdb, config=LiveConfig(sweep_interval_seconds=60),
                          workspace_tz="Asia/Seoul", clock=clock)
    engine.clock_ = clock  # type: ignore[attr-defined]
    return engine


def test_event_enters_in_one_step_and_window_exit_is_exact(workspace, live):
    ws, clock = workspace, live.clock_
    saved.create_segment(ws.appdb, "recent_buyers", "did purchase in last 1 hour")
    send(ws, None, ("u1", "app_open", T0 - timedelta(days=1)))
    live.start(thread=False)
    live.step(clock())
    assert live.members("recent_buyers") == []

    bought = clock.advance(seconds=5)
    send(ws, live, ("u1", "purchase", bought))
    clock.advance(milliseconds=200)
    res = live.step(clock())  # one processing step after the write
    assert [(c.user_id, c.kind, c.cause) for c in res.changes] == [("u1", "enter", "event")]
    check_consistent(ws, live, clock())

    # sweeps every minute; the window closes at bought + 1 h, between two sweeps
    for _ in range(31):
        clock.advance(seconds=120)
        live.step(clock())
    check_consistent(ws, live, clock())
    rows = transitions(ws.store, "recent_buyers", "u1")
    assert [(r["kind"], r["cause"]) for r in rows] == [("exit", "time"), ("enter", "event")]
    assert rows[0]["ts"] == bought + timedelta(hours=1)  # exact, not the sweep time
    spell = history(ws.store, "recent_buyers", "u1")
    assert spell[0]["exited_at"] == bought + timedelta(hours=1) and spell[0]["exit_cause"] == "time"
    exited = ws.store.query("SELECT ts, properties->>'cause' AS cause FROM events WHERE event = $x",
                            {"x": EXITED}).to_pylist()
    assert exited == [{"ts": bought + timedelta(hours=1), "cause": "time"}]


def test_dormancy_enters_by_time_alone_at_the_exact_time(workspace, live):
    ws, clock = workspace, live.clock_
    saved.create_segment(ws.appdb, "dormant", "did app_open and did not app_open in last 2 hours")
    opened = T0 - timedelta(minutes=30, seconds=7)
    send(ws, None, ("u1", "app_open", opened))
    live.start(thread=False)
    live.step(clock())
    assert live.members("dormant") == []
    for _ in range(25):
        clock.advance(seconds=300)
        live.step(clock())
        check_consistent(ws, live, clock())
    rows = transitions(ws.store, "dormant", "u1")
    assert [(r["kind"], r["cause"], r["ts"]) for r in rows] == [("enter", "time", opened + timedelta(hours=2))]
    # an app_open brings the user back at once
    clock.advance(seconds=1)
    send(ws, live, ("u1", "app_open", clock()))
    live.step(clock())
    assert live.members("dormant") == []
    assert transitions(ws.store, "dormant", "u1")[0]["cause"] == "event"


def test_edit_records_the_difference_as_edit(workspace, live):
    ws, clock = workspace, live.clock_
    saved.create_segment(ws.appdb, "buyers", "did purchase at least 2 times")
    send(ws, None, ("a", "purchase", T0 - timedelta(hours=3)), ("b", "purchase", T0 - timedelta(hours=3)),
         ("b", "purchase", T0 - timedelta(hours=2)))
    live.start(thread=False)
    first = live.step(clock())
    assert {(c.user_id, c.kind, c.cause, c.version) for c in first.changes} == {("b", "enter", "edit", 1)}
    clock.advance(seconds=10)
    saved.update_segment(ws.appdb, "buyers", definition="did purchase at least 1 times")
    res = live.step(clock())
    assert {(c.user_id, c.kind, c.cause, c.version) for c in res.changes} == {("a", "enter", "edit", 2)}
    evals = live_log.list_evaluations(ws.appdb, "buyers", kind="edit")
    assert [(e["kind"], e["version"], e["status"], e["entered"]) for e in evals[:2]] == [
        ("edit", 2, "ok", 1), ("edit", 1, "ok", 1)]
    check_consistent(ws, live, clock())


def test_traits_and_nested_segments_follow_identify_events(workspace, live):
    ws, clock = workspace, live.clock_
    saved.create_segment(ws.appdb, "gold", 'trait plan = "gold"')
    saved.create_segment(ws.appdb, "gold_buyers", 'in segment "gold" and did purchase')
    send(ws, None, ("u1", "purchase", T0 - timedelta(days=2)))
    live.start(thread=False)
    live.step(clock())
    clock.advance(seconds=3)
    send(ws, live, {"user_id": "u1", "event": "$identify", "type": "identify", "ts": clock(),
                    "traits": {"plan": "gold"}})
    res = live.step(clock())
    assert {(c.segment, c.kind, c.cause) for c in res.changes} == {("gold", "enter", "event"),
                                                                   ("gold_buyers", "enter", "event")}
    check_consistent(ws, live, clock())


def test_segment_events_can_be_conditions(workspace, live):
    ws, clock = workspace, live.clock_
    saved.create_segment(ws.appdb, "carted", "did cart_add in last 1 hour")
    saved.create_segment(ws.appdb, "ever_carted", 'did segment_entered where segment = "carted"')
    live.start(thread=False)
    live.step(clock())
    send(ws, live, ("u1", "cart_add", clock()))
    clock.advance(seconds=1)
    live.step(clock())
    clock.advance(seconds=1)
    live.step(clock())  # the segment_entered event is seen by the next step
    assert live.members("ever_carted") == ["u1"]
    check_consistent(ws, live, clock())


def test_failed_evaluation_is_recorded_not_silent(workspace, live):
    ws, clock = workspace, live.clock_
    saved.create_segment(ws.appdb, "buyers", "did purchase")
    live.start(thread=False)
    live.step(clock())
    live.store = _Broken(ws.store)
    clock.advance(seconds=61)
    live.step(clock())
    rows = live_log.list_evaluations(ws.appdb, "buyers", kind="sweep")
    assert rows[0]["status"] == "failed" and "boom" in rows[0]["error"]
    flags = {h.segment: h.flags for h in __import__("segmint.segments.live", fromlist=["x"]).health(
        ws.appdb, live.config, clock())}
    assert "failing" in flags["buyers"]


class _Broken:
    """A store whose queries fail (an engine error in the middle of an evaluation)."""

    def __init__(self, store) -> None:
        self._store = store
        self.dialect = store.dialect

    def __getattr__(self, name):
        return getattr(self._store, name)

    def query(self, *_a, **_k):
        raise RuntimeError("boom")

    def property_columns(self):
        return {}


def test_health_flags(workspace):
    from segmint.segments.live import health

    ws = workspace
    live_log.ensure_table(ws.appdb)
    saved.create_segment(ws.appdb, "s", "did purchase")
    cfg = LiveConfig(sweep_interval_seconds=60)
    now = T0
    assert health(ws.appdb, cfg, now)[0].flags == ["stale"]
    for i, members in enumerate([100, 300]):
        eid = live_log.begin(ws.appdb, "s", 1, "sweep", now, now)
        live_log.finish(ws.appdb, eid, now + timedelta(seconds=i), 5.0, users=members, rows=members,
                        members=members, entered=2 * members if i else 0, exited=0)
    h = health(ws.appdb, cfg, now + timedelta(seconds=30))[0]
    assert "exploding" in h.flags and "churn" in h.flags and "stale" not in h.flags
    h = health(ws.appdb, cfg, now + timedelta(minutes=10))[0]
    assert "stale" in h.flags


def members_from_history(ws, segment: str, at: datetime) -> list[str]:
    """Members as of a time reconstructed from the recorded transitions alone."""
    rows = ws.store.query(
        "SELECT user_id, kind FROM (SELECT user_id, kind, row_number() OVER (PARTITION BY user_id ORDER BY ts DESC, "
        "kind = 'enter' DESC) AS rn FROM segment_transitions WHERE segment = $s AND ts <= $t) WHERE rn = 1",
        {"s": segment, "t": at}).to_pylist()
    return sorted(r["user_id"] for r in rows if r["kind"] == "enter")


def test_random_streams_match_as_of_evaluation_at_every_step(workspace, live):
    ws, clock = workspace, live.clock_
    rnd = random.Random(7)
    saved.create_segment(ws.appdb, "active", "did app_open at least 2 times in last 20 minutes")
    saved.create_segment(ws.appdb, "lapsed", "did purchase and did not purchase in last 30 minutes")
    saved.create_segment(ws.appdb, "viewers", 'did view where category = "shoes" in last 45 minutes')
    live.start(thread=False)
    live.step(clock())
    users = [f"u{i}" for i in range(12)]
    steps: list[tuple[datetime, dict[str, list[str]]]] = []
    for _ in range(30):
        clock.advance(seconds=rnd.choice([5, 30, 60, 90, 200]))
        batch = []
        for _ in range(rnd.randint(0, 4)):
            name = rnd.choice(["app_open", "purchase", "view"])
            props = {"category": rnd.choice(["shoes", "bags"])} if name == "view" else {}
            batch.append({"user_id": rnd.choice(users), "event": name, "ts": clock() - timedelta(
                milliseconds=rnd.randint(0, 500)), "properties": props})
        if batch:
            send(ws, live, *batch)
        res = live.step(clock())
        expected = {name: saved.segment_members(ws, name, as_of=clock()) for name in live.tracked}
        steps.append((clock(), expected))
        if len(res.swept) == len(live.tracked):  # a sweep step: memory is exactly the as-of evaluation
            check_consistent(ws, live, clock())
    clock.advance(seconds=61)
    live.step(clock())
    check_consistent(ws, live, clock())
    # the recorded history, read as of every step's time, equals the as-of evaluation at that time
    for at, expected in steps:
        for name, ids in expected.items():
            assert members_from_history(ws, name, at) == ids, (name, at)
    causes = {r["cause"] for r in ws.store.query("SELECT cause FROM segment_transitions").to_pylist()}
    assert causes == {"event", "time"}


def test_cli_sweep_history_evaluations_health(workspace):
    import json

    from typer.testing import CliRunner

    from segmint.cli import app

    ws = workspace
    saved.create_segment(ws.appdb, "buyers", "did purchase")
    send(ws, None, ("u1", "purchase", T0), ("u2", "view", T0))
    ws.close()
    run = CliRunner()
    base = ["-w", str(ws.path), "segment"]
    out = run.invoke(app, [*base, "sweep", "--json"])
    assert out.exit_code == 0, out.output
    assert json.loads(out.output)["entered"] == 1
    out = run.invoke(app, [*base, "history", "buyers", "--json"])
    rows = json.loads(out.output)
    assert [(r["user_id"], r["cause"], r["exited_at"]) for r in rows] == [("u1", "edit", None)]
    out = run.invoke(app, [*base, "evaluations", "buyers", "--json"])
    assert {(r["kind"], r["status"]) for r in json.loads(out.output)} >= {("edit", "ok")}
    out = run.invoke(app, [*base, "health", "--json"])
    assert json.loads(out.output)[0]["segment"] == "buyers"
    out = run.invoke(app, [*base, "history", "nope"])
    assert out.exit_code == 2 and "no saved segment 'nope'" in out.output
    out = run.invoke(app, [*base, "evaluations", "--kind", "bogus"])
    assert out.exit_code == 2 and "--kind" in out.output
