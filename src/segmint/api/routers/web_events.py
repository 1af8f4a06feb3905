"""The UI events page (`/events`): events with taxonomy names and properties, daily volume, problems."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse

from segmint.api.deps import AppState, get_state
from segmint.appdb.users import User
from segmint.errors import SegmintError
from segmint.taxonomy.runtime import workspace_taxonomy
from segmint.web.i18n import event_name, request_lang, translator
from segmint.web.render import current_user, render

router = APIRouter(tags=["web"], include_in_schema=False)
DAYS = 30


def _fmt(value: Any) -> str:
    return str(value)[:16] if value is not None else "-"


@router.get("/events", response_class=HTMLResponse)
def events_page(request: Request, state: AppState = Depends(get_state),
                _user: User = Depends(current_user)) -> HTMLResponse:
    """Every event with its display name, figures, declared properties, chart, violations, rejections."""
    ws = state.workspace
    t = translator(request_lang(request))
    try:
        tax = workspace_taxonomy(ws)
    except SegmintError:
        tax = None
    events = []
    for c in ws.store.event_counts():
        spec = tax.events.get(c.event) if tax else None
        props = [{"name": n, "type": p.type, "required": p.required, "display_name": p.display_name or "",
                  "description": p.description} for n, p in (spec.properties.items() if spec else ())]
        shown = event_name(c.event, spec.display_name if spec else None, t)
        events.append({"event": c.event, "display_name": shown,
                       "declared": spec is not None, "count": c.count, "users": c.users,
                       "first": _fmt(c.first), "last": _fmt(c.last), "properties": props})
    context = {
        "events": events,
        "violations": ws.store.violations(),
        "rejected": [{**r, "received_at": _fmt(r["received_at"])} for r in ws.store.rejected(limit=20)],
    }
    return render(request, "events.html", context)


@router.get("/ui/events/volume")
def event_volume(event: str, state: AppState = Depends(get_state),
                 _user: User = Depends(current_user)) -> dict[str, Any]:
    """Daily counts of one event over the last 30 days (UTC), zero-filled, for the chart."""
    today = datetime.now(UTC).date()
    start = today - timedelta(days=DAYS - 1)
    table = state.workspace.store.query(
        "SELECT CAST(ts AS DATE) AS day, count(*) AS n FROM events WHERE event = ? AND ts >= ? "
        "GROUP BY day", [event, datetime(start.year, start.month, start.day)])
    counts = {str(d): int(n) for d, n in zip(table.column("day").to_pylist(), table.column("n").to_pylist(),
                                              strict=True)} if table.num_rows else {}
    days = [str(start + timedelta(days=i)) for i in range(DAYS)]
    return {"event": event, "days": days, "counts": [counts.get(d, 0) for d in days]}
