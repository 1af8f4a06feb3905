"""Admin API for live segments: membership history, transitions, current members, evaluations, health, sweeps."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Depends, Path, Query

from segmint.api.deps import AppState, get_state, require_admin
from segmint.errors import NotFound, SegmintError
from segmint.segments import live_log, saved
from segmint.segments.live import LiveSegments, current_members, health, history, transitions

router = APIRouter(prefix="/api/live", tags=["live segments"], dependencies=[Depends(require_admin)])
NAME = Path(..., min_length=1, max_length=128, description="Segment name (Korean allowed).")
SWEEP_TIMEOUT_SECONDS = 600


class LiveDisabled(SegmintError):
    """The server runs with `[live] enabled = false`."""

    status_code = 409
    code = "live_disabled"


def _live(state: AppState) -> LiveSegments:
    live = state.extras.get("live")
    if live is None:
        dialect = state.workspace.store.dialect
        why = "[live] enabled = false" if dialect == "duckdb" else \
            f"they need the DuckDB store, this workspace's is {dialect}: see docs/live-segments.md"
        raise LiveDisabled(f"live segments are disabled on this server ({why})", where="live")
    return live


def _known(state: AppState, name: str) -> None:
    saved.get_segment(state.workspace.appdb, name)  # NotFound (404) for an unknown segment


@router.get("/status")
def status(state: AppState = Depends(get_state)) -> dict[str, Any]:
    """The live engine: tracked segments, users waiting, next sweep, per-user mode, last error."""
    return _live(state).status()


@router.get("/health")
def health_summary(state: AppState = Depends(get_state)) -> dict[str, Any]:
    """Health flags of every dynamic segment (empty, exploding, collapsing, stale, failing, churn, slow)."""
    ws = state.workspace
    rows = [h.to_dict() for h in health(ws.appdb, ws.config.live)]
    live = state.extras.get("live")
    return {"ok": all(r["ok"] for r in rows) and (live is None or live.error is None),
            "engine": None if live is None else live.status(), "segments": rows}


@router.get("/evaluations")
def evaluations(state: AppState = Depends(get_state), segment: str | None = Query(None, max_length=128),
                kind: Literal["sweep", "event", "edit"] | None = None,
                limit: int = Query(50, ge=1, le=10_000)) -> list[dict[str, Any]]:
    """Recorded evaluations, newest first (one segment's, one kind's when given)."""
    live_log.ensure_table(state.workspace.appdb)
    return live_log.list_evaluations(state.workspace.appdb, segment, limit, kind)


@router.post("/sweep")
def sweep_all(state: AppState = Depends(get_state)) -> dict[str, Any]:
    """Evaluate every dynamic segment in bulk now (as the scheduled sweep does) and wait for it."""
    res = _live(state).request_sweep(None).result(SWEEP_TIMEOUT_SECONDS)
    return {"segments": res.swept, "entered": sum(c.kind == "enter" for c in res.changes),
            "exited": sum(c.kind == "exit" for c in res.changes)}


@router.get("/segments/{name:path}/history")
def segment_history(name: str = NAME, state: AppState = Depends(get_state),
                    user: str | None = Query(None, max_length=512),
                    limit: int = Query(1000, ge=1, le=100_000)) -> dict[str, Any]:
    """Spells of membership (entered_at, exited_at, causes), newest first; one user's with `user`."""
    _known(state, name)
    rows = history(state.workspace.store, name, user, limit)
    return {"name": name, "user": user, "count": len(rows), "history": rows}


@router.get("/segments/{name:path}/transitions")
def segment_transitions(name: str = NAME, state: AppState = Depends(get_state),
                        user: str | None = Query(None, max_length=512),
                        limit: int = Query(1000, ge=1, le=100_000)) -> dict[str, Any]:
    """Raw enter/exit transitions, newest first."""
    _known(state, name)
    rows = transitions(state.workspace.store, name, user, limit)
    return {"name": name, "user": user, "count": len(rows), "transitions": rows}


@router.get("/segments/{name:path}/members")
def live_members(name: str = NAME, state: AppState = Depends(get_state)) -> dict[str, Any]:
    """Current members as recorded by the live engine (latest transition is `enter`)."""
    _known(state, name)
    live = state.extras.get("live")
    ids = live.members(name) if live is not None and name in live.tracked else \
        current_members(state.workspace.store, name)
    return {"name": name, "count": len(ids), "members": ids}


@router.post("/segments/{name:path}/evaluate")
def evaluate_now(name: str = NAME, state: AppState = Depends(get_state)) -> dict[str, Any]:
    """Sweep one dynamic segment now; returns what changed."""
    seg = saved.get_segment(state.workspace.appdb, name)
    if seg.kind != "dynamic":
        raise NotFound(f"segment {name!r} is static: it is not kept live", where="kind")
    res = _live(state).request_sweep(name).result(SWEEP_TIMEOUT_SECONDS)
    return {"name": name, "entered": sum(c.kind == "enter" for c in res.changes),
            "exited": sum(c.kind == "exit" for c in res.changes),
            "members": len(_live(state).members(name))}
