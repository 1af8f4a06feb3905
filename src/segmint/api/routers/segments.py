"""Admin API for saved segments: CRUD with versions, parse, live preview, members export, explain."""

from __future__ import annotations

import logging
import time
from datetime import datetime
from typing import Any, Literal

from fastapi import APIRouter, BackgroundTasks, Depends, Path, Query, Response
from pydantic import BaseModel, Field

from segmint.api.deps import AppState, get_state, require_admin
from segmint.errors import InvalidInput, NotFound
from segmint.segments import saved
from segmint.segments.errors import SegmentError, SegmentSyntaxError
from segmint.segments.evaluate import preview as run_preview
from segmint.segments.export import export_members
from segmint.segments.reference import evaluate_user
from segmint.segments.validate import Catalog

log = logging.getLogger(__name__)

router = APIRouter(tags=["segments"], dependencies=[Depends(require_admin)])

CATALOG_TTL_SECONDS = 30.0
NAME = Path(..., min_length=1, max_length=128, description="Segment name (Korean allowed).")
Definition = str | dict[str, Any]


class SegmentIn(BaseModel):
    """A new segment: the definition is segment text or a JSON condition tree."""

    name: str = Field(min_length=1, max_length=128)
    description: str = Field("", max_length=5000)
    kind: Literal["dynamic", "static"] = "dynamic"
    labels: list[str] = Field(default_factory=list, max_length=saved.MAX_LABELS)
    definition: Definition


class SegmentUpdate(BaseModel):
    """Changes to a segment (absent fields keep their value); with a definition, creates a missing segment."""

    description: str | None = Field(None, max_length=5000)
    kind: Literal["dynamic", "static"] | None = None
    labels: list[str] | None = Field(None, max_length=saved.MAX_LABELS)
    definition: Definition | None = None


class SegmentOut(BaseModel):
    """A saved segment at its current version."""

    name: str
    description: str
    kind: str
    labels: list[str]
    definition: dict[str, Any]
    text: str
    version: int
    created_at: datetime
    updated_at: datetime


class SaveOut(SegmentOut):
    """A saved segment and what the request did to it."""

    status: Literal["created", "updated", "unchanged"]


class VersionOut(BaseModel):
    """One version of a segment."""

    version: int
    description: str
    kind: str
    labels: list[str]
    definition: dict[str, Any]
    text: str
    created_at: datetime


class ParseIn(BaseModel):
    """Segment text to parse; `check` validates names against the workspace catalog."""

    text: str
    check: bool = True


class ParseOut(BaseModel):
    """The tree of parsed text and its canonical text form."""

    definition: dict[str, Any]
    text: str


class PreviewIn(BaseModel):
    """A definition (text or tree) to count, as of a time (default now)."""

    definition: Definition
    sample: int = Field(20, ge=0, le=1000)
    as_of: datetime | None = None


class PreviewOut(BaseModel):
    """How many users match, some of them, the SQL that ran, and how long it took."""

    count: int
    sample: list[str]
    elapsed_ms: float
    sql: str
    text: str


def _catalog(state: AppState) -> Catalog | None:
    """The workspace catalog, cached for a few seconds (the live builder previews on every keystroke)."""
    hit = state.extras.get("segment_catalog")
    now = time.monotonic()
    if hit is not None and now - hit[0] < CATALOG_TTL_SECONDS:
        return hit[1]
    cat = saved.workspace_catalog(state.workspace)
    state.extras["segment_catalog"] = (now, cat)
    return cat


def _catalog_for(state: AppState, definition: Definition) -> Catalog | None:
    """The cached catalog, refreshed once when it rejects this definition's names (they may be new)."""
    cat = _catalog(state)
    try:
        saved.parse_definition(definition, cat)
    except (SegmentSyntaxError, SegmentError):
        hit = state.extras.get("segment_catalog")
        if hit is not None and time.monotonic() - hit[0] >= 1.0:
            state.extras.pop("segment_catalog", None)
            cat = _catalog(state)
    return cat


def _out(seg: saved.SavedSegment) -> SegmentOut:
    return SegmentOut(**seg.to_dict())


@router.get("/api/segments")
def list_segments(state: AppState = Depends(get_state),
                  label: str | None = Query(None, max_length=64)) -> list[SegmentOut]:
    """Every saved segment (only those with a label, when given)."""
    return [_out(s) for s in saved.list_segments(state.workspace.appdb, label)]


def backfill_new(state: AppState, seg: saved.SavedSegment) -> None:
    """Fill a new dynamic segment's history by as-of evaluation ([live] backfill_days), so its growth chart is
    full from the start; runs after the response, and a failure is logged, never raised into the request."""
    ws = state.workspace
    days = ws.config.live.backfill_days
    if seg.kind != "dynamic" or days == 0 or ws.store.dialect != "duckdb":
        return
    from segmint.analytics import segment_growth

    try:
        segment_growth.backfill(ws.appdb, ws.store, seg.name, zone=ws.config.zone, days=days)
    except Exception:
        log.exception("backfill of new segment %r failed", seg.name)


@router.post("/api/segments", status_code=201)
def create_segment(body: SegmentIn, background: BackgroundTasks, state: AppState = Depends(get_state)) -> SegmentOut:
    """Save a new segment (version 1); 409 when the name is taken. Its history is backfilled afterwards."""
    ws = state.workspace
    seg = saved.create_segment(ws.appdb, body.name, body.definition, description=body.description,
                               kind=body.kind, labels=body.labels, catalog=_catalog_for(state, body.definition))
    saved.freeze_members(ws.appdb, ws.store, seg.name)
    background.add_task(backfill_new, state, seg)
    return _out(seg)


