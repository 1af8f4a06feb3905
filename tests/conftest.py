"""Shared fixtures: a fresh workspace per test, a served workspace, headless Chromium per browser-test module."""

from __future__ import annotations

from pathlib import Path

import pytest

from segmint.workspace import Workspace


@pytest.fixture
def workspace(tmp_path: Path) -> Workspace:
    """A new, empty workspace in a temporary folder."""
    ws = Workspace.init(tmp_path / "ws")
    yield ws
    ws.close()


@pytest.fixture
def served(tmp_path: Path):
    """A workspace with a write key, served by a real `segmint serve` subprocess; yields (server, key)."""
    from segmint.appdb.keys import create_key
    from server_util import Server

    ws = Workspace.init(tmp_path / "served")
    key = create_key(ws.appdb, label="test").secret
    token = ws.config.admin_token
    ws.appdb.dispose()
    ws.close()
    server = Server(ws.path, token).start()
    server.key = key  # type: ignore[attr-defined]
    yield server
    server.stop()


@pytest.fixture(scope="module")
def browser():
    """Debian's Chromium, headless (no browser downloads), one per browser-test module."""
    from browser_util import launch

    yield from launch()
