"""PostHog capture API (/batch/, /capture/, /e/, /i/v0/e/), mapped onto Segment-spec messages.

The project API key (`api_key` or `token` in the body, per event `properties.token`, or a Bearer
header) is a segmint write key. Mapping: `distinct_id` -> userId (anonymousId when it is the
device id), `$identify` with `$anon_distinct_id` -> identify linking that anonymous id, `$set`
(top level or in properties) -> identify traits, `$create_alias` -> alias, `$pageview` -> page,
`$screen` -> screen, `$groupidentify` -> group, anything else -> track; `uuid` -> messageId;
`timestamp` with the batch's `sent_at` (clock-skew corrected) or `offset` (ms before receipt) -> time.
`$set_once` is kept in the event's properties only (profile merges here overwrite, so it is not
applied to traits).
"""

from __future__ import annotations

import base64
import binascii
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import parse_qs

from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from segmint.api.deps import AppState, get_state
from segmint.api.ingest_common import (
    Intake,
    Received,
    answer,
    error_response,
    open_body,
    preflight,
    receive,
    record_body_failure,
)
from segmint.errors import InvalidInput, SegmintError

router = APIRouter(tags=["ingest: posthog"])
SOURCE = "posthog"
PATHS = (
    "/batch/",
    "/capture/",
    "/e/",
    "/i/v0/e/",
    "/batch",
    "/capture",
    "/e",
    "/i/v0/e",
    "/track/",
    "/engage/",
)


def _first_event(body: Any) -> dict[str, Any] | None:
    if isinstance(body, list):
        return body[0] if body and isinstance(body[0], dict) else None
    if isinstance(body, dict):
        batch = body.get("batch")
        if isinstance(batch, list):
            return batch[0] if batch and isinstance(batch[0], dict) else None
        return body
    return None


def _key_in_body(body: Any) -> Any:
    """api_key / token at the top, else in the first event or its properties (posthog-js)."""
    for holder in (body if isinstance(body, dict) else None, _first_event(body)):
        if not isinstance(holder, dict):
            continue
        for name in ("api_key", "token"):
            if holder.get(name):
                return holder[name]
        props = holder.get("properties")
        if isinstance(props, dict) and props.get("token"):
            return props["token"]
    return None


def _unwrap_form(data: bytes) -> bytes:
    """posthog-js may send `data=<base64 JSON>` as a form body; return the JSON bytes."""
    text = data.lstrip()
    if not text.startswith(b"data="):
        return data
    values = parse_qs(text.decode("utf-8", "replace")).get("data")
    if not values:
        return data
    value = values[0]
    try:
        return base64.b64decode(value + "=" * (-len(value) % 4))
    except (binascii.Error, ValueError):
        return value.encode()


def _distinct(value: Any, where: str) -> str:
    if isinstance(value, bool) or not isinstance(value, str | int | float) or value == "":
        raise InvalidInput("distinct_id: required, a non-empty string", where=where)
    return str(value)


