"""Errors of segment text and trees: line:column, a caret under the place, and a suggestion."""

from __future__ import annotations

import difflib
from collections.abc import Iterable

from segmint.errors import SegmintError


def suggest(name: str, known: Iterable[str]) -> str | None:
    """The closest known name (difflib), or None when nothing is close."""
    close = difflib.get_close_matches(name, sorted(set(known)), n=1, cutoff=0.6)
    return close[0] if close else None


def caret(text: str, line: int, column: int, width: int = 1) -> str:
    """The offending source line with a caret (or carets) under the column (1-based)."""
    lines = text.splitlines() or [""]
    src = lines[line - 1] if 0 < line <= len(lines) else ""
    return f"  {src}\n  {' ' * (column - 1)}{'^' * max(1, width)}"


class SegmentSyntaxError(SegmintError):
    """Segment text that does not parse or names something unknown; says line:column and shows a caret."""

    code = "segment_syntax"

    def __init__(self, message: str, *, text: str, line: int, column: int, width: int = 1,
                 suggestion: str | None = None) -> None:
        full = message + (f" (did you mean {suggestion}?)" if suggestion else "")
        super().__init__(full, where=f"{line}:{column}")
        self.line = line
        self.column = column
        self.suggestion = suggestion
        self.display = caret(text, line, column, width)

    def __str__(self) -> str:
        return f"{self.where}: {self.message}\n{self.display}"

    def to_dict(self) -> dict[str, object]:
        """JSON body for the API: message, line, column, caret display, suggestion."""
        body = super().to_dict()
        body.update(line=self.line, column=self.column, display=self.display, suggestion=self.suggestion)
        return body


class SegmentError(SegmintError):
    """A segment tree that is not valid (unknown names, unbound anchors, wrong value types): every issue."""

    code = "segment_invalid"

    def __init__(self, issues: list, where: str | None = None) -> None:  # list[Issue]
        self.issues = issues
        super().__init__("; ".join(str(i) for i in issues), where=where)
