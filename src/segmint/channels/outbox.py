"""Outbox channel for development and demos: one JSON line per message in the workspace outbox/ folder."""

from __future__ import annotations

import dataclasses
import threading
from datetime import UTC, datetime
from pathlib import Path

import orjson

from segmint.channels.base import DeliveryResult, OutboundMessage


class OutboxChannel:
    """Appends each message as one JSON line to `<folder>/<channel>.jsonl`."""

    def __init__(self, folder: Path, *, name: str = "outbox") -> None:
        self.name = name
        self.folder = Path(folder)
        self._lock = threading.Lock()

    @property
    def path(self) -> Path:
        """The JSON-lines file messages are appended to."""
        return self.folder / f"{self.name}.jsonl"

    def send(self, message: OutboundMessage) -> DeliveryResult:
        """Append the message; the message id is the provider id."""
        record = dataclasses.asdict(message) | {"written_at": datetime.now(UTC).isoformat()}
        line = orjson.dumps(record) + b"\n"
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            with self._lock, self.path.open("ab") as fh:
                fh.write(line)
        except OSError as exc:
            return DeliveryResult("failed", error=f"{self.path}: {exc}", retryable=True)
        return DeliveryResult("sent", provider_message_id=message.message_id)