def to_segment(ev: Any, where: str, sent_at: Any, received_iso: str) -> list[dict[str, Any]]:
    """One PostHog event as Segment-spec raw messages (an event carrying `$set` also yields an identify)."""
    if not isinstance(ev, dict):
        raise InvalidInput(f"expected a JSON object, got {type(ev).__name__}", where=where)
    name = ev.get("event")
    if not isinstance(name, str) or not name:
        raise InvalidInput("event: required, a non-empty string", where=where)
    props = ev.get("properties") or {}
    if not isinstance(props, dict):
        raise InvalidInput("properties: must be an object", where=where)
    distinct = _distinct(ev.get("distinct_id", props.get("distinct_id")), where)
    set_traits = ev.get("$set", props.get("$set"))
    if set_traits is not None and not isinstance(set_traits, dict):
        raise InvalidInput("$set: must be an object", where=where)
    library = {"name": props.get("$lib"), "version": props.get("$lib_version")}
    base: dict[str, Any] = {"context": {"library": library}}
    if ev.get("uuid") is not None:
        base["messageId"] = str(ev["uuid"])
    if ev.get("timestamp") is not None:
        base["timestamp"] = ev["timestamp"]
        if sent_at is not None:
            base["sentAt"] = sent_at
    elif isinstance(ev.get("offset"), int | float):
        happened = datetime.fromisoformat(received_iso) - timedelta(milliseconds=ev["offset"])
        base["timestamp"] = happened.isoformat()
    anonymous = props.get("$device_id") == distinct or props.get("$is_identified") is False
    who = {"anonymousId": distinct} if anonymous else {"userId": distinct}
    clean = {k: v for k, v in props.items() if k not in ("$set", "token")}

    if name == "$identify":
        msg = {**base, "type": "identify", "userId": distinct, "traits": set_traits or {}}
        anon = props.get("$anon_distinct_id")
        if anon not in (None, "", distinct):
            msg["anonymousId"] = str(anon)
        return [msg]
    if name == "$set":
        return [{**base, "type": "identify", "userId": distinct, "traits": set_traits or {}}]
    if name == "$create_alias":
        alias = props.get("alias")
        previous = props.get("distinct_id", distinct)
        if alias in (None, ""):
            raise InvalidInput("properties.alias: required for $create_alias", where=where)
        return [{**base, "type": "alias", "userId": str(alias), "previousId": str(previous)}]
    if name == "$groupidentify":
        group_set = props.get("$group_set") or {}
        if not isinstance(group_set, dict):
            raise InvalidInput("properties.$group_set: must be an object", where=where)
        return [
            {
                **base,
                **who,
                "type": "group",
                "groupId": props.get("$group_key"),
                "traits": {**group_set, "group_type": props.get("$group_type")},
            }
        ]
    if name == "$pageview":
        msg = {**base, **who, "type": "page", "properties": clean, "name": props.get("$pathname")}
    elif name == "$screen":
        msg = {**base, **who, "type": "screen", "properties": clean, "name": props.get("$screen_name")}
    else:
        msg = {**base, **who, "type": "track", "event": name, "properties": clean}
    out = [msg]
    if set_traits:
        ident = {**base, "type": "identify", "userId": distinct, "traits": set_traits}
        if "messageId" in base:
            ident["messageId"] = base["messageId"] + ":$set"
        out.append(ident)
    return out


def _process(state: AppState, rec: Received) -> tuple[Intake, int]:
    """Authenticate, parse, map and journal one capture request."""
    cfg = state.workspace.config.ingest
    rec.raw = _unwrap_form(rec.raw) if not rec.raw.startswith(b"\x1f\x8b") else rec.raw
    body, size = open_body(state, SOURCE, rec, _key_in_body)
    intake = Intake(SOURCE)
    sent_at = body.get("sent_at") if isinstance(body, dict) else None
    if isinstance(body, dict) and isinstance(body.get("batch"), list):
        events, prefix = body["batch"], "batch"
    elif isinstance(body, list):
        events, prefix = body, "body"
    elif isinstance(body, dict):
        events, prefix = [body], None
    else:
        exc = InvalidInput(f"expected a JSON object or list, got {type(body).__name__}", where="body")
        record_body_failure(state, SOURCE, exc, rec.raw)
        raise exc
    received = intake.received_at.isoformat()
    raws = ((i, f"{prefix}[{i}]" if prefix else "body", ev) for i, ev in enumerate(events))
    intake.add_messages(
        raws,
        max_message_bytes=cfg.max_message_bytes,
        check_size=size > cfg.max_message_bytes,
        convert=lambda ev, where: to_segment(ev, where, sent_at, received),
    )
    intake.submit(state)
    return intake, len(events)


async def capture(request: Request) -> Response:
    """Accept PostHog events (single, list, or {"batch": [...]}; gzip, form `data=` base64)."""
    state = get_state(request)
    try:
        rec = await receive(request, state.workspace.config.ingest.max_batch_bytes)
        intake, total = await run_in_threadpool(_process, state, rec)
    except SegmintError as exc:
        return error_response(request, exc)
    return answer(request, intake, {"status": 1}, total)


for _path in PATHS:
    router.add_api_route(
        _path,
        capture,
        methods=["POST"],
        include_in_schema=_path.endswith("/"),
        summary=f"PostHog capture ({_path})",
        name=f"posthog{_path.replace('/', '_')}",
    )
    router.add_api_route(
        _path,
        preflight,
        methods=["OPTIONS"],
        include_in_schema=False,
        name=f"posthog{_path.replace('/', '_')}_preflight",
    )
