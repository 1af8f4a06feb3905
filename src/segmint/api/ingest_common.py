"""Shared plumbing of the ingestion routes: body reading and gzip decoding, JSON parsing, write-key
checks (cached briefly), CORS headers, and turning raw messages into journaled events and rejects."""

from __future__ import annotations

import base64
import binascii
import re
import threading
import time
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson
from fastapi import Request
from fastapi.responses import JSONResponse, Response
from sqlalchemy import Engine

from segmint.api.deps import AppState
from segmint.appdb.keys import verify_key
from segmint.errors import InvalidInput, PayloadTooLarge, SegmintError, Unauthorized
from segmint.ingest.messages import fast_normalize, normalize, parse_message
from segmint.ingest.pipeline import rejection

GZIP_MAGIC = b"\x1f\x8b"
KEY_TTL_SECONDS = 2.0  # a revoked key stops working within this long
NEGATIVE_TTL_SECONDS = 1.0
MAX_CACHED_KEYS = 10_000
MAX_LISTED_REJECTS = 100
_FIELD = re.compile(r"^[\w$.\[\]]+(?: or [\w$.\[\]]+)*$")


class KeyCache:
    """Write-key verdicts cached for a couple of seconds, so a request costs one dict lookup."""

    def __init__(
        self, engine: Engine, ttl: float = KEY_TTL_SECONDS, negative_ttl: float = NEGATIVE_TTL_SECONDS
    ) -> None:
        self.engine = engine
        self.ttl = ttl
        self.negative_ttl = negative_ttl
        self._cache: dict[str, tuple[bool, float]] = {}
        self._lock = threading.Lock()

    def valid(self, secret: str) -> bool:
        """Whether `secret` is a live write key (answer at most `ttl` seconds old)."""
        now = time.monotonic()
        hit = self._cache.get(secret)
        if hit is not None and hit[1] > now:
            return hit[0]
        ok = bool(secret) and len(secret) <= 256 and verify_key(self.engine, secret)
        with self._lock:
            if len(self._cache) >= MAX_CACHED_KEYS:
                self._cache.clear()
            self._cache[secret] = (ok, now + (self.ttl if ok else self.negative_ttl))
        return ok

    def clear(self) -> None:
        """Forget every cached verdict (after a key is revoked in this process)."""
        with self._lock:
            self._cache.clear()


def key_cache(state: AppState) -> KeyCache:
    """The app's write-key cache (created on first use)."""
    cache = state.extras.get("key_cache")
    if cache is None:
        cache = state.extras.setdefault("key_cache", KeyCache(state.workspace.appdb))
    return cache


def require_key(state: AppState, secret: str | None, where: str) -> None:
    """Raise Unauthorized unless `secret` is a live write key."""
    if not secret:
        raise Unauthorized(
            "no write key: send it as the HTTP Basic user name (empty password) or as writeKey in the body",
            where=where,
        )
    if not isinstance(secret, str) or not key_cache(state).valid(secret):
        raise Unauthorized("unknown or revoked write key", where=where)


def basic_auth_user(request: Request) -> str | None:
    """The user name of an `Authorization: Basic` header (Segment puts the write key there)."""
    header = request.headers.get("authorization")
    if not header:
        return None
    scheme, _, value = header.partition(" ")
    scheme = scheme.lower()
    if scheme == "basic":
        try:
            decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            raise Unauthorized("malformed Basic credentials", where="Authorization") from None
        return decoded.partition(":")[0] or None
    if scheme == "bearer":
        return value.strip() or None
    return None


async def read_body(request: Request, limit: int) -> tuple[bytes, bool]:
    """The raw request body and whether it passed `limit` bytes (then only its head is returned)."""
    declared = request.headers.get("content-length")
    too_large = declared is not None and declared.isdigit() and int(declared) > limit
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        chunks.append(chunk)
        if too_large or size > limit:
            return b"".join(chunks)[:4096], True
    return b"".join(chunks), False


