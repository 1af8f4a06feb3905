"""The composer's KakaoTalk fields: what AlimTalk (`kakao`) and FriendTalk (`kakao_brand`) messages carry in
`Message.data`, the checks the composer shows inline, and the vendor request a rendered message becomes.

AlimTalk (NHN Cloud AlimTalk API v2.3) sends a Kakao-approved template: `template_code`, the template's
variables `template_parameters` (name -> Liquid, rendered per user) and optional `buttons`; it is
informational only. FriendTalk (brand message, advertising only) sends the text with an optional `image_url`
and `buttons`. A button is `{type: WL (web link) | AL (app link), name, linkMo, linkPc, schemeIos, schemeAndroid}`.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from datetime import time
from typing import Any

from segmint.campaigns.model import Campaign
from segmint.campaigns.templates import compile_template
from segmint.channels.base import OutboundMessage
from segmint.channels.kakao_brand import (
    MAX_BUTTONS,
    MAX_CONTENT,
    MAX_CONTENT_WITH_IMAGE,
    NIGHT_END,
    NIGHT_START,
    KakaoBrandChannel,
)
from segmint.channels.nhn import NhnAlimtalkChannel
from segmint.errors import SegmintError

KAKAO_CHANNELS = ("kakao", "kakao_brand")
BUTTON_TYPES = ("WL", "AL")
MAX_BUTTON_NAME = 14  # Kakao's limit on a button label
_URL = re.compile(r"^https?://\S+$")
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://\S*$")
SENDER_KEY_SHOWN = "<channels.{ch}.sender_key>"  # previews never show the configured key


@dataclass(frozen=True)
class FieldError:
    """One problem with a composer field: where (variant, channel, field, row) and what (code + values)."""

    code: str
    field: str
    variant: str | None = None
    channel: str | None = None
    index: int | None = None
    values: dict[str, Any] | None = None
    severity: str = "error"  # error: the composer refuses to save; warn: shown, saving allowed

    def as_dict(self, t: Any) -> dict[str, Any]:
        """JSON for the composer, with the message in the page's language."""
        text = t("kakao.err_" + self.code)
        for k, v in (self.values or {}).items():
            text = text.replace("{" + k + "}", str(v))
        return {**asdict(self), "message": text}


def _button_errors(buttons: Any, variant: str, channel: str) -> list[FieldError]:
    if buttons in (None, []):
        return []
    if not isinstance(buttons, list):
        return [FieldError("buttons_list", "buttons", variant, channel)]
    out: list[FieldError] = []
    if len(buttons) > MAX_BUTTONS:
        out.append(FieldError("buttons_max", "buttons", variant, channel, values={"max": MAX_BUTTONS}))
    for i, b in enumerate(buttons):
        b = b if isinstance(b, dict) else {}
        kind = str(b.get("type") or "WL")
        name = str(b.get("name") or "").strip()
        if kind not in BUTTON_TYPES:
            out.append(FieldError("button_type", "button.type", variant, channel, i, {"type": kind}))
        if not name:
            out.append(FieldError("button_name", "button.name", variant, channel, i))
        elif len(name) > MAX_BUTTON_NAME:
            out.append(FieldError("button_name_long", "button.name", variant, channel, i,
                                  {"max": MAX_BUTTON_NAME, "n": len(name)}))
        for key in ("linkMo", "linkPc"):
            if b.get(key) and not _URL.match(str(b[key])):
                out.append(FieldError("button_url", "button." + key, variant, channel, i))
        for key in ("schemeIos", "schemeAndroid"):
            if b.get(key) and not _SCHEME.match(str(b[key])):
                out.append(FieldError("button_scheme", "button." + key, variant, channel, i))
        if kind == "WL" and not b.get("linkMo"):
            out.append(FieldError("button_wl", "button.linkMo", variant, channel, i))
        if kind == "AL" and not (b.get("schemeIos") or b.get("schemeAndroid")):
            out.append(FieldError("button_al", "button.schemeAndroid", variant, channel, i))
    return out


def quiet_covers(c: Campaign, start: time, end: time) -> bool:
    """Whether the campaign's quiet hours (when on) hold the whole night window start-end (across midnight)."""
    qh = c.policy.quiet_hours
    if not qh.enabled:
        return False
    if qh.start > qh.end:  # across midnight, as the night window is
        return qh.start <= start and qh.end >= end
    return False


