"""The taxonomy file (YAML): events with typed properties, and profile traits."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

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

    @model_validator(mode="after")
    def _column_type(self) -> PropertySpec:
        if self.column and self.type in ("object", "array"):
            raise ValueError(f"column: a {self.type} property cannot be a typed column")
        return self


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


def _node_at(root: yaml.Node | None, loc: tuple[Any, ...], *, key: bool = False) -> yaml.Node | None:
    """The YAML node at a pydantic error location (mapping keys / list indexes), as deep as it goes;
    with `key`, the last mapping key itself rather than its value (for keys that should not be there)."""
    node = root
    for i, part in enumerate(loc):
        if isinstance(node, yaml.MappingNode):
            pair = next(((k, v) for k, v in node.value if k.value == str(part)), None)
            if pair is None:
                return node
            node = pair[0] if key and i == len(loc) - 1 else pair[1]
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            node = node.value[part]
        else:
            return node
    return node


def parse_taxonomy(text: str, source: str = "taxonomy.yaml") -> Taxonomy:
    """Validate taxonomy YAML text; errors say `source:line:col` and the field path at fault."""
    try:
        data = yaml.safe_load(text) or {}
        root = yaml.compose(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{source}:{mark.line + 1}:{mark.column + 1}" if mark else source
        raise InvalidInput(f"malformed YAML: {getattr(exc, 'problem', exc)}", where=where) from exc
    if not isinstance(data, dict):
        raise InvalidInput(f"expected a mapping with `events:` and `traits:`, got {type(data).__name__}",
                           where=f"{source}:1:1")
    try:
        tax = Taxonomy.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = ".".join(str(p) for p in err["loc"])
        node = _node_at(root, err["loc"], key=err["type"] == "extra_forbidden")
        where = f"{source}:{node.start_mark.line + 1}:{node.start_mark.column + 1}" if node else source
        raise InvalidInput(f"{loc}: {err['msg']}", where=where) from exc
    try:
        tax.typed_columns()
    except InvalidInput as exc:
        node = _node_at(root, tuple(p for p in (exc.where or "").split(".") if p), key=True)
        where = f"{source}:{node.start_mark.line + 1}:{node.start_mark.column + 1}" if node else source
        raise InvalidInput(f"{exc.where}: {exc.message}", where=where) from exc
    return tax


def load_taxonomy(path: Path) -> Taxonomy:
    """Read and validate a taxonomy YAML file, with errors that name the place."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InvalidInput(f"cannot read the taxonomy file: {exc.strerror}", where=str(path)) from exc
    return parse_taxonomy(text, str(path))


def dump_taxonomy(tax: Taxonomy) -> str:
    """YAML text of a taxonomy (Korean kept as is)."""
    data = tax.model_dump(mode="json", exclude_defaults=True)
    for section in [ev.get("properties", {}) for ev in data.get("events", {}).values()] + [data.get("traits", {})]:
        for name, spec in section.items():  # always say the type, even the default one
            section[name] = {"type": "string", **spec}
    return yaml.safe_dump(data, allow_unicode=True, sort_keys=False)
