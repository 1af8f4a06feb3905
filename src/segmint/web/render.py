"""Shared pieces of the UI routers: templates, the signed-in user, CSRF checks, page rendering."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from fastapi import Depends, HTTPException, Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from segmint.api.deps import AppState, get_state
from segmint.appdb.users import User, can_edit, get_user
from segmint.errors import NotFound
from segmint.web import TEMPLATES_DIR
from segmint.web.i18n import request_lang, translator
from segmint.web.session import (
    CSRF_FIELD,
    CSRF_HEADER,
    UNSAFE_METHODS,
    WebSession,
    csrf_matches,
    read_session,
)

templates = Jinja2Templates(directory=str(TEMPLATES_DIR))


def session_of(request: Request, state: AppState) -> WebSession | None:
    """The request's valid session cookie, if any."""
    return read_session(request, state.workspace.config.session_secret)


def _login_redirect(request: Request) -> HTTPException:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return HTTPException(status_code=303, headers={"Location": f"/login?next={quote(target, safe='')}"})


def current_user(request: Request, state: AppState = Depends(get_state)) -> User:
    """The signed-in user; anyone else is sent to /login?next=<this page>."""
    sess = session_of(request, state)
    if sess is None or sess.user_id is None:
        raise _login_redirect(request)
    try:
        user = get_user(state.workspace.appdb, int(sess.user_id))
    except (NotFound, ValueError):
        raise _login_redirect(request) from None
    request.state.web_session = sess
    request.state.user = user
    return user


class CsrfRejected(Exception):
    """A state-changing UI request without the session's CSRF token."""

    key = "error.csrf"


class RoleRefused(CsrfRejected):
    """A state-changing UI request from a user whose role may not make it (a viewer)."""

    key = "error.viewer"


class AdminOnly(CsrfRejected):
    """A UI request only admins may make (changing roles)."""

    key = "error.admin_only"


async def csrf_rejected_page(request: Request, exc: Exception) -> HTMLResponse:
    """A 403 page in the UI language explaining the refused request (bad CSRF token, or a viewer's change)."""
    t = translator(request_lang(request))
    return render(request, "error.html", {"message": t(getattr(exc, "key", "error.csrf"))}, status_code=403)


def editor_user(user: User = Depends(current_user)) -> User:
    """The signed-in user, who must be allowed to change things (admin or marketer); viewers get a 403."""
    if not can_edit(user):
        raise RoleRefused()
    return user


async def require_csrf(request: Request, state: AppState = Depends(get_state)) -> None:
    """State-changing UI requests carry the session's CSRF token (form field or X-CSRF-Token header)."""
    if request.method not in UNSAFE_METHODS:
        return
    presented = request.headers.get(CSRF_HEADER)
    if not presented:
        ctype = request.headers.get("content-type", "")
        if ctype.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
            presented = str((await request.form()).get(CSRF_FIELD) or "")
    if not csrf_matches(session_of(request, state), presented):
        raise CsrfRejected()


def render(request: Request, name: str, context: dict[str, Any], *, status_code: int = 200,
           sess: WebSession | None = None) -> HTMLResponse:
    """Render a template with the language, `t`, the user and the CSRF token filled in."""
    lang = request_lang(request)
    sess = sess or getattr(request.state, "web_session", None)
    ctx = {
        "lang": lang,
        "t": translator(lang),
        "user": getattr(request.state, "user", None),
        "can_edit": can_edit(getattr(request.state, "user", None)),
        "csrf": sess.csrf if sess else "",
        "path": request.url.path,
        **context,
    }
    return templates.TemplateResponse(request, name, ctx, status_code=status_code)
