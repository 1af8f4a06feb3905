"""Segment-spec messages (track, identify, page, screen, group, alias) as pydantic models, and their
normalization into the store's event record, with Segment's clock-skew correction."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, model_validator

from segmint.errors import InvalidInput
from segmint.store.schema import NON_TRACK_EVENT

MessageType = Literal["track", "identify", "page", "screen", "group", "alias"]
TYPES: tuple[str, ...] = ("track", "identify", "page", "screen", "group", "alias")


def _id_text(value: Any) -> Any:
    """Segment accepts numeric ids and stores them as strings; anything else must be a string."""
    if isinstance(value, bool):
        raise ValueError("must be a string or a number, not a boolean")
    if isinstance(value, int | float):
        return str(int(value)) if float(value).is_integer() else str(value)
    return value


IdText = Annotated[str, BeforeValidator(_id_text), Field(min_length=1, max_length=512)]


class Message(BaseModel):
    """One Segment-spec message; fields not named here are kept in `model_extra`."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)

    type: MessageType
    message_id: str | None = Field(default=None, alias="messageId", max_length=512)
    user_id: IdText | None = Field(default=None, alias="userId")
    anonymous_id: IdText | None = Field(default=None, alias="anonymousId")
    timestamp: datetime | None = None
    original_timestamp: datetime | None = Field(default=None, alias="originalTimestamp")
    sent_at: datetime | None = Field(default=None, alias="sentAt")
    context: dict[str, Any] = Field(default_factory=dict)
    integrations: dict[str, Any] = Field(default_factory=dict)
    event: str | None = Field(default=None, min_length=1, max_length=256)
    name: str | None = None
    category: str | None = None
    properties: dict[str, Any] = Field(default_factory=dict)
    traits: dict[str, Any] = Field(default_factory=dict)
    group_id: IdText | None = Field(default=None, alias="groupId")
    previous_id: IdText | None = Field(default=None, alias="previousId")

    @model_validator(mode="after")
    def _required_per_type(self) -> Message:
        if self.type == "alias":
            if not self.previous_id:
                raise ValueError("previousId: required for alias")
            if not self.user_id:
                raise ValueError("userId: required for alias")
        elif not self.user_id and not self.anonymous_id:
            raise ValueError("userId or anonymousId: one of them is required")
        if self.type == "track" and not self.event:
            raise ValueError("event: required for track")
        if self.type == "group" and not self.group_id:
            raise ValueError("groupId: required for group")
        return self


def _aware(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def event_time(msg: Message, received_at: datetime) -> datetime:
    """Segment's rule: timestamp = receivedAt - (sentAt - originalTimestamp) when the client sent sentAt."""
    original = _aware(msg.original_timestamp or msg.timestamp)
    sent = _aware(msg.sent_at)
    if original is None:
        return received_at
    if sent is not None:
        return received_at - (sent - original)
    return original


def describe_error(exc: ValidationError) -> tuple[str, str]:
    """(field, reason) of the first pydantic error, in the message's own field names."""
    err = exc.errors()[0]
    loc = [str(p) for p in err["loc"] if not str(p).isdigit() or len(err["loc"]) > 1]
    field = ".".join(loc)
    msg = err["msg"].removeprefix("Value error, ")
    if not field and ":" in msg:
        field, msg = (part.strip() for part in msg.split(":", 1))
    return field or "message", msg


def parse_message(raw: Any, *, default_type: str | None = None, where: str = "message") -> Message:
    """Validate one raw message (a JSON object) or raise InvalidInput naming the message and field."""
    if not isinstance(raw, dict):
        raise InvalidInput(f"expected a JSON object, got {type(raw).__name__}", where=where)
    if default_type is not None and "type" not in raw:
        raw = {**raw, "type": default_type}
    if "type" not in raw:
        raise InvalidInput(f"type: required, one of {', '.join(TYPES)}", where=where)
    try:
        return Message.model_validate(raw)
    except ValidationError as exc:
        field, reason = describe_error(exc)
        raise InvalidInput(f"{field}: {reason}", where=where) from None


def normalize(msg: Message, received_at: datetime, source: str = "http") -> dict[str, Any]:
    """The store's event record for a message (a plain dict, JSON-serializable for the journal)."""
    props = dict(msg.properties)
    if msg.type == "identify" and not msg.traits and isinstance(msg.context.get("traits"), dict):
        msg.traits = dict(msg.context["traits"])  # RudderStack's SDKs send identify traits in context.traits
    if msg.type in ("page", "screen"):
        if msg.name is not None:
            props.setdefault("name", msg.name)
        if msg.category is not None:
            props.setdefault("category", msg.category)
    elif msg.type in ("identify", "group"):
        props = dict(msg.traits)
        if msg.type == "group":
            props["group_id"] = msg.group_id
    elif msg.type == "alias":
        props = {"previous_id": msg.previous_id}
    ts = event_time(msg, received_at)
    return {
        "message_id": msg.message_id or str(uuid.uuid4()),
        "type": msg.type,
        "event": msg.event if msg.type == "track" else NON_TRACK_EVENT[msg.type],
        "user_id": msg.user_id,
        "anonymous_id": msg.anonymous_id,
        "ts": ts.isoformat(),
        "received_at": received_at.isoformat(),
        "properties": props,
        "context": msg.context,
        "source": source,
        # identity and profile side effects, consumed by the writer
        "previous_id": msg.previous_id,
        "traits": msg.traits if msg.type == "identify" else None,
        "timezone": (msg.traits.get("timezone") if msg.type == "identify" else None) or msg.context.get("timezone"),
    }


_ISO = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,6})?(?:Z|[+-]\d{2}:\d{2})?")
_DICT_FIELDS = ("context", "integrations", "properties", "traits")
_OPT_STR_FIELDS = ("name", "category")
_FAST_TYPES = ("track", "identify", "page", "screen")


