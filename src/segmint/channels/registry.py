"""Build the workspace's channels from `[channels]` in segmint.toml."""

from __future__ import annotations

from typing import TYPE_CHECKING

from segmint.channels.base import Channel
from segmint.channels.fcm import FcmChannel
from segmint.channels.inapp import InAppChannel
from segmint.channels.kakao_brand import KakaoBrandChannel
from segmint.channels.nhn import NhnAlimtalkChannel, NhnSmsChannel
from segmint.channels.outbox import OutboxChannel
from segmint.channels.smtp import SmtpChannel
from segmint.channels.webhook import WebhookChannel
from segmint.errors import InvalidInput

if TYPE_CHECKING:
    from segmint.workspace import Workspace


def build_channels(workspace: Workspace) -> dict[str, Channel]:
    """Every usable channel by name: outbox and in_app always, the others when configured."""
    settings = workspace.config.channels
    channels: dict[str, Channel] = {
        "outbox": OutboxChannel(workspace.path / settings.outbox_dir),
        "in_app": InAppChannel(workspace.appdb),
    }
    if settings.email:
        channels["email"] = SmtpChannel(**settings.email.model_dump())
    if settings.webhook:
        channels["webhook"] = WebhookChannel(**settings.webhook.model_dump())
    if settings.push:
        channels["push"] = FcmChannel(**settings.push.model_dump())
    if settings.sms:
        channels["sms"] = NhnSmsChannel(**settings.sms.model_dump())
    if settings.kakao:
        channels["kakao"] = NhnAlimtalkChannel(**settings.kakao.model_dump())
    if settings.kakao_brand:
        channels["kakao_brand"] = KakaoBrandChannel(**settings.kakao_brand.model_dump())
    return channels


def get_channel(workspace: Workspace, name: str) -> Channel:
    """One channel by name, or a clear error naming the missing `[channels.<name>]` section."""
    channels = build_channels(workspace)
    if name not in channels:
        raise InvalidInput(
            f"channel {name!r} is not configured (add [channels.{name}] to segmint.toml; "
            f"configured: {', '.join(sorted(channels))})",
            where="channel",
        )
    return channels[name]