@router.post("/api/segments/parse")
def parse_text(body: ParseIn, state: AppState = Depends(get_state)) -> ParseOut:
    """Segment text -> condition tree; errors come back as 400 with line, column and a caret display."""
    tree, text = saved.parse_definition(body.text, _catalog_for(state, body.text) if body.check else None,
                                       where="text")
    return ParseOut(definition=tree.model_dump(mode="json"), text=text)


@router.post("/api/segments/preview")
def preview(body: PreviewIn, state: AppState = Depends(get_state)) -> PreviewOut:
    """Count and sample members of an unsaved definition (the live segment builder)."""
    ws = state.workspace
    tree, text = saved.parse_definition(body.definition, _catalog_for(state, body.definition))
    result = saved.guarded(run_preview, ws.store, saved.segment_tree(ws.appdb, tree), body.as_of, sample=body.sample)
    return PreviewOut(count=result["count"], sample=result["sample"], elapsed_ms=result["elapsed_ms"],
                      sql=result["sql"], text=text)


@router.post("/api/segments/{name:path}/freeze")
def freeze(name: str = NAME, state: AppState = Depends(get_state)) -> dict[str, Any]:
    """Freeze a static segment's members for its current version (no-op when frozen; 400 when dynamic)."""
    ws = state.workspace
    ids = saved.freeze_members(ws.appdb, ws.store, name)
    if ids is None:
        raise InvalidInput(f"segment {name!r} is dynamic: its members are computed live", where="kind")
    return {"name": name, "count": len(ids)}


@router.get("/api/segments/{name:path}/versions")
def versions(name: str = NAME, state: AppState = Depends(get_state)) -> list[VersionOut]:
    """Every version of a segment, oldest first."""
    return [VersionOut(**v.to_dict()) for v in saved.segment_versions(state.workspace.appdb, name)]


_MEDIA = {"csv": "text/csv; charset=utf-8", "parquet": "application/vnd.apache.parquet"}


@router.get("/api/segments/{name:path}/members", response_model=None)
def members(name: str = NAME, state: AppState = Depends(get_state),
            format: Literal["ids", "csv", "parquet"] = Query("ids"),
            traits: str = Query("", max_length=5000, description="Comma-separated trait names."),
            as_of: datetime | None = None) -> Any:
    """Members now (or as of a time): JSON ids, or CSV/Parquet with first_seen, last_seen and chosen traits."""
    ws = state.workspace
    tree = saved.segment_tree(ws.appdb, name)
    frozen = saved.static_members(ws.appdb, name) if as_of is None else None
    names = [t.strip() for t in traits.split(",") if t.strip()]
    if format == "ids":
        if names:
            raise InvalidInput("traits go with format=csv or format=parquet", where="traits")
        from segmint.segments.evaluate import evaluate

        ids = frozen if frozen is not None else saved.guarded(evaluate, ws.store, tree, as_of)
        return {"name": name, "count": len(ids), "members": ids}
    data = saved.guarded(export_members, ws.store, tree, format, names, as_of, frozen)
    return Response(data, media_type=_MEDIA[format],
                    headers={"Content-Disposition": f'attachment; filename="segment-members.{format}"'})


@router.post("/api/segments/{name:path}/explain")
def explain(name: str = NAME, state: AppState = Depends(get_state),
            user: str = Query(..., min_length=1, max_length=512), as_of: datetime | None = None) -> dict[str, Any]:
    """Why a user is or is not a member: the evaluation tree with the deciding events."""
    ws = state.workspace
    seg = saved.get_segment(ws.appdb, name)
    node = saved.guarded(evaluate_user, seg.tree(), ws.store, user, as_of, workspace_tz=ws.config.timezone,
                         resolve=saved.resolver(ws.appdb))
    return {"name": name, "user": user, "member": node.result, "explain": node.to_dict()}


# Generic routes last: {name:path} (names may hold '/') must not swallow the routes above.
@router.get("/api/segments/{name:path}")
def get_segment(name: str = NAME, state: AppState = Depends(get_state),
                version: int | None = Query(None, ge=1)) -> SegmentOut:
    """A saved segment (its current version, or `version`)."""
    return _out(saved.get_segment(state.workspace.appdb, name, version))


@router.put("/api/segments/{name:path}")
def put_segment(body: SegmentUpdate, background: BackgroundTasks, name: str = NAME,
                state: AppState = Depends(get_state)) -> SaveOut:
    """Update a segment (a new version when anything changed); creates it when missing and a definition is given."""
    engine = state.workspace.appdb
    cat = _catalog_for(state, body.definition) if body.definition is not None else None
    try:
        saved.get_segment(engine, name)
    except NotFound:
        if body.definition is None:
            raise
        seg = saved.create_segment(engine, name, body.definition, description=body.description or "",
                                   kind=body.kind or "dynamic", labels=body.labels or [], catalog=cat)
        saved.freeze_members(engine, state.workspace.store, name)
        background.add_task(backfill_new, state, seg)
        return SaveOut(**seg.to_dict(), status="created")
    seg, changed = saved.update_segment(engine, name, definition=body.definition, description=body.description,
                                        kind=body.kind, labels=body.labels, catalog=cat)
    saved.freeze_members(engine, state.workspace.store, name)
    return SaveOut(**seg.to_dict(), status="updated" if changed else "unchanged")


@router.delete("/api/segments/{name:path}")
def delete_segment(name: str = NAME, state: AppState = Depends(get_state)) -> dict[str, str]:
    """Delete a segment and its history (409 while another segment uses it)."""
    saved.delete_segment(state.workspace.appdb, name)
    return {"deleted": name}