def check_kakao(c: Campaign) -> list[FieldError]:
    """Every KakaoTalk problem of a campaign the composer shows next to its field (empty: nothing to fix)."""
    out: list[FieldError] = []
    if "kakao" in c.channels and c.advertising and c.policy.korean_ad_law:
        out.append(FieldError("alimtalk_ad", "channel", channel="kakao"))
    if "kakao_brand" in c.channels and not c.advertising:
        out.append(FieldError("friendtalk_info", "channel", channel="kakao_brand"))
    if "kakao_brand" in c.channels and not quiet_covers(c, NIGHT_START, NIGHT_END):
        qh = c.policy.quiet_hours
        hours = f"{qh.start:%H:%M}-{qh.end:%H:%M}" if qh.enabled else "-"
        out.append(FieldError("friendtalk_night", "channel", channel="kakao_brand", severity="warn",
                              values={"hours": hours}))
    for v in c.variants:
        alim = v.messages.get("kakao")
        if alim is not None:
            data = alim.data
            if not str(data.get("template_code") or "").strip():
                out.append(FieldError("template_code", "template_code", v.key, "kakao"))
            params = data.get("template_parameters") or {}
            if not isinstance(params, dict):
                out.append(FieldError("params_map", "template_parameters", v.key, "kakao"))
                params = {}
            for i, (name, value) in enumerate(params.items()):
                if not str(name).strip():
                    out.append(FieldError("param_name", "param.name", v.key, "kakao", i))
                try:
                    compile_template(str(value), name=f"#{{{name}}}")
                except SegmintError as exc:
                    out.append(FieldError("param_liquid", "param.value", v.key, "kakao", i,
                                          {"error": str(exc)}))
            out += _button_errors(data.get("buttons"), v.key, "kakao")
        brand = v.messages.get("kakao_brand")
        if brand is not None:
            data = brand.data
            image = str(data.get("image_url") or "")
            if image and not _URL.match(image):
                out.append(FieldError("image_url", "image_url", v.key, "kakao_brand"))
            if not brand.text.strip():
                out.append(FieldError("friendtalk_text", "text", v.key, "kakao_brand"))
            limit = MAX_CONTENT_WITH_IMAGE if image else MAX_CONTENT
            if len(brand.text) > limit:
                out.append(FieldError("friendtalk_long", "text", v.key, "kakao_brand",
                                      values={"n": len(brand.text), "max": limit}))
            out += _button_errors(data.get("buttons"), v.key, "kakao_brand")
    return out


def vendor_request(channel: str, payload: dict[str, Any], *, user_id: str, campaign_id: str) -> dict[str, Any] | None:
    """The NHN Cloud request body a rendered KakaoTalk payload becomes (built by the channel adapter itself;
    the sender key is shown as a placeholder), or None for other channels or an unsendable payload."""
    if channel not in KAKAO_CHANNELS:
        return None
    message = OutboundMessage(message_id=f"{campaign_id}:preview:{user_id}", user_id=user_id,
                              to=str(payload.get("to") or ""), subject=str(payload.get("subject") or ""),
                              text=str(payload.get("text") or ""), data=dict(payload.get("data") or {}),
                              campaign_id=campaign_id, advertising=bool(payload.get("advertising")))
    adapter: Any
    if channel == "kakao":
        adapter = NhnAlimtalkChannel(app_key="preview", secret_key="preview",
                                     sender_key=SENDER_KEY_SHOWN.format(ch=channel))
    else:
        adapter = KakaoBrandChannel(app_key="preview", secret_key="preview",
                                    sender_key=SENDER_KEY_SHOWN.format(ch=channel))
    try:
        return adapter.request(message)
    except ValueError:
        return None
    finally:
        adapter.client.close()


def refuse_kakao_errors(c: Campaign, lang: str = "en") -> None:
    """Raise InvalidInput for the first KakaoTalk error of a campaign (warnings pass): the API and the CLI refuse
    to save what the composer refuses, e.g. an advertising AlimTalk or one without a template code."""
    from segmint.errors import InvalidInput
    from segmint.web.i18n import translator

    errors = [e for e in check_kakao(c) if e.severity == "error"]
    if errors:
        e = errors[0]
        where = ".".join(str(p) for p in ("variants", e.variant, "messages", e.channel, e.field) if p is not None) \
            if e.variant else f"channels.{e.channel}"
        if e.index is not None:
            where += f"[{e.index}]"
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        raise InvalidInput(e.as_dict(translator(lang))["message"] + more, where=where)
