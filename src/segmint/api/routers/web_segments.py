"""UI segment pages: the list (`/segments`), the builder (`/builder`), a segment's page (`/segments/NAME`)
and the small read endpoints they call (`/ui/segments/...`)."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, urlencode

import orjson
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import BaseModel, Field, ValidationError

from segmint.api.deps import AppState, get_state
from segmint.appdb.users import User
from segmint.errors import InvalidInput, SegmintError
from segmint.segments import saved
from segmint.segments.evaluate import count as count_members
from segmint.segments.model import PROFILE_FIELDS, condition_from_json
from segmint.segments.reference import evaluate_user
from segmint.taxonomy.overview import taxonomy_overview
from segmint.taxonomy.runtime import workspace_taxonomy
from segmint.traits import TRAITS
from segmint.web.explain_text import localize_tree
from segmint.web.i18n import js_catalog, request_lang, translator
from segmint.web.pretty import pretty_text
from segmint.web.render import current_user, editor_user, render, require_csrf
from segmint.web.sparkline import sparkline

router = APIRouter(tags=["web"], include_in_schema=False)
log = logging.getLogger(__name__)
TOP_VALUES = 30


def _fmt(value: Any) -> str:
    return str(value)[:16] if value is not None else "-"


MAX_OVERLAP_OTHERS = 7  # segments compared with this one in the overlap panel


def segment_url(name: str) -> str:
    """The page of a saved segment (names may hold Korean, spaces and '/')."""
    return "/segments/" + quote(name, safe="")


def _last_evaluations(state: AppState) -> dict[str, dict[str, Any]]:
    """Per segment: its latest live evaluation (when, kind, status, members, entered/exited, error)."""
    from segmint.segments import live_log

    rows = live_log.latest_evaluations(state.workspace.appdb)
    return {name: {**r, "when": _fmt(r["finished_at"] or r["started_at"])} for name, r in rows.items()}


@router.get("/segments", response_class=HTMLResponse)
def segments_page(request: Request, state: AppState = Depends(get_state),
                  label: str | None = Query(None, max_length=64),
                  _user: User = Depends(current_user)) -> HTMLResponse:
    """Every saved segment: name, description, labels, kind, size (loaded per row), last evaluation."""
    segs = saved.list_segments(state.workspace.appdb, label or None)
    evaluations = _last_evaluations(state)
    rows = [{"name": s.name, "url": segment_url(s.name), "description": s.description, "labels": s.labels,
             "kind": s.kind, "version": s.version, "updated": _fmt(s.updated_at),
             "last_eval": evaluations.get(s.name)} for s in segs]
    return render(request, "segments.html", {"segments": rows, "label": label or ""})


@router.get("/ui/segments/size", response_class=HTMLResponse)
def segment_size(request: Request, name: str = Query(..., min_length=1, max_length=128),
                 state: AppState = Depends(get_state), _user: User = Depends(current_user)) -> HTMLResponse:
    """A segment's member count as a table-cell fragment (static: its frozen list), or its error."""
    ws = state.workspace
    t = translator(request_lang(request))
    try:
        frozen = saved.static_members(ws.appdb, name)
        n = len(frozen) if frozen is not None else saved.guarded(
            count_members, ws.store, saved.segment_tree(ws.appdb, name))
    except SegmintError as exc:
        status = "unsupported" if exc.code == "segment_unsupported" else "error"
        return HTMLResponse(f'<span class="bad" data-status="{status}" title="{_esc(exc.message)}">'
                            f'{_esc(t("seg.status_" + status))}</span>')
    return HTMLResponse(f'<span data-status="ok" data-count="{n}">{n:,}</span>')


TREND_DAYS = 30


@router.get("/ui/segments/trend", response_class=HTMLResponse)
def segment_trend(request: Request, name: str = Query(..., min_length=1, max_length=128),
                  state: AppState = Depends(get_state), _user: User = Depends(current_user)) -> HTMLResponse:
    """A dynamic segment's members over the last 30 days (recorded growth) as an inline SVG sparkline."""
    from segmint.analytics.segment_growth import growth

    ws = state.workspace
    t = translator(request_lang(request))
    if saved.static_members(ws.appdb, name) is not None:
        return HTMLResponse(f'<span class="muted" data-trend="static">{_esc(t("seg.kind_static"))}</span>')
    try:
        g = growth(ws.appdb, ws.store, name, zone=ws.config.zone, days=TREND_DAYS)
    except SegmintError as exc:
        return HTMLResponse(f'<span class="bad" data-trend="error" title="{_esc(exc.message)}">-</span>')
    if g.backfilled_until is None and g.live_since is None:
        return HTMLResponse(f'<span class="muted" data-trend="none">{_esc(t("seg.trend_none"))}</span>')
    days = g.days
    if g.backfilled_until is None and g.live_since is not None:  # no backfill: start where recording began
        began = g.live_since.replace(tzinfo=UTC).astimezone(ws.config.zone).date()
        days = [d for d in g.days if d.day >= began] or g.days[-1:]
    values = [d.members for d in days]
    if len(values) == 1:
        values = values * 2  # one recorded day: a flat line at today's size
    label = t("seg.trend_label").format(name=name, first=f"{values[0]:,}", last=f"{values[-1]:,}")
    return HTMLResponse(sparkline(values, label=label))


