"""A reference webhook receiver: verifies `Segmint-Signature`, dedupes by `Idempotency-Key`, counts.

For development, the exactly-once tests and the send benchmark:
`python -m segmint.campaigns.receiver --port 9000 --secret whsec_x [--fail-every N]`.
Single messages are deduped by the `Idempotency-Key` header, batches (campaigns/batch_webhook.py) by each
message's `message_id`. `GET /stats` -> {"requests", "unique", "duplicates", "bad_signature",
"users_twice"}; users_twice counts users who got two different message ids of one occurrence (must stay 0).
It is a raw ASGI app (no framework), so it costs the sender's machine as little as possible.
"""

from __future__ import annotations

import argparse
from typing import Any

import orjson

from segmint.channels.webhook import SIGNATURE_HEADER, verify


class Receiver:
    """The ASGI app: POST anything = a webhook delivery; GET /stats; POST /reset."""

    def __init__(self, secret: str, *, verify_signature: bool = True, fail_every: int = 0) -> None:
        self.secret, self.verify_signature, self.fail_every = secret, verify_signature, fail_every
        self.reset()

    def reset(self) -> None:
        """Forget everything received."""
        self.keys: set[str] = set()
        self.per_user: dict[tuple[str, str], str] = {}
        self.requests = self.duplicates = self.bad_signature = self.users_twice = 0

    def stats(self) -> dict[str, int]:
        """Counters."""
        return {"requests": self.requests, "unique": len(self.keys), "duplicates": self.duplicates,
                "bad_signature": self.bad_signature, "users_twice": self.users_twice}

    def handle(self, headers: dict[bytes, bytes], body: bytes) -> int:
        """Record one delivery; returns the HTTP status."""
        self.requests += 1
        if self.fail_every and self.requests % self.fail_every == 0:
            return 503
        if self.verify_signature and not verify(self.secret, headers.get(SIGNATURE_HEADER.lower().encode(),
                                                                         b"").decode(), body):
            self.bad_signature += 1
            return 401
        msg = orjson.loads(body)
        if headers.get(b"segmint-batch-size") and isinstance(msg, dict) and "batch" in msg:
            for item in msg["batch"]:
                self._one(str(item.get("message_id")), item)
        else:
            self._one(headers.get(b"idempotency-key", b"").decode(), msg)
        return 200

    def _one(self, key: str, msg: dict[str, Any]) -> None:
        if key in self.keys:
            self.duplicates += 1
            return
        self.keys.add(key)
        occurrence = key.rsplit(":", 1)[0]  # <campaign>:<occurrence>:<user>
        slot = (occurrence, str(msg.get("user_id")))
        if slot in self.per_user and self.per_user[slot] != key:
            self.users_twice += 1
        self.per_user[slot] = key

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body = b""
        while True:
            event = await receive()
            if event["type"] == "http.disconnect":  # the sender died mid-request: nothing was delivered
                return
            body += event.get("body", b"")
            if not event.get("more_body"):
                break
        if scope["method"] == "GET" and scope["path"] == "/stats":
            status, out = 200, orjson.dumps(self.stats())
        elif scope["method"] == "POST" and scope["path"] == "/reset":
            self.reset()
            status, out = 200, b"{}"
        else:
            status, out = self.handle(dict(scope["headers"]), body), b"{}"
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(out)).encode())]})
        await send({"type": "http.response.body", "body": out})


def main() -> None:
    """Run the receiver with uvicorn."""
    import uvicorn

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--secret", required=True)
    parser.add_argument("--fail-every", type=int, default=0)
    parser.add_argument("--no-verify", action="store_true")
    args = parser.parse_args()
    app = Receiver(args.secret, verify_signature=not args.no_verify, fail_every=args.fail_every)
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning", access_log=False,
                http="httptools", loop="uvloop" if _has_uvloop() else "asyncio")


def _has_uvloop() -> bool:
    try:
        import uvloop  # noqa: F401
    except ImportError:
        return False
    return True


if __name__ == "__main__":
    main()
