"""Run `segmint serve` as a real subprocess (uvicorn) on a free port, for end-to-end HTTP tests."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

SRC = Path(__file__).resolve().parents[1] / "src"


def free_port() -> int:
    """A TCP port nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """A `segmint serve` subprocess on one workspace folder."""

    def __init__(self, workspace: Path, admin_token: str, port: int | None = None) -> None:
        self.workspace = workspace
        self.admin_token = admin_token
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = workspace.parent / f"server-{self.port}.log"

    def start(self, timeout: float = 120.0) -> Server:
        """Start the server and wait until /health answers."""
        env = {**os.environ, "PYTHONPATH": f"{SRC}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
        cmd = [
            sys.executable,
            "-c",
            "from segmint.cli import main; main()",
            "-w",
            str(self.workspace),
            "serve",
            "--port",
            str(self.port),
        ]
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                tail = self.log.read_text()[-3000:]
                raise RuntimeError(f"server exited with {self.proc.returncode}: {tail}")
            try:
                if httpx.get(self.url + "/health", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        self.kill()
        raise RuntimeError(f"server did not start in {timeout}s: {self.log.read_text()[-3000:]}")

    def stop(self, timeout: float = 30.0) -> None:
        """Graceful stop (SIGTERM): the writer stores everything journaled before exit."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        self.proc = None

    def kill(self) -> None:
        """SIGKILL, no chance to flush anything (the journal must make up for it)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.proc = None

    def admin(self, route: str, **params: Any) -> Any:
        """GET an admin API route."""
        resp = httpx.get(
            self.url + route,
            params=params,
            timeout=120,
            headers={"Authorization": f"Bearer {self.admin_token}"},
        )
        resp.raise_for_status()
        return resp.json()

    def wait_caught_up(self, timeout: float = 120.0) -> None:
        """Wait until the ingest writer has stored everything journaled."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            health = httpx.get(self.url + "/health", timeout=5).json()
            if health["ingest_lag_bytes"] == 0:
                return
            time.sleep(0.05)
        raise AssertionError(f"ingest did not catch up in {timeout}s")

    def event_count(self) -> int:
        """Total stored events, through the admin API."""
        return sum(row["count"] for row in self.admin("/api/events/stats"))