def _esc(text: str) -> str:
    return (text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;"))


def builder_data(state: AppState, lang: str) -> dict[str, Any]:
    """What the builder's pickers offer: events (with counts seen), their properties, traits, segments."""
    ws = state.workspace
    try:
        tax = workspace_taxonomy(ws)
    except SegmintError:
        tax = None
    overview = taxonomy_overview(tax, ws.store.event_counts(), mode=ws.config.taxonomy.mode, file="")
    events = [{"name": e["name"], "label": e.get("display_name") or "", "count": e.get("count", 0),
               "properties": [{"name": p["name"], "label": p.get("display_name") or "", "type": p["type"],
                               "enum": p.get("enum")} for p in e.get("properties", [])]}
              for e in overview.get("events", [])]
    events += [{"name": e["name"], "label": "", "count": e.get("count", 0), "properties": []}
               for e in overview.get("undeclared_events", [])]
    traits = [{"name": p["name"], "label": p.get("display_name") or "", "type": p["type"], "enum": p.get("enum"),
               "source": "trait", "group": "declared"} for p in overview.get("traits", [])]
    seen = {tr["name"] for tr in traits}
    traits += [{"name": n, "label": "", "type": "", "enum": None, "source": "trait", "group": "computed",
                "description": d} for n, (_f, d) in TRAITS.items() if n not in seen]
    traits += [{"name": n, "label": "", "type": "datetime" if n != "timezone" else "string", "enum": None,
                "source": "profile", "group": "profile"} for n in PROFILE_FIELDS]
    segments = [s.name for s in saved.list_segments(ws.appdb)]
    return {"events": events, "traits": traits, "segments": segments, "lang": lang, "i18n": js_catalog(lang)}


@router.get("/builder", response_class=HTMLResponse)
def builder_page(request: Request, state: AppState = Depends(get_state),
                 name: str | None = Query(None, max_length=128),
                 _user: User = Depends(current_user)) -> HTMLResponse:
    """The segment builder: empty, or loaded with a saved segment (`?name=`)."""
    seg = saved.get_segment(state.workspace.appdb, name) if name else None
    data = builder_data(state, request_lang(request))
    data["segment"] = ({"name": seg.name, "description": seg.description, "labels": seg.labels, "kind": seg.kind,
                        "definition": seg.definition, "text": pretty_text(seg.tree()), "version": seg.version}
                       if seg else None)
    data_json = orjson.dumps(data).decode().replace("<", "\\u003c")  # no "</script>" inside the script tag
    return render(request, "builder.html", {"segment": seg, "data_json": data_json,
                                            "segment_url": segment_url(seg.name) if seg else "",
                                            "text": data["segment"]["text"] if seg else ""})


class PrintIn(BaseModel):
    """Condition trees (JSON) to print as segment text."""

    definitions: list[dict[str, Any]] = Field(max_length=200)


@router.post("/ui/segments/print", dependencies=[Depends(require_csrf)])
def print_trees(body: PrintIn, _user: User = Depends(current_user)) -> dict[str, list[str]]:
    """Segment text of each tree (the builder shows nodes it has no form for as read-only text)."""
    texts = []
    for i, d in enumerate(body.definitions):  # parts of a tree: anchors may be bound outside, so no scope check
        try:
            texts.append(pretty_text(condition_from_json(d)))
        except ValidationError as exc:
            err = exc.errors()[0]
            loc = ".".join(str(p) for p in err["loc"][1:])
            raise InvalidInput(str(err["msg"]).removeprefix("Value error, "),
                               where=f"definitions.{i}" + (f".{loc}" if loc else "")) from None
    return {"texts": texts}


@router.get("/ui/segments/values")
def top_values(state: AppState = Depends(get_state), event: str | None = Query(None, max_length=200),
               property: str | None = Query(None, max_length=200), trait: str | None = Query(None, max_length=200),
               _user: User = Depends(current_user)) -> dict[str, Any]:
    """The most frequent values that arrived for an event property or a trait (for the value picker)."""
    store = state.workspace.store
    if trait:
        sql = ("SELECT v, count(*) AS n FROM (SELECT json_extract_string(traits, ?) AS v FROM profiles) "
               "WHERE v IS NOT NULL GROUP BY v ORDER BY n DESC, v LIMIT ?")
        params: list[Any] = ["$." + _json_key(trait), TOP_VALUES]
    elif event and property:
        sql = ("SELECT v, count(*) AS n FROM (SELECT json_extract_string(properties, ?) AS v FROM events "
               "WHERE event = ?) WHERE v IS NOT NULL GROUP BY v ORDER BY n DESC, v LIMIT ?")
        params = ["$." + _json_key(property), event, TOP_VALUES]
    else:
        return {"values": []}
    if store.dialect != "duckdb":
        return {"values": []}
    try:
        rows = store.query(sql, params).to_pylist()
    except Exception:
        log.exception("top values failed")
        rows = []
    return {"values": [{"value": r["v"], "count": int(r["n"])} for r in rows]}


def _json_key(name: str) -> str:
    """A JSON path key, quoted so dots and quotes in the name stay literal."""
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


@router.get("/segments/{name:path}", response_class=HTMLResponse)
def segment_page(request: Request, name: str, state: AppState = Depends(get_state),
                 _user: User = Depends(current_user)) -> HTMLResponse:
    """A saved segment: its text, versions, member count and sample, explain form, export, analysis panels."""
    ws = state.workspace
    seg = saved.get_segment(ws.appdb, name)
    versions = list(reversed(saved.segment_versions(ws.appdb, name)))
    error = ""
    members: list[str] = []
    try:
        members = saved.segment_members(ws, name)
    except SegmintError as exc:
        error = exc.message
    api = "/api/segments/" + quote(name, safe="")
    others = [o.name for o in saved.list_segments(ws.appdb) if o.name != name][:MAX_OVERLAP_OTHERS]
    analysis = "/api/segment-analysis/"
    panels = {
        "growth": analysis + "growth?" + urlencode({"segment": name}),
        "overlap": analysis + "overlap?" + urlencode([("segment", n) for n in [name, *others]]) if others else "",
        "profile": analysis + "profile?" + urlencode({"segment": name, "top": 5}),
    }
    context = {
        "seg": seg, "text": pretty_text(seg.tree()),
        "versions": [{**v.to_dict(), "created_at": _fmt(v.created_at)} for v in versions],
        "count": len(members), "sample": members[:20], "error": error, "api": api, "panels": panels,
        "backfill_url": analysis + "backfill",
        "export_url": api + "/members?format=csv", "frozen": saved.static_members(ws.appdb, name) is not None,
        "builder_url": "/builder?name=" + quote(name, safe=""), "url": segment_url(name),
        "now": _fmt(datetime.now(UTC)),
    }
    return render(request, "segment.html", context)


@router.get("/ui/segments/explain", response_class=HTMLResponse)
def explain_fragment(request: Request, name: str = Query(..., min_length=1, max_length=128),
                     user: str = Query("", max_length=512), state: AppState = Depends(get_state),
                     _user: User = Depends(current_user)) -> HTMLResponse:
    """Why a user is in or out of a segment: the explain tree, true/false per node, deciding events."""
    ws = state.workspace
    t = translator(request_lang(request))
    user = user.strip()
    if not user:
        return render(request, "explain.html", {"error": t("explain.need_user")}, status_code=400)
    seg = saved.get_segment(ws.appdb, name)
    known = ws.store.query("SELECT 1 FROM profiles WHERE user_id = ? UNION ALL "
                           "SELECT 1 FROM events WHERE user_id = ? LIMIT 1", [user, user]).num_rows > 0
    try:
        node = saved.guarded(evaluate_user, seg.tree(), ws.store, user, None, workspace_tz=ws.config.timezone,
                             resolve=saved.resolver(ws.appdb))
    except SegmintError as exc:
        return render(request, "explain.html", {"error": exc.message}, status_code=exc.status_code)
    frozen = saved.static_members(ws.appdb, name)
    return render(request, "explain.html", {
        "user_id": user, "known": known, "member": node.result if frozen is None else user in frozen,
        "frozen": frozen is not None, "tree": localize_tree(node.to_dict(), request_lang(request)),
        "profile_url": "/users/" + quote(user, safe=""),
    })


@router.post("/ui/segments/snapshot", dependencies=[Depends(require_csrf)])
def snapshot(request: Request, name: str = Query(..., min_length=1, max_length=128),
             state: AppState = Depends(get_state), _user: User = Depends(editor_user)) -> Response:
    """Copy a segment into a new static segment whose members are frozen now; go to its page."""
    ws = state.workspace
    seg = saved.get_segment(ws.appdb, name)
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S")
    new_name = f"{seg.name} @ {stamp}"[:128]
    t = translator(request_lang(request))
    copy = saved.create_segment(ws.appdb, new_name, seg.definition, kind="static", labels=[*seg.labels, "snapshot"][
        :saved.MAX_LABELS], description=f"{t('seg.snapshot_of')} {seg.name} v{seg.version} ({stamp} UTC)")
    saved.freeze_members(ws.appdb, ws.store, copy.name)
    return RedirectResponse(segment_url(copy.name), status_code=303)
