"""Segment text laid out for people: one condition per line, nested groups and `with` bodies indented."""

from __future__ import annotations

from segmint.segments import model as m
from segmint.segments.dsl import parse, to_text

INDENT = "  "


def _child(c: m.Condition, depth: int) -> str:
    if isinstance(c, m.And | m.Or | m.Correlated):
        return "(" + _fmt(c, depth + 1) + ")"
    return to_text(c)


def _fmt(c: m.Condition, depth: int) -> str:
    pad = INDENT * depth
    if isinstance(c, m.And | m.Or):
        word = "and" if isinstance(c, m.And) else "or"
        return f"\n{pad}{word} ".join(_child(i, depth) for i in c.items)
    if isinstance(c, m.Not):
        return "not " + _child(c.item, depth)
    if isinstance(c, m.Correlated):
        full, body = to_text(c), to_text(c.condition)
        head = full[: len(full) - len(body) - 2]  # to_text writes "HEAD: BODY"
        return f"{head}:\n{pad}{INDENT}{_fmt(c.condition, depth + 1)}"
    return to_text(c)


def pretty_text(tree: m.Condition) -> str:
    """The tree's text over several lines; the one-line canonical text if the layout would not parse back equal."""
    text = _fmt(tree, 0)
    try:
        if parse(text) == tree:
            return text
    except Exception:
        pass
    return to_text(tree)
