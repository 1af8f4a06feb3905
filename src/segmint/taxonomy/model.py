"""The taxonomy file (YAML): events with typed properties, and profile traits."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from segmint.errors import InvalidInput

PropType = Literal["string", "number", "integer", "boolean", "datetime", "object", "array"]


class PropertySpec(BaseModel):
    """One property of an event (or one trait)."""

    model_config = ConfigDict(extra="forbid")

    type: PropType = "string"
    required: bool = False
    display_name: str | None = None
    description: str = ""
    enum: list[str | int | float] | None = None
    column: bool = False  # store as a typed column for fast segments


class EventSpec(BaseModel):
    """One declared event."""

    model_config = ConfigDict(extra="forbid")

    display_name: str | None = None
    description: str = ""
    properties: dict[str, PropertySpec] = Field(default_factory=dict)


class Taxonomy(BaseModel):
    """The whole taxonomy: events by name and profile traits by name."""

    model_config = ConfigDict(extra="forbid")

    version: int = 1
    events: dict[str, EventSpec] = Field(default_factory=dict)
    traits: dict[str, PropertySpec] = Field(default_factory=dict)

    def typed_columns(self) -> dict[str, str]:
        """Properties flagged `column: true`, by name -> type (one type per name across events)."""
        cols: dict[str, str] = {}
        for ev_name, ev in self.events.items():
            for name, spec in ev.properties.items():
                if not spec.column:
                    continue
                if name in cols and cols[name] != spec.type:
                    raise InvalidInput(f"property {name!r} is a column with two types ({cols[name]}, {spec.type})",
                                       where=f"events.{ev_name}.properties.{name}")
                cols[name] = spec.type
        return cols


def load_taxonomy(path: Path) -> Taxonomy:
    """Read and validate a taxonomy YAML file, with errors that name the place."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else str(path)
        raise InvalidInput(f"malformed YAML: {getattr(exc, 'problem', exc)}", where=where) from exc
    try:
        return Taxonomy.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = ".".join(str(p) for p in err["loc"])
        raise InvalidInput(f"{loc}: {err['msg']}", where=str(path)) from exc


def dump_taxonomy(tax: Taxonomy) -> str:
    """YAML text of a taxonomy (Korean kept as is)."""
    data = tax.model_dump(mode="json", exclude_defaults=True)
    return yaml.safe_dump(data, allow_unicode=True, sort_keys=False)