def _plain_id(raw: dict[str, Any], key: str) -> str | bool | None:
    """An id field as the model would give it, or False when only the full model can tell."""
    value = raw.get(key)
    if value is None:
        return None
    if type(value) is str and 0 < len(value) <= 512:
        return value
    return False


def _plain_time(value: Any) -> datetime | bool | None:
    if value is None:
        return None
    if type(value) is str and _ISO.fullmatch(value):
        try:
            return datetime.fromisoformat(value)
        except ValueError:  # e.g. month 13: the model reports it
            return False
    return False


def fast_normalize(raw: Any, received_at: datetime, source: str = "http",
                   received_iso: str | None = None) -> dict[str, Any] | None:
    """normalize(parse_message(raw)) for plain, valid track/identify/page/screen messages, without
    pydantic (the hot path of ingestion). None means "take the full path": anything unusual or
    invalid goes through the model, which also says what is wrong."""
    if type(raw) is not dict:
        return None
    kind = raw.get("type")
    if kind not in _FAST_TYPES or raw.get("previousId") is not None or raw.get("groupId") is not None:
        return None
    user, anon = _plain_id(raw, "userId"), _plain_id(raw, "anonymousId")
    if user is False or anon is False or not (user or anon):
        return None
    mid = raw.get("messageId")
    if mid is not None and (type(mid) is not str or len(mid) > 512):
        return None
    event = raw.get("event")
    if event is not None and (type(event) is not str or not 0 < len(event) <= 256):
        return None
    if kind == "track" and event is None:
        return None
    for key in _DICT_FIELDS:
        if key in raw and type(raw[key]) is not dict:
            return None
    for key in _OPT_STR_FIELDS:
        if raw.get(key) is not None and type(raw[key]) is not str:
            return None
    stamp, original, sent = (_plain_time(raw.get(k)) for k in ("timestamp", "originalTimestamp", "sentAt"))
    if stamp is False or original is False or sent is False:
        return None
    first, sent = _aware(original or stamp), _aware(sent)  # type: ignore[arg-type]
    if first is None:
        ts = received_at
    elif sent is not None:
        ts = received_at - (sent - first)
    else:
        ts = first
    context = raw.get("context") or {}
    traits = raw.get("traits") or {}
    if kind == "identify" and not traits and type(context.get("traits")) is dict:
        traits = dict(context["traits"])
    if kind in ("page", "screen"):
        props = dict(raw.get("properties") or {})
        if raw.get("name") is not None:
            props.setdefault("name", raw["name"])
        if raw.get("category") is not None:
            props.setdefault("category", raw["category"])
    elif kind == "identify":
        props = dict(traits)
    else:
        props = dict(raw.get("properties") or {})
    return {
        "message_id": mid or str(uuid.uuid4()),
        "type": kind,
        "event": event if kind == "track" else NON_TRACK_EVENT[kind],
        "user_id": user,
        "anonymous_id": anon,
        "ts": ts.isoformat(),
        "received_at": received_iso or received_at.isoformat(),
        "properties": props,
        "context": context,
        "source": source,
        "previous_id": None,
        "traits": traits if kind == "identify" else None,
        "timezone": (traits.get("timezone") if kind == "identify" else None) or context.get("timezone"),
    }
