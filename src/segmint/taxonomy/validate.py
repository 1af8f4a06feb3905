"""Check one normalized event against the taxonomy: unknown events, missing or mistyped properties, traits."""

from __future__ import annotations

from datetime import datetime
from typing import Any, NamedTuple

from segmint.taxonomy.model import PropertySpec, Taxonomy

# Kinds of violation; the non-blocking ones are counted but never reject an event in strict mode.
UNKNOWN_EVENT = "unknown_event"
MISSING_REQUIRED = "missing_required"
WRONG_TYPE = "wrong_type"
NOT_IN_ENUM = "not_in_enum"
UNDECLARED_PROPERTY = "undeclared_property"
UNDECLARED_TRAIT = "undeclared_trait"
NON_BLOCKING = frozenset({UNDECLARED_PROPERTY, UNDECLARED_TRAIT})


class Violation(NamedTuple):
    """One way an event breaks the taxonomy: the field, a readable reason, its kind and the value at fault."""

    field: str
    reason: str
    kind: str = WRONG_TYPE
    value: Any = None

    @property
    def blocking(self) -> bool:
        """Whether strict mode rejects an event for this violation."""
        return self.kind not in NON_BLOCKING


def type_ok(spec: PropertySpec, value: Any) -> bool:
    """Whether a JSON value has the declared type."""
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


def _json_kind(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, dict):
        return "object"
    if isinstance(value, list):
        return "array"
    if isinstance(value, str):
        return "string"
    return type(value).__name__


def _check_values(specs: dict[str, PropertySpec], values: dict[str, Any], prefix: str,
                  undeclared_kind: str) -> list[Violation]:
    problems: list[Violation] = []
    for name, spec in specs.items():
        if name not in values or values[name] is None:
            if spec.required:
                problems.append(Violation(f"{prefix}.{name}", "required property is missing", MISSING_REQUIRED))
            continue
        value = values[name]
        if not type_ok(spec, value):
            problems.append(Violation(f"{prefix}.{name}", f"expected {spec.type}, got {_json_kind(value)}",
                                      WRONG_TYPE, value))
        elif spec.enum is not None and value not in spec.enum:
            problems.append(Violation(f"{prefix}.{name}", f"{value!r} is not one of {spec.enum}", NOT_IN_ENUM, value))
    for name in values:
        if name not in specs:
            what = "trait" if undeclared_kind == UNDECLARED_TRAIT else "property"
            problems.append(Violation(f"{prefix}.{name}", f"{what} {name!r} is not declared in the taxonomy",
                                      undeclared_kind, values[name]))
    return problems


def check_event(tax: Taxonomy, ev: dict[str, Any]) -> list[Violation]:
    """Each way the event breaks the taxonomy (track properties, identify traits); empty when it conforms."""
    if ev["type"] == "identify":
        traits = ev.get("traits") or ev.get("properties") or {}
        # Traits are checked for type only: nothing is required of a partial identify call.
        specs = {k: v.model_copy(update={"required": False}) for k, v in tax.traits.items()}
        return _check_values(specs, traits, "traits", UNDECLARED_TRAIT)
    if ev["type"] in ("page", "screen"):
        # page/screen calls are checked only when the taxonomy declares them (as `$page`, `$screen`)
        page = tax.events.get(ev["event"])
        return [] if page is None else _check_values(page.properties, ev.get("properties") or {}, "properties",
                                                     UNDECLARED_PROPERTY)
    if ev["type"] != "track":
        return []
    spec = tax.events.get(ev["event"])
    if spec is None:
        return [Violation("event", f"unknown event {ev['event']!r} (not in the taxonomy)", UNKNOWN_EVENT, ev["event"])]
    return _check_values(spec.properties, ev.get("properties") or {}, "properties", UNDECLARED_PROPERTY)
