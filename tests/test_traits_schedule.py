"""Trait refresh schedules: durations and cron, which families are due, the scheduler's ticks (runs and
recorded failures), and a real `segmint serve` running due refreshes and answering the traits API."""

from __future__ import annotations

import json
import time
from datetime import datetime, timedelta

import httpx
import pytest
from typer.testing import CliRunner

from segmint.cli import app
from segmint.errors import InvalidInput
from segmint.store.base import WriteBatch
from segmint.store.schema import events_to_arrow
from segmint.traits import load_trait_config
from segmint.traits.catalog import FAMILIES
from segmint.traits.config import Schedule
from segmint.traits.runner import runs
from segmint.traits.schedule import RETRY_AFTER, TraitScheduler, due_times, next_after, parse_duration
from segmint.workspace import Workspace
from server_util import Server


def _events() -> list[dict]:
    now = datetime.now().replace(microsecond=0)
    out = []
    for u, days in (("u1", (40, 10, 1)), ("u2", (100,)), ("u3", (3,))):
        for d in days:
            ts = now - timedelta(days=d)
            out.append({"message_id": f"{u}-{d}", "type": "track", "event": "app_opened", "user_id": u, "ts": ts,
                        "received_at": ts, "properties": {}, "source": "import"})
    ts = now - timedelta(days=10)
    out.append({"message_id": "u1-order", "type": "track", "event": "order_completed", "user_id": "u1", "ts": ts,
                "received_at": ts, "properties": {"revenue": 1000}, "source": "import"})
    return out


@pytest.fixture
def shop(workspace: Workspace) -> Workspace:
    """A workspace with a few users' events."""
    workspace.store.write(WriteBatch(events=events_to_arrow(_events())))
    return workspace


def test_durations_and_cron() -> None:
    assert parse_duration("90s") == timedelta(seconds=90) and parse_duration("1.5d") == timedelta(hours=36)
    assert parse_duration("2w") == timedelta(days=14) and parse_duration("0s", positive=False) == timedelta(0)
    for bad in ("0s", "1 hour", "-1h", "h"):
        with pytest.raises(ValueError, match="not a duration"):
            parse_duration(bad)
    assert next_after(Schedule(cron="0 3 * * *"), datetime(2026, 6, 1, 4)) == datetime(2026, 6, 2, 3)
    assert next_after(Schedule(every="30m"), datetime(2026, 6, 1, 4)) == datetime(2026, 6, 1, 4, 30)
    assert next_after(Schedule(), datetime(2026, 6, 1)) is None
    with pytest.raises(InvalidInput, match=r"refresh.families.rfm.cron: .*not a valid cron expression"):
        load_trait_config(override={"refresh": {"families": {"rfm": {"cron": "61 * * * *"}}}})
    with pytest.raises(InvalidInput, match=r"refresh.default.every: .*not a duration"):
        load_trait_config(override={"refresh": {"default": {"every": "daily"}}})


def test_scheduler_runs_what_is_due(shop: Workspace) -> None:
    sched = TraitScheduler(shop)
    s0 = sched.started
    sched.tick(s0 + timedelta(minutes=1))
    assert runs(shop.store) == []  # never computed: first due refresh.initial_delay (5m) after the start
    sched.tick(s0 + timedelta(minutes=6))
    first = runs(shop.store)
    assert len(first) == 1 and first[0]["families"] == list(FAMILIES)
    assert (first[0]["trigger"], first[0]["status"], first[0]["published"], first[0]["users"]) == (
        "schedule", "ok", True, 3)
    sched.tick(s0 + timedelta(minutes=7))
    assert len(runs(shop.store)) == 1  # nothing due yet
    started = first[0]["started_at"]
    sched.tick(started + timedelta(hours=1, seconds=1))  # lifecycle and churn refresh every hour
    second = runs(shop.store)[0]
    assert second["families"] == ["lifecycle", "churn"] and second["status"] == "ok"
    due = due_times(load_trait_config(shop.path), shop.store, s0, has_models=False)
    assert due["rfm"] == started + timedelta(hours=24) and due["train"] is None
    assert due["churn"] == second["started_at"] + timedelta(hours=1)


def test_failing_refreshes_are_recorded_and_retried(shop: Workspace) -> None:
    (shop.path / "traits.yaml").write_text("rfm:\n  tiers:\n    - name: x\n      when: {nope: {ge: 1}}\n")
    sched = TraitScheduler(shop)
    sched.tick(sched.started + timedelta(minutes=6))  # does not raise: the failure is recorded
    failed = runs(shop.store)[0]
    assert failed["status"] == "failed" and failed["trigger"] == "schedule" and failed["finished_at"] is not None
    assert "unknown field 'nope'" in failed["error"]
    due = due_times(load_trait_config(shop.path), shop.store, sched.started, has_models=False)
    assert due["rfm"] == failed["started_at"] + RETRY_AFTER  # retried in 10 minutes, not in a day
    (shop.path / "traits.yaml").write_text("churn: [not, a, mapping\n")
    sched.tick()
    sched.tick()
    broken = runs(shop.store)
    assert len(broken) == 2  # recorded once, not at every check
    assert broken[0]["status"] == "failed" and "traits.yaml" in broken[0]["error"]
    (shop.path / "traits.yaml").write_text("refresh:\n  enabled: false\n")
    sched.tick(sched.started + timedelta(days=3))
    assert len(runs(shop.store)) == 2  # disabled: nothing runs


def test_serve_runs_due_refreshes_and_the_api(shop: Workspace) -> None:
    (shop.path / "traits.yaml").write_text(
        "refresh:\n  initial_delay: 0s\n  check_seconds: 0.2\n  default: {every: 1h}\n")
    shop.close()
    server = Server(shop.path, shop.config.admin_token).start()
    auth = {"Authorization": f"Bearer {shop.config.admin_token}"}
    try:
        deadline = time.monotonic() + 60
        while True:
            out = server.admin("/api/traits/runs")
            if out["runs"] and out["runs"][0]["status"] != "running":
                break
            assert time.monotonic() < deadline, out
            time.sleep(0.2)
        run = out["runs"][0]
        assert (run["trigger"], run["status"], run["families"]) == ("schedule", "ok", list(FAMILIES))
        sched = {r["name"]: r for r in out["schedule"]["families"]}
        assert out["schedule"]["server"] is True and sched["lifecycle"]["last_run_id"] == run["run_id"]
        assert sched["rfm"]["next_due"] > run["started_at"]
        assert server.admin("/api/users/u1/traits")["traits"]["lifecycle_stage"] == "first_time_buyer"
        assert server.admin("/api/traits/models") == []
        bad = httpx.post(server.url + "/api/traits/train", params={"horizon": 30}, headers=auth, timeout=60)
        assert bad.status_code == 400 and bad.json()["message"] == (
            "churn model: 4 positive and 0 negative examples in the training cuts; need at least 10 of each (more "
            "users or more history)")
        assert httpx.post(server.url + "/api/traits/train", params={"horizon": 0}, headers=auth).status_code == 400
        missing = httpx.get(server.url + "/api/traits/models/churn_30d", headers=auth)
        assert missing.status_code == 404
        res = CliRunner().invoke(app, ["-w", str(shop.path), "traits", "runs", "--json"])  # through the server
        assert res.exit_code == 0, res.output
        listed = json.loads(res.output)["runs"]
        assert (listed[0]["kind"], listed[0]["status"]) == ("train", "failed")
        assert "need at least 10 of each" in listed[0]["error"]
    finally:
        server.stop()
