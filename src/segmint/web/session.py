"""Signed session cookies for the web UI (HMAC-SHA256 over JSON), CSRF tokens and the session secret."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from segmint.config import save_config
from segmint.workspace import Workspace

COOKIE = "segmint_session"
MAX_AGE = 14 * 24 * 3600
CSRF_HEADER = "X-CSRF-Token"
CSRF_FIELD = "csrf_token"
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


@dataclass
class WebSession:
    """What the cookie carries: the signed-in user id (None before sign-in) and the CSRF token."""

    csrf: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    user_id: int | None = None
    issued: int = field(default_factory=lambda: int(time.time()))


def ensure_session_secret(ws: Workspace) -> str:
    """The workspace's session secret; workspaces made before it existed get one generated and saved."""
    if not ws.config.session_secret:
        ws.config.session_secret = secrets.token_urlsafe(32)
        save_config(ws.path, ws.config)
    return ws.config.session_secret


def _sign(secret: str, body: bytes) -> str:
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def encode(secret: str, sess: WebSession) -> str:
    """Cookie value: base64url(JSON) + '.' + HMAC."""
    body = base64.urlsafe_b64encode(json.dumps(
        {"u": sess.user_id, "c": sess.csrf, "i": sess.issued}, separators=(",", ":")).encode())
    return body.decode() + "." + _sign(secret, body)


def decode(secret: str, value: str | None) -> WebSession | None:
    """The session in a cookie value, or None when missing, tampered with or expired."""
    if not value or "." not in value:
        return None
    body, sig = value.rsplit(".", 1)
    if not hmac.compare_digest(sig, _sign(secret, body.encode())):
        return None
    try:
        data: dict[str, Any] = json.loads(base64.urlsafe_b64decode(body.encode()))
        sess = WebSession(csrf=str(data["c"]), user_id=data["u"], issued=int(data["i"]))
    except (ValueError, KeyError, TypeError):
        return None
    if time.time() - sess.issued > MAX_AGE:
        return None
    return sess


def read_session(request: Request, secret: str) -> WebSession | None:
    """The request's valid session, if any."""
    return decode(secret, request.cookies.get(COOKIE))


def write_session(response: Response, secret: str, sess: WebSession, *, secure: bool = False) -> None:
    """Set the session cookie: HttpOnly, SameSite=Lax."""
    response.set_cookie(COOKIE, encode(secret, sess), max_age=MAX_AGE, httponly=True, samesite="lax",
                        secure=secure, path="/")


def clear_session(response: Response) -> None:
    """Drop the session cookie."""
    response.delete_cookie(COOKIE, path="/")


def csrf_matches(sess: WebSession | None, presented: str | None) -> bool:
    """Whether a presented CSRF token is the session's (constant-time)."""
    return bool(sess and presented) and hmac.compare_digest(sess.csrf, presented or "")
