"""Signed tracking links: open pixel, click redirect and one-click unsubscribe, keyed to one ledger message.

A token is `base64url(json payload) + "." + base64url(HMAC-SHA256(secret, "<kind>." + payload))`, so a
token made for a click cannot be replayed as an unsubscribe, and a click token pins its target URL (no open
redirect). The secret is the workspace's session secret.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
from typing import Any
from urllib.parse import quote

import orjson

from segmint.errors import Forbidden

KINDS = ("open", "click", "unsubscribe")
PUBLIC_URL_ENV = "SEGMINT_PUBLIC_URL"


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(secret: str, kind: str, payload: str) -> str:
    return _b64(hmac.new(secret.encode(), f"{kind}.{payload}".encode(), hashlib.sha256).digest()[:18])


def make_token(secret: str, kind: str, data: dict[str, Any]) -> str:
    """A signed token of `kind` carrying `data` (message id m, user u, campaign c, variant v, channel ch, url)."""
    payload = _b64(orjson.dumps(data))
    return f"{payload}.{_mac(secret, kind, payload)}"


def read_token(secret: str, kind: str, token: str) -> dict[str, Any]:
    """The data of a valid token of `kind`; Forbidden when it is malformed or its signature does not match."""
    try:
        payload, mac = token.split(".", 1)
        if not hmac.compare_digest(mac, _mac(secret, kind, payload)):
            raise ValueError("bad signature")
        data = orjson.loads(_unb64(payload))
        if not isinstance(data, dict):
            raise ValueError("not an object")
    except (ValueError, orjson.JSONDecodeError):
        raise Forbidden("invalid or tampered link", where="token") from None
    return data


def public_url(ws: Any) -> str:
    """Base URL the tracking links point at: $SEGMINT_PUBLIC_URL, else the configured server address."""
    env = os.environ.get(PUBLIC_URL_ENV)
    if env:
        return env.rstrip("/")
    return f"http://{ws.config.server.host}:{ws.config.server.port}"


class LinkMaker:
    """Builds a message's tracking URLs from a base URL and the signing secret."""

    def __init__(self, base_url: str, secret: str) -> None:
        self.base, self.secret = base_url.rstrip("/"), secret

    def unsubscribe(self, ref: dict[str, Any]) -> str:
        """The one-click unsubscribe URL (GET shows a page, POST unsubscribes: RFC 8058)."""
        return f"{self.base}/t/u/{make_token(self.secret, 'unsubscribe', ref)}"

    def open_pixel(self, ref: dict[str, Any]) -> str:
        """The 1x1 tracking pixel URL."""
        return f"{self.base}/t/o/{make_token(self.secret, 'open', ref)}.gif"

    def click(self, ref: dict[str, Any], url: str) -> str:
        """A redirect URL that records a click, then sends the user to `url`."""
        return f"{self.base}/t/c/{make_token(self.secret, 'click', {**ref, 'url': url})}?to={quote(url, safe='')}"
