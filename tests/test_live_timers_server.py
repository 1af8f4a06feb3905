"""A real `segmint serve` killed with kill -9 while members' next-change timers are pending: the restarted server
fires the stored timers and records each window's end once, at its exact instant, with cause `time`."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import orjson
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from segmint.appdb.keys import create_key
from segmint.segments import saved
from segmint.segments.live_timers import LiveTimerRow, ensure_table
from segmint.workspace import Workspace
from server_util import Server

WINDOW = 15  # seconds: room for a loaded machine to store the timers before any falls due
USERS = [f"t{i}" for i in range(20)]


def _wait(what: str, check: Callable[[], bool], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def test_kill_9_with_pending_timers_fires_them_once_at_the_exact_instant(tmp_path: Path) -> None:
    ws = Workspace.init(tmp_path / "ws")
    ws.config.live.timers = True  # off by default (docs/live-segments.md)
    ws.save()
    key = create_key(ws.appdb).secret
    saved.create_segment(ws.appdb, "just_opened", f"did app_open in last {WINDOW} seconds")
    token = ws.config.admin_token
    appdb = ws.appdb
    ensure_table(appdb)
    ws.close()
    server = Server(ws.path, token).start()
    try:
        _wait("the segment's first evaluation", lambda: server.admin("/api/live/status")["segments"] == 1)
        opened = datetime.now(UTC).replace(tzinfo=None, microsecond=123456)
        batch = [{"type": "track", "userId": u, "messageId": str(uuid.uuid4()), "event": "app_open",
                  "timestamp": (opened + timedelta(milliseconds=i)).isoformat() + "Z"} for i, u in enumerate(USERS)]
        r = httpx.post(server.url + "/v1/batch", content=orjson.dumps({"batch": batch}), auth=(key, ""), timeout=10)
        assert r.status_code == 200
        _wait("the users to enter", lambda: server.admin("/api/live/segments/just_opened/members")["count"] == 20)

        def stored() -> int:
            with Session(appdb) as s:
                return s.execute(select(func.count()).select_from(LiveTimerRow)
                                 .where(LiveTimerRow.segment == "just_opened")).scalar_one()

        _wait("the timers to be stored", lambda: stored() == 20)
        assert server.admin("/api/live/segments/just_opened/members")["count"] == 20  # none has fallen due yet
        server.kill()  # before any window ends: the timers are pending
        last_due = opened + timedelta(milliseconds=len(USERS), seconds=WINDOW)
        _wait("every due time to pass while stopped",
              lambda: datetime.now(UTC).replace(tzinfo=None) > last_due + timedelta(milliseconds=200))
        server = Server(ws.path, token, port=server.port).start()
        _wait("the exits", lambda: server.admin("/api/live/segments/just_opened/members")["count"] == 0)
        perf = server.admin("/api/live/status")["perf"]
        assert perf["timer_changes"] == 20  # recorded by the stored timers, before any sweep could
        trans = server.admin("/api/live/segments/just_opened/transitions", limit=1000)["transitions"]
    finally:
        server.stop()
    exits = {t["user_id"]: t for t in trans if t["kind"] == "exit"}
    assert len([t for t in trans if t["kind"] == "exit"]) == 20 and set(exits) == set(USERS)  # once each
    for i, u in enumerate(USERS):
        t = exits[u]
        assert t["cause"] == "time"
        assert datetime.fromisoformat(t["ts"]) == opened + timedelta(milliseconds=i, seconds=WINDOW), u
    wsr = Workspace(ws.path)
    store = wsr.open_store_read_only()
    try:
        rows = store.query("SELECT message_id, count(*) AS n FROM events WHERE event = 'segment_exited' "
                           "GROUP BY message_id").to_pylist()
        assert len(rows) == 20 and all(r["n"] == 1 for r in rows)
    finally:
        store.close()
