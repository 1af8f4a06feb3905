"""Sync definitions: which database, which query, how rows map, which column moves the cursor.

A definition is a YAML file kept in the workspace's `syncs/` folder (one file per sync, named after
it). `${VAR}` in the URL is taken from the environment, so passwords need not sit in the file.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import yaml
from pydantic import BaseModel, Field, ValidationError, field_validator

from segmint.errors import InvalidInput, NotFound
from segmint.ingest.tabular import ColumnMapping
from segmint.store.schema import is_safe_name

SYNC_DIR = "syncs"
_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$")
SCHEMES = ("postgresql", "postgres", "mysql", "sqlite")


class SyncDefinition(BaseModel):
    """One pull from the team's own database into the event store."""

    name: str
    url: str = Field(description="postgresql://..., mysql://..., sqlite:///path; ${VAR} is expanded.")
    query: str = Field(description="Any SELECT; it is wrapped as a subquery, never edited.")
    cursor: str | None = Field(default=None, description="Column that only grows (id, updated_at).")
    batch_size: int = Field(default=50_000, ge=1, le=5_000_000)
    map: ColumnMapping = Field(default_factory=ColumnMapping)

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not _NAME.match(value):
            raise ValueError("use letters, digits, '_', '-', '.' (up to 64)")
        return value

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        scheme = value.split(":", 1)[0].split("+", 1)[0].lower()
        if scheme not in SCHEMES:
            raise ValueError(f"unsupported database {scheme!r}; use one of {', '.join(SCHEMES)}")
        return value

    @field_validator("query")
    @classmethod
    def _query(cls, value: str) -> str:
        value = value.strip().rstrip(";").strip()
        if not value:
            raise ValueError("empty query")
        return value

    @field_validator("cursor")
    @classmethod
    def _cursor(cls, value: str | None) -> str | None:
        if value is not None and not is_safe_name(value):
            raise ValueError("cursor column name holds a quote or control character")
        return value

    @property
    def state_key(self) -> str:
        """Key of this sync's cursor in the store state (written with the data it covers)."""
        return f"sync:{self.name}"

    def resolved_url(self) -> str:
        """The URL with ${VAR} taken from the environment."""
        return os.path.expandvars(self.url)


def parse_definition(text: str, where: str) -> SyncDefinition:
    """Validate a sync definition's YAML text; errors name the file and field."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise InvalidInput(f"malformed YAML: {exc}", where=where) from None
    if not isinstance(data, dict):
        raise InvalidInput("a sync definition is a YAML object (name, url, query, cursor, map)", where=where)
    try:
        return SyncDefinition.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = ".".join(str(p) for p in err["loc"])
        raise InvalidInput(f"{loc}: {err['msg'].removeprefix('Value error, ')}", where=where) from None


def sync_dir(workspace_path: Path) -> Path:
    """The workspace folder holding sync definitions."""
    return Path(workspace_path) / SYNC_DIR


def add_definition(workspace_path: Path, source: Path) -> SyncDefinition:
    """Validate a definition file and store it in the workspace (replacing one of the same name)."""
    try:
        text = Path(source).read_text(encoding="utf-8")
    except OSError as exc:
        raise InvalidInput(f"cannot read: {exc.strerror}", where=str(source)) from None
    definition = parse_definition(text, str(source))
    folder = sync_dir(workspace_path)
    folder.mkdir(exist_ok=True)
    (folder / f"{definition.name}.yaml").write_text(text, encoding="utf-8")
    return definition


def list_definitions(workspace_path: Path) -> list[SyncDefinition]:
    """Every stored sync definition, by name."""
    folder = sync_dir(workspace_path)
    if not folder.exists():
        return []
    return [parse_definition(p.read_text(encoding="utf-8"), str(p)) for p in sorted(folder.glob("*.yaml"))]


def load_definition(workspace_path: Path, name: str) -> SyncDefinition:
    """One stored sync definition by name."""
    path = sync_dir(workspace_path) / f"{name}.yaml"
    if not _NAME.match(name) or not path.exists():
        known = ", ".join(d.name for d in list_definitions(workspace_path)) or "none"
        raise NotFound(f"no sync named {name!r} (known: {known})", where="sync")
    return parse_definition(path.read_text(encoding="utf-8"), str(path))
