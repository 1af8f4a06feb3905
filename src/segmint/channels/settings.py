"""The `[channels]` section of segmint.toml: provider settings per channel (absent section = not configured)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel

from segmint.channels.kakao_brand import KakaoBrandSettings


class SmtpSettings(BaseModel):
    """`[channels.email]`: an SMTP relay."""

    host: str
    port: int = 587
    sender: str
    sender_name: str = ""
    username: str = ""
    password: str = ""
    security: Literal["starttls", "tls", "none"] = "starttls"
    unsubscribe_mailto: str = ""
    ca_file: str = ""


class WebhookSettings(BaseModel):
    """`[channels.webhook]`: one receiving URL and its signing secret."""

    url: str
    secret: str
    max_attempts: int = 5
    accepted_is_delivered: bool = False  # the receiver's 2xx is the delivery: record `delivered` at once


class FcmSettings(BaseModel):
    """`[channels.push]`: Firebase Cloud Messaging HTTP v1."""

    project_id: str
    access_token: str = ""
    base_url: str = "https://fcm.googleapis.com"
    max_attempts: int = 3


class NhnSmsSettings(BaseModel):
    """`[channels.sms]`: NHN Cloud Notification SMS API v3.0."""

    app_key: str
    secret_key: str
    send_no: str
    base_url: str = "https://api-sms.cloud.toast.com"


class NhnAlimtalkSettings(BaseModel):
    """`[channels.kakao]`: NHN Cloud KakaoTalk Bizmessage AlimTalk API v2.3."""

    app_key: str
    secret_key: str
    sender_key: str
    base_url: str = "https://kakaotalk-bizmessage.api.nhncloudservice.com"


class ChannelsConfig(BaseModel):
    """All channel settings; the outbox and in-app channels need none."""

    outbox_dir: str = "outbox"
    email: SmtpSettings | None = None
    webhook: WebhookSettings | None = None
    push: FcmSettings | None = None
    sms: NhnSmsSettings | None = None
    kakao: NhnAlimtalkSettings | None = None
    kakao_brand: KakaoBrandSettings | None = None  # FriendTalk brand messages (advertising)