def decode_body(raw: bytes, content_encoding: str | None, limit: int) -> bytes:
    """Gunzip when the body starts with the gzip magic or says gzip, whatever its Content-Type says
    (RudderStack's node SDK labels gzip as form-urlencoded); the decoded size is capped at `limit`."""
    encoding = (content_encoding or "").strip().lower()
    if raw.startswith(GZIP_MAGIC) or encoding in ("gzip", "x-gzip"):
        wbits = 16 + zlib.MAX_WBITS
    elif encoding == "deflate":
        wbits = zlib.MAX_WBITS
    else:
        return raw
    try:
        inflater = zlib.decompressobj(wbits)
        data = inflater.decompress(raw, limit + 1)
    except zlib.error as exc:
        raise InvalidInput(f"body is not valid {encoding or 'gzip'} data: {exc}", where="body") from None
    if len(data) > limit or inflater.unconsumed_tail:
        raise PayloadTooLarge(f"decompressed body is over the {limit}-byte limit", where="body")
    if not inflater.eof:
        raise InvalidInput("gzip body is truncated", where="body")
    return data


def parse_json(data: bytes, where: str = "body") -> Any:
    """Parse JSON with orjson; InvalidInput says where it broke (line, column)."""
    if not data.strip():
        raise InvalidInput("empty body; expected a JSON object", where=where)
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise InvalidInput(
            f"malformed JSON: {exc.msg} at line {exc.lineno} column {exc.colno}", where=where
        ) from None


def cors_headers(request: Request) -> dict[str, str]:
    """CORS answer for browsers (analytics.js, posthog-js): echo the Origin, allow what they send."""
    origin = request.headers.get("origin")
    if not origin:
        return {}
    asked = request.headers.get("access-control-request-headers")
    return {
        "Access-Control-Allow-Origin": origin,
        "Access-Control-Allow-Methods": "GET, POST, OPTIONS",
        "Access-Control-Allow-Headers": asked or "Content-Type, Authorization, Content-Encoding",
        "Access-Control-Max-Age": "86400",
        "Vary": "Origin",
    }


def preflight(request: Request) -> Response:
    """Answer a CORS preflight (OPTIONS)."""
    return Response(status_code=204, headers=cors_headers(request))


def error_response(request: Request, exc: SegmintError, extra: dict[str, Any] | None = None) -> JSONResponse:
    """A SegmintError as JSON (with `code`/`detail` too, which some SDKs read), plus CORS headers."""
    body = {**exc.to_dict(), "code": exc.code, "detail": str(exc), **(extra or {})}
    return JSONResponse(body, status_code=exc.status_code, headers=cors_headers(request))


def body_preview(data: bytes) -> str:
    """Printable head of a body, for rejected records."""
    return data[:4096].decode("utf-8", "replace")


def split_reason(exc: SegmintError) -> tuple[str, str]:
    """(field, reason) from an InvalidInput raised by parse_message ('field: reason')."""
    head, sep, tail = exc.message.partition(": ")
    if sep and _FIELD.match(head):
        return head, tail
    return exc.where or "message", exc.message


