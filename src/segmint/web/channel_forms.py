"""Channel provider settings as forms: the fields of each `[channels.<name>]` section (from the pydantic models
that `segmint.channels.settings` reads), secrets masked, and applying a submitted form to the workspace config.
"""

from __future__ import annotations

import typing
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ValidationError

from segmint.channels.settings import ChannelsConfig
from segmint.config import save_config
from segmint.errors import InvalidInput

# section -> which campaign channel it serves (kakao_brand is a provider of its own)
SECTIONS = ("email", "webhook", "push", "sms", "kakao", "kakao_brand")
SECRET_FIELDS = frozenset({"password", "secret", "secret_key", "access_token"})
MASK = "••••"


@dataclass
class FieldSpec:
    """One form field of a channel section."""

    name: str
    kind: str  # text | number | select | password | checkbox
    required: bool
    default: Any
    choices: tuple[str, ...] = ()
    value: str = ""  # current value for display (secrets: empty)
    is_set: bool = False  # secrets: whether a value is stored
    masked: str = ""  # secrets: a hint such as ••••ab


def _model(section: str) -> type[BaseModel]:
    ann = typing.get_type_hints(ChannelsConfig)[section]
    return next(a for a in typing.get_args(ann) if isinstance(a, type) and issubclass(a, BaseModel))


def mask(value: str) -> str:
    """A stored secret for display: dots and its last two characters (short ones: dots only)."""
    return MASK + value[-2:] if len(value) >= 8 else MASK


def section_fields(config: ChannelsConfig, section: str) -> list[FieldSpec]:
    """The fields of one section with the current values (secrets only as masked hints)."""
    if section not in SECTIONS:
        raise InvalidInput(f"unknown channel section {section!r} (one of {', '.join(SECTIONS)})", where="channel")
    model = _model(section)
    current = getattr(config, section)
    out = []
    for name, info in model.model_fields.items():
        ann = info.annotation
        choices: tuple[str, ...] = ()
        if typing.get_origin(ann) is typing.Literal:
            kind, choices = "select", tuple(str(a) for a in typing.get_args(ann))
        elif ann is int:
            kind = "number"
        elif ann is bool:
            kind = "checkbox"
        else:
            kind = "password" if name in SECRET_FIELDS else "text"
        value = getattr(current, name) if current is not None else None
        spec = FieldSpec(name, kind, info.is_required(), None if info.is_required() else info.default, choices)
        if kind == "password":
            spec.is_set = bool(value)
            spec.masked = mask(str(value)) if value else ""
        else:
            spec.value = "" if value is None else str(value)
            if current is None and not info.is_required():
                spec.value = str(info.default)
        out.append(spec)
    return out


def apply_section(ws: Any, section: str, form: dict[str, str]) -> None:
    """Validate a submitted section and save it to segmint.toml; empty secret fields keep the stored secret."""
    fields = section_fields(ws.config.channels, section)
    current = getattr(ws.config.channels, section)
    data: dict[str, Any] = {}
    for f in fields:
        raw = (form.get(f.name) or "").strip()
        if f.kind == "checkbox":  # an unticked box is not sent at all: it means false
            data[f.name] = raw.lower() in ("true", "on", "1")
            continue
        if f.kind == "password" and not raw and current is not None:
            raw = str(getattr(current, f.name) or "")
        if raw == "" and not f.required:
            continue
        data[f.name] = raw
    try:
        settings = _model(section).model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = ".".join(str(p) for p in err["loc"])
        raise InvalidInput(str(err["msg"]), where=f"channels.{section}.{loc}") from None
    setattr(ws.config.channels, section, settings)
    save_config(ws.path, ws.config)


def remove_section(ws: Any, section: str) -> None:
    """Drop a section: the channel is no longer configured."""
    section_fields(ws.config.channels, section)  # validates the name
    setattr(ws.config.channels, section, None)
    save_config(ws.path, ws.config)
