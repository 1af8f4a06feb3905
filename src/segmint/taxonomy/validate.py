"""Check one normalized event against the taxonomy: unknown events, missing or mistyped properties."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from segmint.taxonomy.model import PropertySpec, Taxonomy


def _type_ok(spec: PropertySpec, value: Any) -> bool:
    match spec.type:
        case "string":
            return isinstance(value, str)
        case "number":
            return isinstance(value, int | float) and not isinstance(value, bool)
        case "integer":
            return isinstance(value, int) and not isinstance(value, bool)
        case "boolean":
            return isinstance(value, bool)
        case "datetime":
            if not isinstance(value, str):
                return False
            try:
                datetime.fromisoformat(value.replace("Z", "+00:00"))
            except ValueError:
                return False
            return True
        case "object":
            return isinstance(value, dict)
        case "array":
            return isinstance(value, list)
    return True


def check_event(tax: Taxonomy, ev: dict[str, Any]) -> list[tuple[str, str]]:
    """(field, reason) for each way the event breaks the taxonomy; empty when it conforms."""
    if ev["type"] != "track":
        return []
    spec = tax.events.get(ev["event"])
    if spec is None:
        return [("event", f"unknown event {ev['event']!r} (not in the taxonomy)")]
    props = ev.get("properties") or {}
    problems = []
    for name, pspec in spec.properties.items():
        if name not in props or props[name] is None:
            if pspec.required:
                problems.append((f"properties.{name}", "required property is missing"))
            continue
        value = props[name]
        if not _type_ok(pspec, value):
            problems.append((f"properties.{name}", f"expected {pspec.type}, got {type(value).__name__}"))
        elif pspec.enum is not None and value not in pspec.enum:
            problems.append((f"properties.{name}", f"{value!r} is not one of {pspec.enum}"))
    return problems
