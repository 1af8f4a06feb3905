"""Admin API for computed traits: the catalog with recent runs, computing them, one user's values."""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Depends, Query
from starlette.concurrency import run_in_threadpool

from segmint.api.deps import AppState, get_state, require_admin
from segmint.traits import TRAITS, compute_traits, load_trait_config, runs, user_traits

router = APIRouter(tags=["traits"], dependencies=[Depends(require_admin)])


@router.get("/api/traits")
def list_traits(state: AppState = Depends(get_state)) -> dict[str, Any]:
    """Every computed trait with its family and definition, and the most recent runs."""
    return {"traits": [{"name": n, "family": f, "definition": d} for n, (f, d) in TRAITS.items()],
            "runs": runs(state.workspace.store)}


@router.post("/api/traits/compute")
async def compute(
    state: AppState = Depends(get_state),
    names: list[str] = Query(default=[], alias="name", description="Trait or family names (default all)."),
    as_of: datetime | None = Query(None, description="Compute as of this time (default now)."),
    publish: bool | None = Query(None, description="Merge into profiles.traits (default: when as of now)."),
) -> dict[str, Any]:
    """Compute traits in bulk and record the run."""
    ws = state.workspace
    cfg = load_trait_config(ws.path)
    run = await run_in_threadpool(compute_traits, ws.store, cfg, as_of=as_of, names=names, publish=publish)
    return asdict(run)


@router.get("/api/users/{user_id}/traits")
def get_user_traits(user_id: str, state: AppState = Depends(get_state)) -> dict[str, Any]:
    """One user's computed traits (as segments see them) and their history."""
    return user_traits(state.workspace.store, user_id)
