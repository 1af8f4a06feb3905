"""Exactly-once sending: kill -9 a worker mid-send of 100k recipients to a real webhook receiver, restart,
and no user is sent twice and none is lost; two workers sharing one send never duplicate."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import httpx
import pyarrow as pa
import pytest

from pg_server import pg_url  # noqa: F401  (session fixture: a real PostgreSQL server)
from segmint.campaigns import repo
from segmint.campaigns.plan import plan_occurrence
from segmint.channels.settings import WebhookSettings
from segmint.segments import saved
from segmint.workspace import Workspace
from server_util import SRC, free_port

SECRET = "whsec_test"


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": f"{SRC}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}


@pytest.fixture
def receiver():
    """The reference receiver (verifies signatures, dedupes by idempotency key) in a uvicorn subprocess."""
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "segmint.campaigns.receiver", "--port", str(port),
                             "--secret", SECRET], env=_env())
    url = f"http://127.0.0.1:{port}"
    for _ in range(100):
        try:
            httpx.get(url + "/stats", timeout=1)
            break
        except httpx.HTTPError:
            time.sleep(0.1)
    yield url
    proc.terminate()
    proc.wait(10)


def _stats(url: str) -> dict[str, int]:
    return httpx.get(url + "/stats", timeout=10).json()


def setup_send(path: Path, receiver_url: str, n: int, appdb_url: str | None = None) -> tuple[Path, int]:
    """A workspace with n users, a segment of all of them and a planned webhook campaign; returns (ws, queued)."""
    ws = Workspace.init(path)
    ws.config.channels.webhook = WebhookSettings(url=receiver_url + "/hook", secret=SECRET, max_attempts=3)
    if appdb_url:
        ws.config.appdb.url = appdb_url
    ws.save()
    ws = Workspace(path)
    ids = [f"u{i:06d}" for i in range(n)]
    traits = [json.dumps({"name": f"고객{i}", "email": f"u{i}@shop.kr"}) for i in range(n)]
    ws.store.load_profiles(pa.table({"user_id": ids, "traits": traits, "first_seen": [datetime(2026, 1, 1)] * n,
                                     "timezone": ["Asia/Seoul"] * n}))
    saved.create_segment(ws.appdb, "everyone", "trait email exists")
    sc, _ = repo.save_campaign(ws.appdb, {
        "id": "blast", "name": "webhook blast", "purpose": "informational", "target": ["everyone"],
        "channels": ["webhook"], "holdout": 0.05,
        "policy": {"quiet_hours": {"enabled": False}, "frequency_caps": [], "batch_sizes": {"webhook": 100}},
        "variants": [{"key": "A", "messages": {"webhook": {"subject": "안녕하세요",
                                                           "text": "{{ user.name }}님 안녕하세요"}}},
                     {"key": "B", "messages": {"webhook": {"subject": "hi", "text": "hi {{ user.name }}"}}}]},
        status="active")
    result = plan_occurrence(ws, sc.campaign, "once")
    ws.close()
    ws.appdb.dispose()
    return ws.path, result.statuses["queued"]


def _counts(ws_path: Path, appdb_url: str | None = None) -> dict[str, int]:
    if appdb_url:
        import psycopg

        with psycopg.connect(appdb_url.replace("+psycopg", "")) as pg:
            return dict(pg.execute("SELECT status, count(*) FROM campaign_ledger GROUP BY status").fetchall())
    con = sqlite3.connect(ws_path / "app.sqlite", timeout=30)
    try:
        return dict(con.execute("SELECT status, count(*) FROM campaign_ledger GROUP BY status").fetchall())
    finally:
        con.close()


def _worker(ws_path: Path, *extra: str) -> subprocess.Popen[bytes]:
    cmd = [sys.executable, "-c", "from segmint.cli import main; main()", "-w", str(ws_path), "campaign", "worker",
           "--batch", "500", "--concurrency", "4", "--lease", "2", *extra]
    return subprocess.Popen(cmd, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def test_kill_9_mid_send_then_restart_sends_everyone_exactly_once(tmp_path: Path, receiver: str) -> None:
    ws_path, queued = setup_send(tmp_path / "ws", receiver, 100_000)
    assert queued > 90_000
    deadline = time.monotonic() + 600
    for attempt in range(1, 6):  # kill until a kill lands while a batch is in flight (almost always the first)
        first = _worker(ws_path)
        while True:
            counts = _counts(ws_path)
            if counts.get("sent", 0) >= attempt * queued // 8 and counts.get("sending", 0) > 0:
                first.send_signal(signal.SIGKILL)
                break
            assert first.poll() is None, first.stderr.read().decode()[-2000:] if first.stderr else ""
            assert time.monotonic() < deadline, f"worker too slow: {counts}"
            time.sleep(0.02)
        first.wait()
        at_kill = _counts(ws_path)
        if at_kill.get("sending", 0) > 0:
            break
    assert at_kill.get("sending", 0) > 0 and at_kill.get("queued", 0) > 0  # killed in the middle of a batch
    second = _worker(ws_path)
    out, err = second.communicate(timeout=600)
    assert second.returncode == 0, err.decode()[-2000:]
    stats = json.loads(out)
    assert stats["recovered"] == at_kill["sending"]
    final = _counts(ws_path)
    assert final.get("sent") == queued and "sending" not in final and "queued" not in final
    got = _stats(receiver)
    assert got["unique"] == queued  # none lost
    assert got["users_twice"] == 0 and got["bad_signature"] == 0  # nobody got two different messages
    con = sqlite3.connect(ws_path / "app.sqlite")
    retried = con.execute("SELECT count(*) FROM campaign_ledger WHERE attempts = 2").fetchone()[0]
    con.close()
    assert retried == at_kill["sending"]  # exactly the in-flight rows were sent again, with the same key


def test_receiver_ignores_a_request_whose_sender_died_mid_body(receiver: str) -> None:
    """A worker killed while its POST body is half written delivered nothing: not a bad signature, not a message."""
    import socket
    from urllib.parse import urlparse

    from segmint.channels.webhook import SIGNATURE_HEADER, sign

    body = json.dumps({"user_id": "u1", "text": "x" * 4000}).encode()
    url = urlparse(receiver)
    with socket.create_connection((url.hostname, url.port)) as sock:
        head = (f"POST /hook HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(body)}\r\n{SIGNATURE_HEADER}: {sign(SECRET, int(time.time()), body)}\r\n"
                "Idempotency-Key: c:o:u1\r\n\r\n").encode()
        sock.sendall(head + body[:1000])  # then the sender dies
    for _ in range(50):
        got = _stats(receiver)
        if got["requests"] or got["bad_signature"]:
            break
        time.sleep(0.05)
    got = _stats(receiver)
    assert got["bad_signature"] == 0 and got["unique"] == 0
    resp = httpx.post(receiver + "/hook", content=body, headers={SIGNATURE_HEADER: sign(SECRET, int(time.time()), body),
                                                                 "Idempotency-Key": "c:o:u1"})
    assert resp.status_code == 200 and _stats(receiver)["unique"] == 1  # the retry with the same key counts once


def test_two_workers_share_one_send_without_duplicates(tmp_path: Path, receiver: str) -> None:
    ws_path, queued = setup_send(tmp_path / "ws", receiver, 20_000)
    a, b = _worker(ws_path, "--batch", "100"), _worker(ws_path, "--batch", "100")
    outs = [p.communicate(timeout=300) for p in (a, b)]
    assert a.returncode == 0 and b.returncode == 0, [e.decode()[-1000:] for _, e in outs]
    claimed = [json.loads(o)["claimed"] for o, _ in outs]
    assert sum(claimed) == queued and all(c > 0 for c in claimed)
    got = _stats(receiver)
    assert got["requests"] * 100 >= queued and got["duplicates"] == 0 and got["unique"] == queued
    assert _counts(ws_path).get("sent") == queued


def test_postgres_app_db_two_workers_and_recovery(tmp_path: Path, receiver: str, pg_url: str) -> None:  # noqa: F811
    """The same claims on PostgreSQL (FOR UPDATE SKIP LOCKED): a dead worker's claims are recovered, two workers
    never duplicate."""
    import psycopg
    from sqlalchemy import create_engine, text

    url = pg_url.replace("postgresql://", "postgresql+psycopg://")
    with psycopg.connect(pg_url, autocommit=True) as pg:  # a clean slate in the shared test database
        for table in ("campaign_ledger", "campaign_occurrences", "campaign_suppressions", "campaigns",
                      "segment_versions", "segments"):
            pg.execute(f"DROP TABLE IF EXISTS {table} CASCADE")
    ws_path, queued = setup_send(tmp_path / "ws", receiver, 6000, appdb_url=url)
    engine = create_engine(url)
    with engine.begin() as con:  # a worker that claimed 300 rows and died: its lease is already over
        con.execute(text("UPDATE campaign_ledger SET status = 'sending', worker = 'dead:1', attempts = 1, "
                         "lease_until = now() - interval '1 hour' WHERE id IN (SELECT id FROM campaign_ledger "
                         "WHERE status = 'queued' ORDER BY id LIMIT 300)"))
    engine.dispose()
    a, b = _worker(ws_path, "--batch", "100"), _worker(ws_path, "--batch", "100")
    outs = [p.communicate(timeout=300) for p in (a, b)]
    assert a.returncode == 0 and b.returncode == 0, [e.decode()[-1000:] for _, e in outs]
    stats = [json.loads(o) for o, _ in outs]
    assert sum(s["recovered"] for s in stats) == 300 and sum(s["claimed"] for s in stats) == queued
    got = _stats(receiver)
    assert got["duplicates"] == 0 and got["unique"] == queued and got["users_twice"] == 0
    counts = _counts(ws_path, url)
    assert counts["sent"] == queued and "sending" not in counts and "queued" not in counts
