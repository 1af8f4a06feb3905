"""Shared fixtures: a fresh workspace per test."""

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
