"""KakaoTalk brand messages (친구톡 / FriendTalk: advertising to a channel's friends) through NHN Cloud.

NHN Cloud KakaoTalk Bizmessage FriendTalk API v2.3:
`POST /friendtalk/v2.3/appkeys/{appkey}/messages` with `X-Secret-Key`, and `X-NC-API-IDEMPOTENCY-KEY` (a
repeat of the same key within 10 minutes is refused). Body: `senderKey` (40 chars), optional
`senderGroupingKey`, and `recipientList` (up to 1,000) of `{recipientNo, content, imageUrl, buttons[{ordering,
type, name, linkMo, linkPc}], isAd, recipientGroupingKey}`. The answer is HTTP 200 with `header.isSuccessful`
/ `resultCode` and `message.sendResults[{recipientSeq, recipientNo, resultCode, resultMessage}]` (read by
the same code as AlimTalk). Delivery is restricted at night (20:50-08:00 KST).

Everything this channel sends is advertising: every message goes out with `isAd: true`, and a message whose
text does not start with "(광고)" is refused before any call (정보통신망법 제50조; the campaigns guardrails add the
prefix, this is the last line of defence, as the vendor refuses unlabelled ad content). A message to a phone
number that is not a friend of the channel fails at the vendor (FriendTalk only reaches channel friends).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, time, timedelta, timezone
from typing import Any

import httpx
from pydantic import BaseModel

from segmint.channels.base import DeliveryResult, OutboundMessage
from segmint.channels.nhn import AD_PREFIX, _headers, _interpret

KST = timezone(timedelta(hours=9))
NIGHT_START, NIGHT_END = time(20, 50), time(8, 0)
MAX_CONTENT = 1000  # characters of text; 400 with an image
MAX_CONTENT_WITH_IMAGE = 400
MAX_BUTTONS = 5


class KakaoBrandSettings(BaseModel):
    """`[channels.kakao_brand]`: NHN Cloud KakaoTalk Bizmessage FriendTalk (brand messages)."""

    app_key: str
    secret_key: str
    sender_key: str
    base_url: str = "https://kakaotalk-bizmessage.api.nhncloudservice.com"
    api_version: str = "v2.3"


def in_night_window(moment: datetime) -> bool:
    """Whether a time falls in the vendor's night restriction (20:50-08:00 KST)."""
    local = (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).astimezone(KST).time()
    return local >= NIGHT_START or local < NIGHT_END


def _buttons(data: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for i, b in enumerate(data.get("buttons") or [], start=1):
        if not isinstance(b, dict) or not b.get("name"):
            raise ValueError(f"button {i} needs a name")
        btn = {"ordering": i, "type": str(b.get("type") or "WL"), "name": str(b["name"])}
        for key in ("linkMo", "linkPc", "schemeIos", "schemeAndroid"):
            if b.get(key):
                btn[key] = str(b[key])
        out.append(btn)
    return out


class KakaoBrandChannel:
    """KakaoTalk brand message (FriendTalk, advertising) to one phone number."""

    name = "kakao_brand"

    def __init__(self, *, app_key: str, secret_key: str, sender_key: str,
                 base_url: str = "https://kakaotalk-bizmessage.api.nhncloudservice.com", api_version: str = "v2.3",
                 timeout: float = 10.0, clock: Callable[[], datetime] | None = None) -> None:
        self.url = f"{base_url.rstrip('/')}/friendtalk/{api_version}/appkeys/{app_key}/messages"
        self.secret_key, self.sender_key = secret_key, sender_key
        self.client = httpx.Client(timeout=timeout)
        self.clock = clock or (lambda: datetime.now(UTC))

    def check(self, message: OutboundMessage) -> str | None:
        """Why the message cannot be sent as a brand message, or None."""
        if not message.to:
            return "no phone number"
        if not message.text.startswith(AD_PREFIX):
            return f"a brand message is advertising and must start with {AD_PREFIX!r} (정보통신망법 제50조)"
        limit = MAX_CONTENT_WITH_IMAGE if message.data.get("image_url") else MAX_CONTENT
        if len(message.text) > limit:
            return f"text is {len(message.text)} characters; a brand message holds at most {limit}"
        if len(message.data.get("buttons") or []) > MAX_BUTTONS:
            return f"at most {MAX_BUTTONS} buttons"
        if in_night_window(self.clock()):
            return "KakaoTalk brand messages are not delivered between 20:50 and 08:00 KST"
        return None

    def request(self, message: OutboundMessage) -> dict[str, Any]:
        """The request body for one message (always isAd: true)."""
        recipient: dict[str, Any] = {"recipientNo": message.to, "content": message.text, "isAd": True,
                                     "recipientGroupingKey": message.message_id}
        if message.data.get("image_url"):
            recipient["imageUrl"] = str(message.data["image_url"])
        buttons = _buttons(message.data)
        if buttons:
            recipient["buttons"] = buttons
        body: dict[str, Any] = {"senderKey": self.sender_key, "recipientList": [recipient]}
        if message.campaign_id:
            body["senderGroupingKey"] = message.campaign_id
        return body

    def send(self, message: OutboundMessage) -> DeliveryResult:
        """Send one brand message; refused before any call when it is not a valid advertising message."""
        reason = self.check(message)
        if reason:
            return DeliveryResult("refused", error=reason)
        try:
            body = self.request(message)
        except ValueError as exc:
            return DeliveryResult("refused", error=str(exc))
        try:
            response = self.client.post(self.url, json=body, headers=_headers(self.secret_key, message.message_id))
        except httpx.HTTPError as exc:
            return DeliveryResult("failed", error=f"NHN FriendTalk: {type(exc).__name__}: {exc}", retryable=True)
        return _interpret(response, ("message", "sendResults"), "NHN FriendTalk")
