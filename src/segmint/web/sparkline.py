"""A tiny inline SVG sparkline (no script, no chart library) for a series of daily counts."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

PX_PER_POINT = 2  # a longer series is trimmed to its latest width / 2 points (finer steps cannot be seen)


def sparkline(values: Sequence[int], *, label: str, width: int = 120, height: int = 24) -> str:
    """An <svg role="img"> polyline of the values scaled to the box, with `label` as its accessible name; a series
    longer than the box shows keeps its latest `width / PX_PER_POINT` values."""
    keep = max(width // PX_PER_POINT, 2)
    values = list(values)[-keep:]
    n = len(values)
    lo, hi = min(values, default=0), max(values, default=0)
    span = (hi - lo) or 1
    step = width / max(n - 1, 1)
    pts = " ".join(f"{i * step:.1f},{height - 2 - (v - lo) / span * (height - 4):.1f}" for i, v in enumerate(values))
    last = values[-1] if values else 0
    return (f'<svg class="spark" role="img" aria-label="{escape(label)}" width="{width}" height="{height}" '
            f'viewBox="0 0 {width} {height}" data-points="{n}" data-last="{last}" data-max="{hi}" data-min="{lo}">'
            f'<title>{escape(label)}</title><polyline fill="none" stroke="#2f6fed" stroke-width="1.5" '
            f'points="{pts}"/></svg>')
