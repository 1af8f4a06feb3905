"""Overlap between segments: how many members each pair shares, as counts and as shares of each row."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Engine

from segmint.errors import InvalidInput
from segmint.segments.static import members_of
from segmint.store.base import EventStore

MAX_SEGMENTS = 20


@dataclass
class Overlap:
    """A square matrix over the chosen segments: shared[i][j] members of both, percent[i][j] of row i's size."""

    segments: list[str]
    as_of: datetime | None
    sizes: list[int]
    shared: list[list[int]]
    percent: list[list[float]]  # shared[i][j] / sizes[i] * 100 (0 when segment i is empty)
    jaccard: list[list[float]]
    union: int  # users in at least one of the segments

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return asdict(self)


def overlap(engine: Engine, store: EventStore, names: Sequence[str], as_of: datetime | None = None) -> Overlap:
    """Shared members between every pair of the chosen segments, now or as of a time."""
    names = list(names)
    if not 2 <= len(names) <= MAX_SEGMENTS:
        raise InvalidInput(f"choose 2 to {MAX_SEGMENTS} segments (got {len(names)})", where="segments")
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise InvalidInput(f"segment {dup[0]!r} is chosen twice", where="segments")
    sets = [set(members_of(engine, store, n, as_of)) for n in names]
    shared = [[len(a & b) for b in sets] for a in sets]
    percent = [[round(100 * s / len(a), 2) if a else 0.0 for s in row] for a, row in zip(sets, shared, strict=True)]
    jac = [[round(len(a & b) / len(a | b), 4) if a | b else 0.0 for b in sets] for a in sets]
    return Overlap(names, as_of, [len(s) for s in sets], shared, percent, jac, len(set().union(*sets)))
