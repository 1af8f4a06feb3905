"""What `taxonomy show` and `GET /api/taxonomy` report: declared events and traits next to what arrived."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from segmint.store.base import EventCount
from segmint.taxonomy.model import PropertySpec, Taxonomy

CHECKED_TYPES = ("track", "page", "screen")


def _prop(name: str, spec: PropertySpec) -> dict[str, Any]:
    return {"name": name, "display_name": spec.display_name, "type": spec.type, "required": spec.required,
            "enum": spec.enum, "column": spec.column, "description": spec.description}


def taxonomy_overview(tax: Taxonomy | None, counts: Iterable[EventCount], *, mode: str, file: str) -> dict[str, Any]:
    """Declared events (with counts seen), traits, and the track events that arrived undeclared."""
    counts = list(counts)
    seen = {c.event: c.count for c in counts if c.type in CHECKED_TYPES}
    declared = tax.events if tax is not None else {}
    events = [{"name": name, "display_name": ev.display_name, "description": ev.description,
               "count": seen.get(name, 0), "properties": [_prop(n, p) for n, p in ev.properties.items()]}
              for name, ev in declared.items()]
    traits = [_prop(n, p) for n, p in (tax.traits.items() if tax is not None else ())]
    undeclared = [{"name": c.event, "count": c.count} for c in counts if c.type == "track" and c.event not in declared]
    return {"mode": mode, "file": file, "declared": tax is not None, "events": events, "traits": traits,
            "undeclared_events": undeclared}
