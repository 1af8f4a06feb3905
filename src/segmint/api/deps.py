"""FastAPI dependencies: the running workspace, its ingestor, and the admin credential check."""

from __future__ import annotations

import hmac
from dataclasses import dataclass, field
from typing import Any

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from segmint.errors import Forbidden, Unauthorized
from segmint.ingest.pipeline import Ingestor
from segmint.workspace import Workspace


@dataclass
class AppState:
    """What the app holds while it runs: one workspace and its ingest pipeline."""

    workspace: Workspace
    ingestor: Ingestor
    extras: dict[str, Any] = field(default_factory=dict)


def get_state(request: Request) -> AppState:
    """The AppState of the running app."""
    return request.app.state.segmint


_bearer = HTTPBearer(auto_error=False)


def require_admin(
    request: Request,
    state: AppState = Depends(get_state),
    creds: HTTPAuthorizationCredentials | None = Depends(_bearer),
) -> None:
    """Admin API access: `Authorization: Bearer <admin_token>` from segmint.toml, or a signed-in UI
    session (state-changing calls then need the `X-CSRF-Token` header). Write keys do not work."""
    from segmint.web.session import CSRF_HEADER, UNSAFE_METHODS, csrf_matches, read_session

    token = state.workspace.config.admin_token
    if creds is not None:
        if token and hmac.compare_digest(creds.credentials, token):
            return
        raise Unauthorized("admin API needs `Authorization: Bearer <admin_token>` (see segmint.toml)")
    sess = read_session(request, state.workspace.config.session_secret)
    if sess is None or sess.user_id is None:
        raise Unauthorized("admin API needs `Authorization: Bearer <admin_token>` (see segmint.toml) "
                           "or a signed-in UI session")
    if request.method in UNSAFE_METHODS and not csrf_matches(sess, request.headers.get(CSRF_HEADER)):
        raise Forbidden(f"missing or wrong {CSRF_HEADER} header", where=CSRF_HEADER)
    from segmint.web.roles import check_session_write

    check_session_write(state.workspace.appdb, sess.user_id, request.method, request.url.path)
