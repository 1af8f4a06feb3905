"""UI sign-in and sign-out (`/login`, `/logout`) and the language switch (`/lang`)."""

from __future__ import annotations

import time
from collections import deque
from urllib.parse import urlsplit

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from segmint.api.deps import AppState, get_state
from segmint.appdb.users import authenticate
from segmint.web.i18n import LANG_COOKIE, LANGS, request_lang, translator
from segmint.web.render import render, require_csrf, session_of
from segmint.web.session import WebSession, clear_session, write_session

router = APIRouter(tags=["web"], include_in_schema=False)

MAX_FAILURES = 10
WINDOW_SECONDS = 300.0


def safe_next(target: str | None) -> str:
    """Only same-site paths are followed after sign-in (no open redirects)."""
    if not target:
        return "/"
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return "/"
    return target


def _failures(state: AppState, ip: str) -> deque[float]:
    table: dict[str, deque[float]] = state.extras.setdefault("login_failures", {})
    q = table.setdefault(ip, deque())
    now = time.monotonic()
    while q and now - q[0] > WINDOW_SECONDS:
        q.popleft()
    return q


def _login_page(request: Request, state: AppState, *, next_url: str, error: str = "", email: str = "",
                status_code: int = 200) -> HTMLResponse:
    sess = session_of(request, state) or WebSession()
    resp = render(request, "login.html", {"next": next_url, "error": error, "email": email},
                  status_code=status_code, sess=sess)
    write_session(resp, state.workspace.config.session_secret, sess)
    return resp


@router.get("/login", response_class=HTMLResponse, response_model=None)
def login_form(request: Request, next: str = "/", state: AppState = Depends(get_state)) -> Response:
    """The sign-in form (sets a pre-sign-in session holding the form's CSRF token); signed-in users go on."""
    sess = session_of(request, state)
    if sess is not None and sess.user_id is not None:
        return RedirectResponse(safe_next(next), status_code=303)
    return _login_page(request, state, next_url=safe_next(next))


@router.post("/login", response_class=HTMLResponse, dependencies=[Depends(require_csrf)])
def login(
    request: Request,
    email: str = Form(""),
    password: str = Form(""),
    next: str = Form("/"),
    state: AppState = Depends(get_state),
) -> Response:
    """Check the password; on success start a fresh session and go to `next`."""
    t = translator(request_lang(request))
    ip = request.client.host if request.client else "?"
    failures = _failures(state, ip)
    if len(failures) >= MAX_FAILURES:
        return _login_page(request, state, next_url=safe_next(next), error=t("login.throttled"),
                           email=email, status_code=429)
    user = authenticate(state.workspace.appdb, email, password)
    if user is None:
        failures.append(time.monotonic())
        return _login_page(request, state, next_url=safe_next(next), error=t("login.failed"),
                           email=email, status_code=401)
    failures.clear()
    resp = RedirectResponse(safe_next(next), status_code=303)
    write_session(resp, state.workspace.config.session_secret, WebSession(user_id=user.id))
    return resp


@router.get("/logout", response_class=HTMLResponse)
def logout_form(request: Request, state: AppState = Depends(get_state)) -> Response:
    """A confirmation form (signing out changes state, so it is a POST with a CSRF token)."""
    sess = session_of(request, state)
    if sess is None or sess.user_id is None:
        return RedirectResponse("/login", status_code=303)
    return render(request, "logout.html", {}, sess=sess)


@router.post("/logout", dependencies=[Depends(require_csrf)])
def logout() -> Response:
    """End the session."""
    resp = RedirectResponse("/login", status_code=303)
    clear_session(resp)
    return resp


@router.get("/lang/{lang}")
def switch_language(lang: str, next: str = "/") -> Response:
    """Remember the chosen UI language in the `lang` cookie and go back."""
    resp = RedirectResponse(safe_next(next), status_code=303)
    if lang in LANGS:
        resp.set_cookie(LANG_COOKIE, lang, max_age=365 * 24 * 3600, samesite="lax", path="/")
    return resp
