"""FastAPI dependencies: the running workspace, its ingestor, and the admin credential check."""

from __future__ import annotations

import hmac
from dataclasses import dataclass, field
from typing import Any

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from segmint.errors import Unauthorized
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
    state: AppState = Depends(get_state),
    creds: HTTPAuthorizationCredentials | None = Depends(_bearer),
) -> None:
    """Admin API access: `Authorization: Bearer <admin_token>` from segmint.toml (write keys do not work)."""
    token = state.workspace.config.admin_token
    if creds is None or not token or not hmac.compare_digest(creds.credentials, token):
        raise Unauthorized("admin API needs `Authorization: Bearer <admin_token>` (see segmint.toml)")
