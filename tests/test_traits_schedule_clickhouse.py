"""Trait refresh schedules on a ClickHouse (chDB) store: the scheduler's ticks compute what is due and record
runs and failures in trait_runs, and a real `segmint serve` on a chDB workspace runs due refreshes."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace

import orjson
import pytest

from chdb_util import process_chdb_path
from segmint.store.base import WriteBatch
from segmint.store.clickhouse import ClickHouseEventStore
from segmint.store.schema import events_to_arrow
from segmint.traits import load_trait_config
from segmint.traits.catalog import FAMILIES
from segmint.traits.runner import runs
from segmint.traits.schedule import RETRY_AFTER, TraitScheduler, due_times, last_attempts
from segmint.workspace import Workspace
from server_util import Server
from test_traits_schedule import _events

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def ch_shop(tmp_path: Path, request: pytest.FixtureRequest) -> SimpleNamespace:
    """A folder for traits.yaml and models plus a chDB store (its own database) with a few users' events."""
    store = ClickHouseEventStore(process_chdb_path(), database=f"sched_{request.node.name[5:30]}")
    for table in ("events", "profiles", "trait_runs", "computed_traits"):
        store._exec(f"DROP TABLE IF EXISTS {table}")  # a rerun in the same process starts clean
    store = ClickHouseEventStore(store.path, database=store.database)
    store.write(WriteBatch(events=events_to_arrow(_events())))
    return SimpleNamespace(path=tmp_path, store=store)


def test_scheduler_runs_what_is_due_on_clickhouse(ch_shop: SimpleNamespace) -> None:
    store = ch_shop.store
    assert last_attempts(store) == {}  # no trait_runs table yet: nothing attempted, no error
    sched = TraitScheduler(ch_shop)
    s0 = sched.started
    assert sched.tick(s0 + timedelta(minutes=1)) == 30
    assert runs(store) == []  # first due refresh.initial_delay (5m) after the start
    sched.tick(s0 + timedelta(minutes=6))
    first = runs(store)
    assert len(first) == 1 and first[0]["families"] == list(FAMILIES)
    assert (first[0]["trigger"], first[0]["status"], first[0]["published"], first[0]["users"]) == (
        "schedule", "ok", True, 3)
    sched.tick(s0 + timedelta(minutes=7))
    assert len(runs(store)) == 1  # nothing due yet
    started = first[0]["started_at"].replace(tzinfo=None)
    sched.tick(started + timedelta(hours=1, seconds=1))  # lifecycle and churn refresh every hour
    second = runs(store)[0]
    assert second["families"] == ["lifecycle", "churn"] and second["status"] == "ok"
    due = due_times(load_trait_config(ch_shop.path), store, s0, has_models=False)
    assert due["rfm"] == started + timedelta(hours=24) and due["train"] is None
    assert due["churn"] == second["started_at"].replace(tzinfo=None) + timedelta(hours=1)
    traits = orjson.loads(store.query("SELECT traits FROM profiles WHERE user_id = 'u1'").column(0)[0].as_py())
    assert traits["lifecycle_stage"] == "first_time_buyer" and traits["rfm_frequency"] == 1


def test_failing_refreshes_are_recorded_and_retried_on_clickhouse(ch_shop: SimpleNamespace) -> None:
    (ch_shop.path / "traits.yaml").write_text("rfm:\n  tiers:\n    - name: x\n      when: {nope: {ge: 1}}\n")
    sched = TraitScheduler(ch_shop)
    sched.tick(sched.started + timedelta(minutes=6))  # does not raise: the failure is recorded
    failed = runs(ch_shop.store)[0]
    assert failed["status"] == "failed" and failed["trigger"] == "schedule" and failed["finished_at"] is not None
    assert "unknown field 'nope'" in failed["error"]
    due = due_times(load_trait_config(ch_shop.path), ch_shop.store, sched.started, has_models=False)
    assert due["rfm"] == failed["started_at"].replace(tzinfo=None) + RETRY_AFTER


_SETUP = r"""
import sys, orjson
from datetime import datetime
from pathlib import Path
from segmint.store.base import WriteBatch
from segmint.store.schema import events_to_arrow
from segmint.workspace import Workspace
ws = Workspace.init(Path(sys.argv[1]))
ws.config.store.url = "clickhouse:///chdb"
ws.save()
ws = Workspace(Path(sys.argv[1]))
events = orjson.loads(Path(sys.argv[2]).read_bytes())
for e in events:
    e["ts"] = e["received_at"] = datetime.fromisoformat(e["ts"])
ws.store.write(WriteBatch(events=events_to_arrow(events)))
(ws.path / "traits.yaml").write_text("refresh:\n  initial_delay: 0s\n  check_seconds: 0.2\n  default: {every: 1h}\n")
print(ws.store.dialect, ws.store.summary()["events"])
ws.close()
"""


def test_serve_runs_due_refreshes_on_a_clickhouse_workspace(tmp_path: Path) -> None:
    """`segmint serve` on a chDB workspace (its own process: chDB allows one data path per process) computes
    the due families on its own and serves them."""
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    events = tmp_path / "events.json"
    events.write_bytes(orjson.dumps(_events()))
    ws_path = tmp_path / "ws"
    res = subprocess.run([sys.executable, "-c", _SETUP, str(ws_path), str(events)], env=env, capture_output=True,
                         text=True, timeout=120)
    assert res.returncode == 0, res.stderr[-2000:]
    assert res.stdout.split() == ["clickhouse", str(len(_events()))]
    server = Server(ws_path, Workspace(ws_path).config.admin_token).start()
    try:
        deadline = time.monotonic() + 180  # a generous bound on a loaded machine: it waits for the condition
        while True:
            out = server.admin("/api/traits/runs")
            if out["runs"] and out["runs"][0]["status"] != "running":
                break
            assert time.monotonic() < deadline, out
            time.sleep(0.2)
        run = out["runs"][0]
        assert (run["trigger"], run["status"], run["families"], run["users"]) == (
            "schedule", "ok", list(FAMILIES), 3)
        sched = {r["name"]: r for r in out["schedule"]["families"]}
        assert out["schedule"]["server"] is True and sched["lifecycle"]["last_run_id"] == run["run_id"]
        assert sched["rfm"]["next_due"] > run["started_at"]
        assert server.admin("/api/users/u1/traits")["traits"]["lifecycle_stage"] == "first_time_buyer"
    finally:
        server.stop()
