"""The UI home page (`GET /`, signed in): the workspace's real figures and links to the API docs."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse

from segmint.api.deps import AppState, get_state
from segmint.appdb.users import User
from segmint.errors import SegmintError
from segmint.taxonomy.runtime import workspace_taxonomy
from segmint.web.activity import ingest_rate, recent_evaluations, recent_failures, recent_runs
from segmint.web.i18n import event_name, request_lang, translator
from segmint.web.render import current_user, render

router = APIRouter(tags=["web"])


def _fmt_time(value: Any) -> str:
    return str(value)[:16] if value is not None else "-"


@router.get("/", response_class=HTMLResponse, include_in_schema=False)
def landing(request: Request, state: AppState = Depends(get_state),
            _user: User = Depends(current_user)) -> HTMLResponse:
    """Headline figures, events per name, ingest stats, recent evaluations and sends, failures; no secrets."""
    ws = state.workspace
    store = ws.store
    t = translator(request_lang(request))
    summary = store.summary()
    try:
        tax = workspace_taxonomy(ws)
    except SegmintError:  # a broken taxonomy file must not take the landing page down
        tax = None
    events = []
    for c in store.event_counts():
        spec = tax.events.get(c.event) if tax else None
        events.append(
            {
                "event": c.event,
                "display_name": event_name(c.event, spec.display_name if spec else None, t),
                "count": c.count,
                "users": c.users,
                "first": _fmt_time(c.first),
                "last": _fmt_time(c.last),
            }
        )
    context = {
        "name": ws.config.name,
        "timezone": ws.config.timezone,
        "summary": summary,
        "first_event": _fmt_time(summary["first_event"]),
        "last_event": _fmt_time(summary["last_event"]),
        "events": events,
        "ingest": dict(state.ingestor.stats),
        "writer_ok": state.ingestor.error is None,
        "rate": ingest_rate(store, datetime.now(UTC).replace(tzinfo=None)),
        "evaluations": recent_evaluations(ws.appdb),
        "runs": recent_runs(ws.appdb),
        "failures": recent_failures(ws.appdb),
    }
    return render(request, "landing.html", context)
