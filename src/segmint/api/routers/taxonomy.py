"""Admin API for the taxonomy: what is declared and seen, violations, inference, installing a new file."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from starlette.concurrency import run_in_threadpool

from segmint.api.deps import AppState, get_state, require_admin
from segmint.errors import InvalidInput
from segmint.taxonomy.infer import infer_taxonomy
from segmint.taxonomy.model import dump_taxonomy
from segmint.taxonomy.overview import taxonomy_overview
from segmint.taxonomy.runtime import apply_taxonomy, workspace_taxonomy

router = APIRouter(tags=["taxonomy"], dependencies=[Depends(require_admin)])


@router.get("/api/taxonomy")
def get_taxonomy(state: AppState = Depends(get_state)) -> dict[str, Any]:
    """Declared events and traits with counts seen per event, and undeclared events that arrived."""
    ws = state.workspace
    return taxonomy_overview(workspace_taxonomy(ws), ws.store.event_counts(), mode=ws.config.taxonomy.mode,
                             file=str(ws.taxonomy_path))


@router.get("/api/taxonomy/violations")
def violations(state: AppState = Depends(get_state)) -> list[dict[str, Any]]:
    """Violations so far per (event, field, kind): exact counts, rejected counts and the first examples."""
    return state.workspace.store.violations()


@router.post("/api/taxonomy/infer")
def infer(state: AppState = Depends(get_state),
          sample: int | None = Query(None, ge=1, description="Events read per event name.")) -> dict[str, Any]:
    """Propose a taxonomy from the stored data; with a declared taxonomy, also what is new or different."""
    ws = state.workspace
    base = workspace_taxonomy(ws)
    inference = infer_taxonomy(ws.store, sample)
    return {"inference": inference.to_dict(), "yaml": dump_taxonomy(inference.to_taxonomy(base)),
            "diff": inference.diff(base) if base is not None else None}


@router.put("/api/taxonomy")
async def put_taxonomy(request: Request, state: AppState = Depends(get_state),
                       mode: str | None = Query(None, pattern="^(strict|warn|open)$"),
                       source: str = Query("taxonomy.yaml", max_length=500)) -> dict[str, Any]:
    """Install taxonomy YAML (the request body): validate, create and backfill typed columns, switch checks."""
    body = await request.body()
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidInput("the taxonomy must be UTF-8 text", where=source) from exc
    return await run_in_threadpool(apply_taxonomy, state.workspace, text, source, mode=mode,
                                   ingestor=state.ingestor)
