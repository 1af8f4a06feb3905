"""Small helpers for SQL text that is built from names: identifiers are always quoted here."""

from __future__ import annotations

from segmint.errors import InvalidInput
from segmint.store.schema import is_safe_name


def quote_ident(name: str) -> str:
    """Double-quote an identifier after checking it holds no quote or control characters."""
    if not is_safe_name(name):
        raise InvalidInput(f"name {name!r} contains a quote or control character", where="name")
    return '"' + name + '"'


def json_path(name: str) -> str:
    """A JSON path for a top-level key, passed as a bound parameter, never pasted into SQL."""
    if not is_safe_name(name):
        raise InvalidInput(f"name {name!r} contains a quote or control character", where="name")
    return '$."' + name + '"'
