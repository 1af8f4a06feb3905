"""`segmint init`, `keys`, `events` from the command line, and the workspace's error messages."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from segmint.appdb.keys import verify_key
from segmint.cli import app
from segmint.workspace import Workspace

runner = CliRunner()


def test_init_prints_a_working_write_key(tmp_path: Path) -> None:
    folder = tmp_path / "ws"
    res = runner.invoke(app, ["--workspace", str(folder), "init", "--name", "shop"])
    assert res.exit_code == 0, res.output
    secret = next(w for w in res.output.split() if w.startswith("wk_"))
    ws = Workspace(folder)
    assert ws.config.name == "shop" and ws.config.timezone == "Asia/Seoul"
    assert verify_key(ws.appdb, secret)
    assert not verify_key(ws.appdb, secret + "x")


def test_init_twice_is_an_error_not_a_reset(tmp_path: Path) -> None:
    folder = tmp_path / "ws"
    assert runner.invoke(app, ["-w", str(folder), "init"]).exit_code == 0
    res = runner.invoke(app, ["-w", str(folder), "init"])
    assert res.exit_code == 2
    assert "already exists" in res.output


def test_bad_timezone_is_a_clear_error(tmp_path: Path) -> None:
    res = runner.invoke(app, ["-w", str(tmp_path / "ws"), "init", "--timezone", "Mars/Olympus"])
    assert res.exit_code == 2
    assert "unknown time zone" in res.output


def test_keys_create_list_revoke(tmp_path: Path) -> None:
    folder = tmp_path / "ws"
    runner.invoke(app, ["-w", str(folder), "init"])
    created = runner.invoke(app, ["-w", str(folder), "keys", "create", "--label", "ios app"])
    secret = created.output.strip()
    ws = Workspace(folder)
    assert verify_key(ws.appdb, secret)
    listed = runner.invoke(app, ["-w", str(folder), "keys", "list"])
    assert "ios app" in listed.output and secret not in listed.output
    revoked = runner.invoke(app, ["-w", str(folder), "keys", "revoke", secret[:10]])
    assert revoked.exit_code == 0, revoked.output
    assert not verify_key(ws.appdb, secret)
    missing = runner.invoke(app, ["-w", str(folder), "keys", "revoke", "wk_nothere"])
    assert missing.exit_code == 2 and "no write key" in missing.output


def test_commands_on_a_missing_workspace_say_so(tmp_path: Path) -> None:
    res = runner.invoke(app, ["-w", str(tmp_path / "none"), "events", "stats"])
    assert res.exit_code == 2
    assert "segmint init" in res.output


def test_events_stats_on_a_workspace_held_by_another_process(tmp_path: Path) -> None:
    folder = tmp_path / "ws"
    runner.invoke(app, ["-w", str(folder), "init"])
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import sys, time; from segmint.workspace import Workspace; "
         f"ws = Workspace({str(folder)!r}); ws.store; print('ready', flush=True); time.sleep(60)"],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "ready"
        res = runner.invoke(app, ["-w", str(folder), "events", "stats"])
        assert res.exit_code == 2
        assert "held by another process" in res.output
    finally:
        holder.kill()
        holder.wait()
