"""A workspace is a folder: config (TOML), the event store, the app-state database, the ingest journal."""

from __future__ import annotations

import os
import secrets
from functools import cached_property
from pathlib import Path

from sqlalchemy import Engine

from segmint.appdb.base import create_all, make_engine
from segmint.config import CONFIG_FILE, Config, load_config, save_config
from segmint.errors import WorkspaceError
from segmint.store import EventStore, open_store

DEFAULT_DIR = "segmint-data"
ENV_VAR = "SEGMINT_WORKSPACE"


def default_path() -> Path:
    """The workspace folder: $SEGMINT_WORKSPACE, else ./segmint-data."""
    return Path(os.environ.get(ENV_VAR) or DEFAULT_DIR)


class Workspace:
    """Handle on one workspace folder; opens the store and app database lazily."""

    def __init__(self, path: Path | str, config: Config | None = None) -> None:
        self.path = Path(path).resolve()
        self.config = config or load_config(self.path)
        self._store: EventStore | None = None

    @classmethod
    def init(cls, path: Path | str, *, name: str = "segmint", timezone: str = "Asia/Seoul") -> Workspace:
        """Create a workspace folder (config, databases); fails if one is already there."""
        folder = Path(path)
        if (folder / CONFIG_FILE).exists():
            raise WorkspaceError("a workspace already exists here", where=str(folder))
        folder.mkdir(parents=True, exist_ok=True)
        config = Config(name=name, timezone=timezone, admin_token="adm_" + secrets.token_urlsafe(24),
                        session_secret=secrets.token_urlsafe(32))
        save_config(folder, config)
        ws = cls(folder, config)
        create_all(ws.appdb)
        ws.store.close()  # creates the event store file and its tables
        ws._store = None
        return ws

    @classmethod
    def exists(cls, path: Path | str) -> bool:
        """Whether a workspace config is present in the folder."""
        return (Path(path) / CONFIG_FILE).exists()

    @cached_property
    def appdb(self) -> Engine:
        """SQLAlchemy engine of the app-state database (tables created on first use)."""
        engine = make_engine(self.config.appdb.url, self.path)
        create_all(engine)
        return engine

    @property
    def store(self) -> EventStore:
        """The event store, opened for writing on first use (one writer process per workspace)."""
        if self._store is None:
            self._store = open_store(self.config.store.url, self.path)
            self._store.workspace_tz = self.config.timezone
        return self._store

    def open_store_read_only(self) -> EventStore:
        """A read-only handle on the store, for inspection while nothing else writes."""
        store = open_store(self.config.store.url, self.path, read_only=True)
        store.workspace_tz = self.config.timezone
        return store

    @property
    def journal_dir(self) -> Path:
        """Folder of the durable ingest journal."""
        return self.path / "journal"

    @property
    def taxonomy_path(self) -> Path:
        """Path of the taxonomy YAML file."""
        return self.path / self.config.taxonomy.file

    def save(self) -> None:
        """Persist the current config."""
        save_config(self.path, self.config)

    def close(self) -> None:
        """Close the store (and release its file lock)."""
        if self._store is not None:
            self._store.close()
            self._store = None