@dataclass
class Intake:
    """What one request yields: events to store, rejected records, and the per-message problems."""

    source: str
    received_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    events: list[dict[str, Any]] = field(default_factory=list)
    rejected: list[dict[str, Any]] = field(default_factory=list)
    problems: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._received_iso = self.received_at.isoformat()

    def reject(self, index: int, where: str, exc: SegmintError, payload: Any) -> None:
        """Record one invalid message (kept as a rejected record, reported in the answer)."""
        fld, reason = split_reason(exc)
        self.rejected.append(
            rejection(reason, fld, payload, index=index, source=self.source, received_at=self.received_at)
        )
        self.problems.append({"index": index, "where": where, "message": exc.message})

    def add_messages(
        self,
        raws: Iterable[tuple[int, str, Any]],
        *,
        max_message_bytes: int,
        check_size: bool,
        default_type: str | None = None,
        convert: Callable[[Any, str], list[dict[str, Any]]] | None = None,
    ) -> None:
        """Validate and normalize raw messages given as (index, where, raw); bad ones become rejects."""
        for index, where, raw in raws:
            try:
                if check_size:
                    size = len(orjson.dumps(raw))
                    if size > max_message_bytes:
                        raise PayloadTooLarge(
                            f"message is {size} bytes, over the {max_message_bytes}-byte limit", where=where
                        )
                shaped = convert(raw, where) if convert is not None else [raw]
                for one in shaped:
                    ev = fast_normalize(one, self.received_at, self.source, self._received_iso)
                    if ev is None:
                        msg = parse_message(one, default_type=default_type, where=where)
                        ev = normalize(msg, self.received_at, self.source)
                    self.events.append(ev)
            except SegmintError as exc:
                self.reject(index, where, exc, raw)

    def submit(self, state: AppState) -> None:
        """Journal the events and rejects (returns once fsynced)."""
        if self.events or self.rejected:
            state.ingestor.submit(self.events, self.rejected)


def record_body_failure(state: AppState, source: str, exc: SegmintError, data: bytes) -> None:
    """Journal a whole-body failure (malformed JSON, over-size) as one rejected record, payload truncated."""
    reason = exc.message
    state.ingestor.submit([], [rejection(reason, exc.where or "body", body_preview(data), source=source)])


@dataclass
class Received:
    """A request body as read by the route (before decoding), with what the headers said."""

    raw: bytes
    too_large: bool
    encoding: str | None
    header_key: str | None
    limit: int


async def receive(request: Request, limit: int) -> Received:
    """Read the body (bounded) and the header credential of an ingestion request."""
    header_key = basic_auth_user(request)
    raw, too_large = await read_body(request, limit)
    return Received(raw, too_large, request.headers.get("content-encoding"), header_key, limit)


def open_body(
    state: AppState, source: str, rec: Received, key_in_body: Callable[[Any], Any]
) -> tuple[Any, int]:
    """Authenticate, decode and parse a body; returns (JSON value, decoded size).

    A header key is checked first. Whole-body failures (over-size, bad gzip, malformed JSON) from an
    authenticated sender are journaled as a rejected record before the error is raised; without a
    header key the key must come from the parsed body, so an unparseable body is only answered 400.
    """
    authenticated = False
    if rec.header_key is not None:
        require_key(state, rec.header_key, "Authorization")
        authenticated = True
    data = rec.raw
    try:
        if rec.too_large:
            raise PayloadTooLarge(f"body is over the {rec.limit}-byte limit", where="body")
        data = decode_body(rec.raw, rec.encoding, rec.limit)
        body = parse_json(data)
    except SegmintError as exc:
        if authenticated:
            record_body_failure(state, source, exc, data)
        raise
    if not authenticated:
        require_key(state, key_in_body(body), "writeKey")
    return body, len(data)


def answer(request: Request, intake: Intake, ok: dict[str, Any], total: int) -> JSONResponse:
    """200 with `ok` when every message was accepted, else 400 listing the rejected ones."""
    headers = cors_headers(request)
    if not intake.problems:
        return JSONResponse(ok, headers=headers)
    first = intake.problems[0]
    body = {
        "error": "invalid_input",
        "code": "invalid_input",
        "message": f"{len(intake.problems)} of {total} messages rejected; first: {first['where']}: "
        f"{first['message']}",
        "detail": first["message"],
        "where": first["where"],
        "accepted": total - len(intake.problems),
        "rejected_count": len(intake.problems),
        "rejected": intake.problems[:MAX_LISTED_REJECTS],  # all of them are stored as rejected records
    }
    return JSONResponse(body, status_code=400, headers=headers)
