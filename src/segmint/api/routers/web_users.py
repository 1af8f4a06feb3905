"""UI user profiles: search by user id (`/users`) and one user's page (`/users/ID`): traits, computed
traits, a timeline of events and messages, and the saved segments the user is in now."""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import quote

import orjson
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from segmint.api.deps import AppState, get_state
from segmint.appdb.users import User
from segmint.errors import SegmintError
from segmint.segments import saved
from segmint.segments.reference import explain, load_user
from segmint.taxonomy.runtime import workspace_taxonomy
from segmint.traits import TRAITS
from segmint.web.i18n import event_name, request_lang, translator
from segmint.web.render import current_user, render

router = APIRouter(tags=["web"], include_in_schema=False)
log = logging.getLogger(__name__)
TIMELINE = 100
SEARCH_LIMIT = 20


def _fmt(value: Any) -> str:
    return str(value)[:19] if value is not None else "-"


def user_url(user_id: str) -> str:
    """The profile page of a user id."""
    return "/users/" + quote(user_id, safe="")


@router.get("/users", response_class=HTMLResponse, response_model=None)
def users_search(request: Request, q: str = Query("", max_length=512), state: AppState = Depends(get_state),
                 _user: User = Depends(current_user)) -> Response:
    """Find a user by id (exact match opens the profile; otherwise ids starting with the text)."""
    q = q.strip()
    found: list[dict[str, Any]] = []
    if q:
        store = state.workspace.store
        exact = store.query("SELECT user_id FROM profiles WHERE user_id = ? UNION "
                            "SELECT user_id FROM events WHERE user_id = ? LIMIT 1", [q, q]).num_rows
        if exact:
            return RedirectResponse(user_url(q), status_code=303)
        rows = store.query("SELECT user_id, last_seen FROM profiles WHERE starts_with(user_id, ?) "
                           "ORDER BY user_id LIMIT ?", [q, SEARCH_LIMIT]).to_pylist()
        found = [{"id": r["user_id"], "url": user_url(r["user_id"]), "last_seen": _fmt(r["last_seen"])}
                 for r in rows]
    recent = [] if q else [{"id": r["user_id"], "url": user_url(r["user_id"]), "last_seen": _fmt(r["last_seen"])}
                           for r in state.workspace.store.query(
                               "SELECT user_id, last_seen FROM profiles WHERE last_seen IS NOT NULL "
                               "ORDER BY last_seen DESC, user_id LIMIT ?", [SEARCH_LIMIT]).to_pylist()]
    return render(request, "users.html", {"q": q, "found": found, "searched": bool(q), "recent": recent})


def current_segments(ws: Any, user_id: str) -> list[dict[str, Any]]:
    """Every saved segment with whether the user is a member now (reference evaluator; static: frozen list)."""
    events, profile = load_user(ws.store, user_id)
    resolve = saved.resolver(ws.appdb)
    out = []
    for seg in saved.list_segments(ws.appdb):
        row: dict[str, Any] = {"name": seg.name, "url": "/segments/" + quote(seg.name, safe=""), "kind": seg.kind,
                               "labels": seg.labels, "error": ""}
        try:
            frozen = saved.static_members(ws.appdb, seg.name)
            row["member"] = (user_id in frozen if frozen is not None else
                             explain(seg.tree(), events, profile, workspace_tz=ws.config.timezone,
                                     resolve=resolve).result)
        except (SegmintError, RecursionError) as exc:
            row["member"] = None
            row["error"] = getattr(exc, "message", str(exc))
        out.append(row)
    return out


def _traits(ws: Any, raw: dict[str, Any]) -> list[dict[str, Any]]:
    """Traits grouped: declared in the taxonomy, computed by segmint, and any other trait that arrived."""
    try:
        declared = workspace_taxonomy(ws).traits
    except SegmintError:
        declared = {}
    groups: dict[str, list[dict[str, Any]]] = {"declared": [], "computed": [], "other": []}
    for name in sorted(raw):
        value = raw[name]
        shown = value if isinstance(value, str) else orjson.dumps(value).decode()
        spec = declared.get(name)
        group = "computed" if name in TRAITS else "declared" if spec is not None else "other"
        groups[group].append({"name": name, "label": (spec.display_name if spec else None) or "", "value": shown,
                              "boolean": value if isinstance(value, bool) else None,  # shown as 예 / 아니오
                              "family": TRAITS[name][0] if name in TRAITS else ""})
    return [{"group": g, "traits": items} for g, items in groups.items() if items]


def _timeline(ws: Any, user_id: str, labels: dict[str, str], t: Any) -> list[dict[str, Any]]:
    rows = ws.store.query("SELECT ts, event, type, properties FROM events WHERE user_id = ? "
                          "ORDER BY ts DESC, message_id DESC LIMIT ?", [user_id, TIMELINE]).to_pylist()
    out = []
    for r in rows:
        try:
            props = orjson.loads(r["properties"]) if r["properties"] else {}
        except orjson.JSONDecodeError:
            props = {}
        label = event_name(r["event"], labels.get(r["event"]), t)
        out.append({"ts": _fmt(r["ts"]), "event": r["event"], "label": label,
                    "message": str(r["event"]).startswith("message_"),
                    "props": ", ".join(f"{k}={v}" for k, v in list(props.items())[:8])})
    return out


@router.get("/users/{user_id:path}", response_class=HTMLResponse)
def user_page(request: Request, user_id: str, state: AppState = Depends(get_state),
              _user: User = Depends(current_user)) -> HTMLResponse:
    """One user: profile fields, traits (grouped), recent events and messages, current segments."""
    ws = state.workspace
    prof = ws.store.query("SELECT traits, first_seen, last_seen, timezone FROM profiles WHERE user_id = ?",
                          [user_id]).to_pylist()
    try:
        tax = workspace_taxonomy(ws)
        labels = {n: e.display_name or "" for n, e in tax.events.items()}
    except SegmintError:
        labels = {}
    timeline = _timeline(ws, user_id, labels, translator(request_lang(request)))
    if not prof and not timeline:
        return render(request, "users.html", {"q": user_id, "found": [], "searched": True, "recent": []},
                      status_code=404)
    raw = orjson.loads(prof[0]["traits"]) if prof and prof[0]["traits"] else {}
    context = {
        "user_id": user_id,
        "first_seen": _fmt(prof[0]["first_seen"]) if prof else "-",
        "last_seen": _fmt(prof[0]["last_seen"]) if prof else "-",
        "timezone": (prof[0]["timezone"] if prof else None) or "-",
        "trait_groups": _traits(ws, raw),
        "timeline": timeline,
        "messages": [e for e in timeline if e["message"]],
        "segments": current_segments(ws, user_id),
    }
    return render(request, "user.html", context)
