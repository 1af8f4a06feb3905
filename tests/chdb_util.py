"""The one chDB data path of a test process (chDB allows one per process; test modules share it and keep
their tables apart with their own database names)."""

from __future__ import annotations

import tempfile

from segmint.store import clickhouse


def process_chdb_path() -> str:
    """The chDB path this process already uses, else a new temporary folder."""
    return next(iter(clickhouse._SESSIONS), None) or tempfile.mkdtemp(prefix="chdb-tests-")
