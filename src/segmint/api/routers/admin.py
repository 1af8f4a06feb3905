"""Admin REST API for the workspace: health, summary, event counts, rejected messages."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query

from segmint.api.deps import AppState, get_state, require_admin

router = APIRouter(tags=["admin"])


@router.get("/health")
def health(state: AppState = Depends(get_state)) -> dict[str, Any]:
    """Liveness plus ingest lag; no credentials needed."""
    ing = state.ingestor
    return {"status": "ok" if ing.error is None else "degraded", "ingest_lag_bytes": ing.lag,
            "writer_error": None if ing.error is None else str(ing.error)}


@router.get("/api/summary", dependencies=[Depends(require_admin)])
def summary(state: AppState = Depends(get_state)) -> dict[str, Any]:
    """Headline figures of the workspace."""
    return {**state.workspace.store.summary(), "ingest": state.ingestor.stats}


@router.get("/api/events/stats", dependencies=[Depends(require_admin)])
def event_stats(state: AppState = Depends(get_state)) -> list[dict[str, Any]]:
    """Counts per event name."""
    return [vars(c) for c in state.workspace.store.event_counts()]


@router.get("/api/events/rejected", dependencies=[Depends(require_admin)])
def rejected(state: AppState = Depends(get_state), limit: int = Query(100, ge=1, le=10_000)) -> list[dict[str, Any]]:
    """Most recent rejected messages with reasons."""
    return state.workspace.store.rejected(limit)
