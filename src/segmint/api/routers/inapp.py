"""In-app messages for the app (SDK side): fetch a user's queue, mark read or dismissed; write key auth."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any, Literal

from fastapi import APIRouter, Depends, Query, Request

from segmint.api.deps import AppState, get_state
from segmint.api.ingest_common import basic_auth_user, require_key
from segmint.appdb import inapp

router = APIRouter(tags=["in-app"])


def _auth(request: Request, state: AppState) -> None:
    require_key(state, basic_auth_user(request), where="Authorization")


@router.get("/v1/inapp/{user_id}")
def list_messages(
    user_id: str,
    request: Request,
    include_read: bool = Query(False),
    limit: int = Query(50, ge=1, le=200),
    state: AppState = Depends(get_state),
) -> dict[str, Any]:
    """The user's queued messages, newest first (dismissed never; read ones only with include_read)."""
    _auth(request, state)
    rows = inapp.fetch(state.workspace.appdb, user_id, include_read=include_read, limit=limit)
    return {"user_id": user_id, "messages": [asdict(r) for r in rows]}


@router.post("/v1/inapp/{user_id}/{message_id}/{action}")
def mark_message(
    user_id: str,
    message_id: str,
    action: Literal["read", "dismissed"],
    request: Request,
    state: AppState = Depends(get_state),
) -> dict[str, Any]:
    """Mark one message read or dismissed."""
    _auth(request, state)
    return asdict(inapp.mark(state.workspace.appdb, user_id, message_id, action))
