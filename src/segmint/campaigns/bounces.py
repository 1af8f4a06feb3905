"""SMTP delivery status notifications (DSN, RFC 3464) -> ledger `bounced` / `delivered`.

A bounce comes back to the envelope sender as a `multipart/report; report-type=delivery-status` mail: a
human-readable part, a `message/delivery-status` part (per-recipient `Action: failed|delivered|delayed|...`,
`Status: 5.1.1`, `Diagnostic-Code`) and the original message or its headers (`message/rfc822` or
`text/rfc822-headers`), which carry our `X-Segmint-Message-Id` (the ledger message id; channels/smtp.py).
`parse_dsn` reads one such mail; `record_dsn` applies it to the ledger (a bounce also suppresses the user on
email). Whatever reads the bounce mailbox (IMAP, a pipe from the MTA, `segmint campaign bounces FILE...`)
hands the raw bytes to `record_dsn`.
"""

from __future__ import annotations

import email
import email.policy
from dataclasses import dataclass
from email.message import Message
from email.parser import HeaderParser
from typing import Any

from sqlalchemy import Engine

from segmint.campaigns.ledger import record_delivery
from segmint.channels.smtp import IDEMPOTENCY_HEADER

_ACTIONS = {"failed": "bounced", "delivered": "delivered", "relayed": "delivered", "expanded": "delivered"}


@dataclass(frozen=True)
class DsnReport:
    """One recipient's outcome in a DSN: the ledger message id, delivered or bounced, and why."""

    message_id: str
    status: str  # delivered | bounced
    detail: str


def _original_headers(report: Message) -> Message | None:
    for part in report.walk():
        ctype = part.get_content_type()
        if ctype == "message/rfc822":
            inner = part.get_payload()
            if isinstance(inner, list) and inner:
                return inner[0]
        if ctype == "text/rfc822-headers":
            raw = part.get_payload(decode=True) or b""
            return HeaderParser().parsestr(raw.decode("utf-8", "replace"))
    return None


def _status_blocks(report: Message) -> list[Message]:
    for part in report.walk():
        if part.get_content_type() == "message/delivery-status":
            blocks = part.get_payload()
            if isinstance(blocks, list):
                return [b for b in blocks if isinstance(b, Message)]
    return []


def parse_dsn(raw: bytes) -> list[DsnReport]:
    """The per-recipient outcomes of a DSN mail (empty when it is not a DSN or not about one of our mails)."""
    mail = email.message_from_bytes(raw, policy=email.policy.compat32)
    if mail.get_content_type() != "multipart/report":
        return []
    original = _original_headers(mail)
    message_id = original.get(IDEMPOTENCY_HEADER) if original is not None else None
    if not message_id:
        return []
    out = []
    for block in _status_blocks(mail)[1:]:  # the first block is per-message fields
        action = str(block.get("Action", "")).strip().lower()
        if action not in _ACTIONS:
            continue  # delayed: not final yet
        status = str(block.get("Status", "")).strip()
        diagnostic = " ".join(str(block.get("Diagnostic-Code", "")).split())
        recipient = str(block.get("Final-Recipient", "")).split(";")[-1].strip()
        detail = " ".join(x for x in (status, diagnostic, f"({recipient})" if recipient else "") if x)
        out.append(DsnReport(str(message_id).strip(), _ACTIONS[action], detail))
    return out


def record_dsn(engine: Engine, raw: bytes) -> list[dict[str, Any]]:
    """Apply a DSN to the ledger; returns what it found and whether each matched a sent message."""
    return [{"message_id": r.message_id, "status": r.status, "detail": r.detail,
             "recorded": record_delivery(engine, r.message_id, r.status, detail=r.detail)} for r in parse_dsn(raw)]
