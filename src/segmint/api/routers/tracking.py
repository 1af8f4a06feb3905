"""Public tracking endpoints behind signed links: open pixel, click redirect, one-click unsubscribe.

Each hit becomes an event (`message_opened`, `message_clicked`, `message_unsubscribed`) through the ingest
pipeline, with campaign_id, variant, channel and message_id_ref. The link's signature is the only credential.
"""

from __future__ import annotations

import base64
import hashlib
import html
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from segmint.api.deps import AppState, get_state
from segmint.campaigns.events import message_event
from segmint.campaigns.links import read_token
from segmint.campaigns.suppression import add_suppression

router = APIRouter(prefix="/t", tags=["tracking"])
PIXEL = base64.b64decode("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7")
NO_CACHE = {"Cache-Control": "no-store, max-age=0"}


def _secret(state: AppState) -> str:
    cfg = state.workspace.config
    return cfg.session_secret or cfg.admin_token


def _record(state: AppState, event: str, data: dict[str, Any], extra: dict[str, Any] | None = None,
            unique: str = "") -> None:
    record = message_event(event, user_id=str(data.get("u")), ref=str(data.get("m")), campaign_id=str(data.get("c")),
                           variant=str(data.get("v")), channel=str(data.get("ch")), ts=datetime.now(UTC),
                           extra=extra, unique=unique)
    state.ingestor.submit([record])


@router.get("/o/{token}.gif")
def open_pixel(token: str, state: AppState = Depends(get_state)) -> Response:
    """A 1x1 GIF; the first fetch per message records `message_opened` (repeats are deduplicated)."""
    data = read_token(_secret(state), "open", token)
    _record(state, "message_opened", data)
    return Response(PIXEL, media_type="image/gif", headers=NO_CACHE)


@router.get("/c/{token}")
def click(token: str, state: AppState = Depends(get_state)) -> RedirectResponse:
    """Record `message_clicked` (once per message and URL) and redirect to the URL signed in the token."""
    data = read_token(_secret(state), "click", token)
    url = str(data.get("url") or "")
    if not url.startswith(("http://", "https://")):
        from segmint.errors import InvalidInput

        raise InvalidInput("the link has no http(s) target", where="token")
    _record(state, "message_clicked", data, {"url": url}, unique=":" + hashlib.sha256(url.encode()).hexdigest()[:12])
    return RedirectResponse(url, status_code=302, headers=NO_CACHE)


def _page(title: str, body: str) -> HTMLResponse:
    return HTMLResponse(f"<!doctype html><html lang=ko><meta charset=utf-8><title>{html.escape(title)}</title>"
                        f"<body style='font-family:sans-serif;max-width:32em;margin:3em auto'>{body}</body></html>",
                        headers=NO_CACHE)


@router.get("/u/{token}")
def unsubscribe_page(token: str, state: AppState = Depends(get_state)) -> HTMLResponse:
    """A confirmation page (GET never unsubscribes: mail scanners follow links); its button POSTs."""
    data = read_token(_secret(state), "unsubscribe", token)
    channel = html.escape(str(data.get("ch")))
    return _page("수신거부", f"<h1>수신거부 / Unsubscribe</h1><p>{channel} 메시지 수신을 거부하시겠어요?</p>"
                 f"<form method=post><input type=hidden name=List-Unsubscribe value=One-Click>"
                 f"<button type=submit>수신거부 / Unsubscribe</button></form>")


@router.post("/u/{token}")
async def unsubscribe(token: str, request: Request, state: AppState = Depends(get_state)) -> HTMLResponse:
    """One-click unsubscribe (RFC 8058 POST or the page's button): suppression list + `message_unsubscribed`."""
    data = read_token(_secret(state), "unsubscribe", token)
    await request.body()
    channel = str(data.get("ch") or "*")
    add_suppression(state.workspace.appdb, str(data.get("u")), channel, reason="unsubscribed",
                    source=str(data.get("c")))
    _record(state, "message_unsubscribed", data)
    return _page("수신거부 완료", f"<h1>수신거부 완료 / Unsubscribed</h1><p>{html.escape(channel)} 메시지를 더 이상 "
                 "보내지 않습니다.</p>")
