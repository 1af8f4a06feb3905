"""Segment HTTP Tracking API: /v1/identify|track|page|screen|group|alias|batch, analytics.js short
routes (/v1/i|t|p|s|g|a|b) with CORS, and the project settings analytics.js loads at start.

Auth is the write key as HTTP Basic user name (empty password), or `writeKey` in the body. A 2xx is
sent only after the request's events are fsynced in the journal. In a batch, valid messages are kept
and invalid ones are stored as rejected records and listed in a 400 answer.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from segmint.api.deps import AppState, get_state
from segmint.api.ingest_common import (
    Intake,
    Received,
    answer,
    cors_headers,
    error_response,
    key_cache,
    open_body,
    preflight,
    receive,
    record_body_failure,
)
from segmint.errors import InvalidInput, NotFound, SegmintError

router = APIRouter(tags=["ingest: segment"])
SOURCE = "http"

# route name -> message type (None: a batch)
ROUTES: dict[str, str | None] = {
    "identify": "identify",
    "track": "track",
    "page": "page",
    "screen": "screen",
    "group": "group",
    "alias": "alias",
    "batch": None,
    "import": None,
    "i": "identify",
    "t": "track",
    "p": "page",
    "s": "screen",
    "g": "group",
    "a": "alias",
    "b": None,
}


def _key_in_body(body: Any) -> Any:
    """analytics.js and some SDKs put the write key in the body (top level or in each message)."""
    if not isinstance(body, dict):
        return None
    key = body.get("writeKey")
    if key is None and isinstance(body.get("batch"), list) and body["batch"]:
        first = body["batch"][0]
        key = first.get("writeKey") if isinstance(first, dict) else None
    return key


def _process(state: AppState, rec: Received, kind: str | None) -> tuple[Intake, int]:
    """Authenticate, parse and journal one request; returns the intake and the number of messages."""
    cfg = state.workspace.config.ingest
    body, size = open_body(state, SOURCE, rec, _key_in_body)
    intake = Intake(SOURCE)
    try:
        if not isinstance(body, dict):
            raise InvalidInput(f"expected a JSON object, got {type(body).__name__}", where="body")
        if kind is not None:
            intake.add_messages(
                [(0, "body", {**body, "type": kind})],
                max_message_bytes=cfg.max_message_bytes,
                check_size=False,
            )
            intake.submit(state)
            return intake, 1
        batch = body.get("batch")
        if not isinstance(batch, list):
            raise InvalidInput("batch: required, a list of messages", where="batch")
    except SegmintError as exc:
        record_body_failure(state, SOURCE, exc, rec.raw)
        raise
    shared = {k: body[k] for k in ("context", "integrations") if isinstance(body.get(k), dict)}
    raws = (
        (i, f"batch[{i}]", {**shared, **m} if shared and isinstance(m, dict) else m)
        for i, m in enumerate(batch)
    )
    intake.add_messages(
        raws, max_message_bytes=cfg.max_message_bytes, check_size=size > cfg.max_message_bytes
    )
    intake.submit(state)
    return intake, len(batch)


def _make_endpoint(kind: str | None, limit_name: str):  # type: ignore[no-untyped-def]
    async def endpoint(request: Request) -> Response:
        state = get_state(request)
        try:
            rec = await receive(request, getattr(state.workspace.config.ingest, limit_name))
            intake, total = await run_in_threadpool(_process, state, rec, kind)
        except SegmintError as exc:
            return error_response(request, exc)
        return answer(request, intake, {"success": True}, total)

    return endpoint


for _name, _kind in ROUTES.items():
    _limit = "max_batch_bytes" if _kind is None else "max_message_bytes"
    router.add_api_route(
        f"/v1/{_name}",
        _make_endpoint(_kind, _limit),
        methods=["POST"],
        summary=f"Segment {_kind or 'batch'} ({_name})",
        name=f"segment_{_name}",
    )
    router.add_api_route(
        f"/v1/{_name}",
        preflight,
        methods=["OPTIONS"],
        include_in_schema=False,
        name=f"segment_{_name}_preflight",
    )


def settings_for(write_key: str, request: Request) -> dict[str, Any]:
    """The settings object analytics.js fetches from its CDN, pointing it back at this server."""
    host = request.headers.get("x-forwarded-host") or request.headers.get("host") or request.url.netloc
    proto = (request.headers.get("x-forwarded-proto") or request.url.scheme).split(",")[0].strip()
    return {
        "integrations": {
            "Segment.io": {
                "apiKey": write_key,
                "apiHost": f"{host}/v1",
                "protocol": proto,
                "unbundledIntegrations": [],
                "addBundledMetadata": True,
                "maybeBundledConfigIds": {},
                "versionSettings": {"version": "4.4.7", "componentTypes": ["browser"]},
            },
        },
        "plan": {
            "track": {"__default": {"enabled": True, "integrations": {}}},
            "identify": {"__default": {"enabled": True}},
            "group": {"__default": {"enabled": True}},
        },
        "edgeFunction": {},
        "analyticsNextEnabled": True,
        "middlewareSettings": {},
        "enabledMiddleware": {},
        "metrics": {"sampleRate": 0},
        "legacyVideoPluginsEnabled": False,
        "remotePlugins": [],
    }


@router.get("/v1/projects/{write_key}/settings", summary="analytics.js settings for a write key")
async def project_settings(write_key: str, request: Request) -> Response:
    """Settings for analytics.js (load it with `cdnURL` = this server); 404 for unknown or revoked keys."""
    state = get_state(request)
    ok = await run_in_threadpool(key_cache(state).valid, write_key)
    if not ok:
        return error_response(request, NotFound("unknown or revoked write key", where="writeKey"))
    return JSONResponse(settings_for(write_key, request), headers=cors_headers(request))


router.add_api_route(
    "/v1/projects/{write_key}/settings", preflight, methods=["OPTIONS"], include_in_schema=False
)
