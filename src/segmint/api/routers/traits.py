"""Admin API for computed traits: the catalog with recent runs, computing them, one user's values, training
the predictive models and listing their versions, and the refresh record with the schedule."""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Depends, Query
from starlette.concurrency import run_in_threadpool

from segmint.api.deps import AppState, get_state, require_admin
from segmint.traits import TRAITS, compute_traits, load_trait_config, runs, user_traits
from segmint.traits.predict import get_model, list_models
from segmint.traits.runner import train
from segmint.traits.schedule import schedule_status

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
    run = await run_in_threadpool(compute_traits, ws.store, cfg, as_of=as_of, names=names, publish=publish,
                                  workspace_path=ws.path, trigger="api")
    return asdict(run)


@router.post("/api/traits/train")
async def train_models(
    state: AppState = Depends(get_state),
    horizon: int | None = Query(None, ge=1, le=365, description="Predict the next N days (default 30)."),
) -> dict[str, Any]:
    """Train churn and purchase models (time-based split), store new versions, score every user as of now."""
    ws = state.workspace
    cfg = load_trait_config(ws.path)
    run, reports, scored = await run_in_threadpool(train, ws.store, cfg, ws.path, horizon=horizon, trigger="api")
    return {"run": asdict(run), "models": [r.metadata for r in reports], "scoring": asdict(scored)}


@router.get("/api/traits/models")
def models(state: AppState = Depends(get_state)) -> list[dict[str, Any]]:
    """Every stored model version with its holdout metrics and feature importance, newest first per model."""
    return list_models(state.workspace.path)


@router.get("/api/traits/models/{name}")
def model(name: str, state: AppState = Depends(get_state),
          version: int | None = Query(None, ge=1, description="Default: the latest.")) -> dict[str, Any]:
    """One model version's metadata."""
    return get_model(state.workspace.path, name, version)


@router.get("/api/traits/runs")
def trait_runs(state: AppState = Depends(get_state),
               limit: int = Query(20, ge=1, le=1000)) -> dict[str, Any]:
    """Recent trait runs (computes, trainings, scheduled refreshes) and each family's next due refresh."""
    ws = state.workspace
    sched = state.extras.get("trait_scheduler")
    return {"runs": runs(ws.store, limit),
            "schedule": schedule_status(ws, ws.store, sched.started if sched is not None else None)}


@router.get("/api/users/{user_id}/traits")
def get_user_traits(user_id: str, state: AppState = Depends(get_state)) -> dict[str, Any]:
    """One user's computed traits (as segments see them) and their history."""
    return user_traits(state.workspace.store, user_id)
