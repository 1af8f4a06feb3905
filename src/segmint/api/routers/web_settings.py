"""The UI settings page (`/settings`): write keys (list, create, revoke) and users."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse

from segmint.api.deps import AppState, get_state
from segmint.api.ingest_common import key_cache
from segmint.appdb.keys import create_key, list_keys, revoke_key
from segmint.appdb.users import ROLES, User, get_user, list_users, set_role
from segmint.web.render import AdminOnly, current_user, editor_user, render, require_csrf

router = APIRouter(tags=["web"], include_in_schema=False)


def _page(request: Request, state: AppState, **extra: object) -> HTMLResponse:
    engine = state.workspace.appdb
    return render(request, "settings.html", {"keys": list_keys(engine), "users": list_users(engine), "roles": ROLES,
                                             **extra})


@router.get("/settings", response_class=HTMLResponse)
def settings_page(request: Request, state: AppState = Depends(get_state),
                  _user: User = Depends(current_user)) -> HTMLResponse:
    """Write keys and users."""
    return _page(request, state)


@router.post("/settings/keys", response_class=HTMLResponse, dependencies=[Depends(require_csrf)])
def settings_create_key(request: Request, label: str = Form(""), state: AppState = Depends(get_state),
                        _user: User = Depends(editor_user)) -> HTMLResponse:
    """Create a write key and show its secret once."""
    key = create_key(state.workspace.appdb, label=label.strip()[:200])
    return _page(request, state, new_key=key)


@router.post("/settings/keys/{key_id}/revoke", response_class=HTMLResponse,
             dependencies=[Depends(require_csrf)])
def settings_revoke_key(request: Request, key_id: int, state: AppState = Depends(get_state),
                        _user: User = Depends(editor_user)) -> HTMLResponse:
    """Revoke a write key; it stops working at once (this server's key cache is cleared)."""
    revoke_key(state.workspace.appdb, str(key_id))
    key_cache(state).clear()
    return _page(request, state, revoked=True)


@router.post("/settings/users/{user_id}/role", response_class=HTMLResponse, dependencies=[Depends(require_csrf)])
def settings_set_role(request: Request, user_id: int, role: str = Form(...), state: AppState = Depends(get_state),
                      me: User = Depends(current_user)) -> HTMLResponse:
    """Change another user's role (admins only; nobody changes their own, so an admin always remains)."""
    if me.role != "admin" or me.id == user_id:
        raise AdminOnly()
    target = get_user(state.workspace.appdb, user_id)
    set_role(state.workspace.appdb, target.email, role)
    return _page(request, state, role_changed=target.email)
