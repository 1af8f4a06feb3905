"""SMS/LMS and KakaoTalk AlimTalk through NHN Cloud Notification APIs (X-Secret-Key auth).

- SMS API v3.0: `POST /sms/v3.0/appKeys/{appKey}/sender/sms` (<= 90 bytes EUC-KR) or `/sender/mms` (LMS,
  with a title); advertising goes to `/sender/ad-sms` / `/sender/ad-mms` and must start with "(광고)"
  (Korean law; the adapter refuses rather than rewrites).
- AlimTalk API v2.3: `POST /alimtalk/v2.3/appkeys/{appkey}/messages` with senderKey, templateCode
  (from `message.data["template_code"]`), templateParameter (`message.data["template_parameters"]`) and
  buttons (`message.data["buttons"]`: ordering, type WL/AL, name, linkMo/linkPc or schemeIos/schemeAndroid).
  AlimTalk is informational only: a message marked advertising is refused. The request carries
  `X-NC-API-IDEMPOTENCY-KEY` (NHN rejects a repeat of the same key within 10 minutes).

Both answer HTTP 200 with `header.isSuccessful`/`resultCode` and a per-recipient result list.

Delivery results (`delivery_status`, polled by campaigns/receipts.py): SMS "단건 조회"
`GET /sms/v3.0/appKeys/{appKey}/sender/{sms|mms}/{requestId}?mtPr={recipientSeq}` -> `body.data.msgStatus`
("3" success, "0" failed, "4" reservation cancelled, "5" duplicate failure, "1"/"2" requested/processing)
with `resultCode`/`resultCodeName` and `resultDate`; AlimTalk "메시지 단건 조회"
`GET /alimtalk/v2.3/appkeys/{appkey}/messages/{requestId}/{recipientSeq}` -> `message.messageStatus`
(COMPLETED, FAILED, READY/IN_PROGRESS...) with `resultCode` ("1000" = delivered), `resultCodeName`,
`receiveDate`. Our provider message id is `<requestId>:<recipientSeq>`.
"""

from __future__ import annotations

from typing import Any

import httpx

from segmint.channels.base import DeliveryResult, OutboundMessage, Receipt
from segmint.channels.retry import is_retryable_status

SMS_MAX_BYTES = 90
AD_PREFIX = "(광고)"


def _euc_kr_len(text: str) -> int:
    """Length in EUC-KR bytes (what NHN counts), unencodable characters counted as 2."""
    total = 0
    for ch in text:
        try:
            total += len(ch.encode("euc-kr"))
        except UnicodeEncodeError:
            total += 2
    return total


def _headers(secret_key: str, idempotency_key: str | None = None) -> dict[str, str]:
    headers = {"X-Secret-Key": secret_key, "Content-Type": "application/json;charset=UTF-8"}
    if idempotency_key:
        headers["X-NC-API-IDEMPOTENCY-KEY"] = idempotency_key
    return headers


def _interpret(response: httpx.Response, results_path: tuple[str, ...], vendor: str) -> DeliveryResult:
    """DeliveryResult from an NHN answer: HTTP status, then header, then the first recipient's result."""
    if not response.is_success:
        return DeliveryResult("failed", error=f"{vendor}: HTTP {response.status_code}: {response.text[:200]}",
                              retryable=is_retryable_status(response.status_code))
    try:
        payload: Any = response.json()
    except ValueError:
        return DeliveryResult("failed", error=f"{vendor}: answer is not JSON", retryable=True)
    header = payload.get("header") or {}
    if not header.get("isSuccessful"):
        return DeliveryResult("failed", error=f"{vendor}: {header.get('resultCode')} {header.get('resultMessage')}")
    node = payload
    for key in results_path[:-1]:
        node = node.get(key) or {}
    results = node.get(results_path[-1]) or []
    request_id = node.get("requestId", "")
    if not results:
        return DeliveryResult("failed", error=f"{vendor}: no recipient result in answer", retryable=False)
    first = results[0]
    if first.get("resultCode") != 0:
        return DeliveryResult("failed", error=f"{vendor}: recipient {first.get('resultCode')} "
                                              f"{first.get('resultMessage')}")
    return DeliveryResult("sent", provider_message_id=f"{request_id}:{first.get('recipientSeq')}")


def _split_id(provider_id: str) -> tuple[str, str]:
    request_id, _, seq = provider_id.rpartition(":")
    return request_id, seq


def _answer(response: httpx.Response) -> dict[str, Any] | None:
    """The JSON answer of a lookup when it succeeded, else None (try again later)."""
    if not response.is_success:
        return None
    try:
        payload: Any = response.json()
    except ValueError:
        return None
    if not isinstance(payload, dict) or not (payload.get("header") or {}).get("isSuccessful"):
        return None
    return payload


def _vendor_time(value: Any) -> Any:
    """A vendor timestamp ("2026-03-02 12:00:05[.0]", Korea time) as naive UTC, or None."""
    from datetime import datetime, timedelta

    if not value:
        return None
    try:
        local = datetime.fromisoformat(str(value).replace(" ", "T").split(".")[0])
    except ValueError:
        return None
    return local - timedelta(hours=9)  # NHN reports KST


class NhnSmsChannel:
    """SMS or LMS (chosen by length) to one phone number."""

    name = "sms"

    def __init__(self, *, app_key: str, secret_key: str, send_no: str,
                 base_url: str = "https://api-sms.cloud.toast.com", timeout: float = 10.0) -> None:
        self.base = f"{base_url.rstrip('/')}/sms/v3.0/appKeys/{app_key}/sender"
        self.secret_key, self.send_no = secret_key, send_no
        self.client = httpx.Client(timeout=timeout)

    def request(self, message: OutboundMessage) -> tuple[str, dict[str, Any]]:
        """The URL and body for a message (SMS when it fits in 90 bytes, else LMS)."""
        long = _euc_kr_len(message.text) > SMS_MAX_BYTES
        kind = ("ad-" if message.advertising else "") + ("mms" if long else "sms")
        body: dict[str, Any] = {
            "body": message.text,
            "sendNo": self.send_no,
            "recipientList": [{"recipientNo": message.to, "recipientGroupingKey": message.message_id}],
        }
        if message.campaign_id:
            body["senderGroupingKey"] = message.campaign_id
        if long:
            body["title"] = message.subject or message.text[:20]
        return f"{self.base}/{kind}", body

    def send(self, message: OutboundMessage) -> DeliveryResult:
        """Send and read the per-recipient result."""
        if not message.to:
            return DeliveryResult("refused", error="no phone number")
        if message.advertising and not message.text.startswith(AD_PREFIX):
            reason = f"advertising SMS must start with {AD_PREFIX!r} (정보통신망법 제50조)"
            return DeliveryResult("refused", error=reason)
        url, body = self.request(message)
        try:
            response = self.client.post(url, json=body, headers=_headers(self.secret_key))
        except httpx.HTTPError as exc:
            return DeliveryResult("failed", error=f"NHN SMS: {type(exc).__name__}: {exc}", retryable=True)
        return _interpret(response, ("body", "data", "sendResultList"), "NHN SMS")

    def delivery_status(self, provider_id: str, message: OutboundMessage) -> Receipt | None:
        """The handset result of a sent message (None while the carrier has not answered)."""
        request_id, seq = _split_id(provider_id)
        kind = "mms" if _euc_kr_len(message.text) > SMS_MAX_BYTES else "sms"
        try:
            response = self.client.get(f"{self.base}/{kind}/{request_id}", params={"mtPr": seq},
                                       headers=_headers(self.secret_key))
        except httpx.HTTPError:
            return None
        payload = _answer(response)
        data = ((payload or {}).get("body") or {}).get("data") if payload else None
        if isinstance(data, list):
            data = next((d for d in data if str(d.get("mtPr")) == seq), data[0] if data else None)
        if not isinstance(data, dict):
            return None
        status = str(data.get("msgStatus", ""))
        detail = f"{data.get('resultCode', '')} {data.get('resultCodeName', '')}".strip() or None
        if status == "3":
            return Receipt("delivered", at=_vendor_time(data.get("resultDate")), detail=detail)
        if status in ("0", "4", "5"):
            return Receipt("bounced", at=_vendor_time(data.get("resultDate")),
                           detail=f"NHN SMS msgStatus {status}: {detail or data.get('msgStatusName', '')}")
        return None


class NhnAlimtalkChannel:
    """KakaoTalk AlimTalk (informational template messages) to one phone number."""

    name = "kakao"

    def __init__(self, *, app_key: str, secret_key: str, sender_key: str,
                 base_url: str = "https://kakaotalk-bizmessage.api.nhncloudservice.com", timeout: float = 10.0) -> None:
        self.url = f"{base_url.rstrip('/')}/alimtalk/v2.3/appkeys/{app_key}/messages"
        self.secret_key, self.sender_key = secret_key, sender_key
        self.client = httpx.Client(timeout=timeout)

    def request(self, message: OutboundMessage) -> dict[str, Any]:
        """The request body: template code, its variables and the buttons (`data.buttons`, as the template has them)."""
        from segmint.channels.kakao_brand import _buttons

        parameters = {str(k): str(v) for k, v in (message.data.get("template_parameters") or {}).items()}
        recipient: dict[str, Any] = {"recipientNo": message.to, "templateParameter": parameters,
                                     "recipientGroupingKey": message.message_id}
        buttons = _buttons(message.data)
        if buttons:
            recipient["buttons"] = buttons
        body: dict[str, Any] = {"senderKey": self.sender_key, "recipientList": [recipient],
                                "templateCode": str(message.data.get("template_code") or "")}
        if message.campaign_id:
            body["senderGroupingKey"] = message.campaign_id
        return body

    def send(self, message: OutboundMessage) -> DeliveryResult:
        """Send one template message; advertising content is refused before any call."""
        if message.advertising:
            reason = ("AlimTalk is for informational messages only; this message is marked advertising "
                      "(use brand message/FriendTalk or SMS with (광고))")
            return DeliveryResult("refused", error=reason)
        if not message.to:
            return DeliveryResult("refused", error="no phone number")
        if not message.data.get("template_code"):
            return DeliveryResult("refused", error="AlimTalk needs data.template_code (a Kakao-approved template)")
        try:
            body = self.request(message)
        except ValueError as exc:
            return DeliveryResult("refused", error=str(exc))
        try:
            response = self.client.post(self.url, json=body, headers=_headers(self.secret_key, message.message_id))
        except httpx.HTTPError as exc:
            return DeliveryResult("failed", error=f"NHN AlimTalk: {type(exc).__name__}: {exc}", retryable=True)
        return _interpret(response, ("message", "sendResults"), "NHN AlimTalk")

    def delivery_status(self, provider_id: str, message: OutboundMessage) -> Receipt | None:
        """Whether KakaoTalk delivered the message (None while pending)."""
        request_id, seq = _split_id(provider_id)
        try:
            response = self.client.get(f"{self.url}/{request_id}/{seq}", headers=_headers(self.secret_key))
        except httpx.HTTPError:
            return None
        payload = _answer(response)
        data = (payload or {}).get("message") if payload else None
        if not isinstance(data, dict):
            return None
        status = str(data.get("messageStatus", ""))
        detail = f"{data.get('resultCode', '')} {data.get('resultCodeName', '')}".strip() or None
        at = _vendor_time(data.get("receiveDate"))
        if status == "COMPLETED" and str(data.get("resultCode", "1000")) == "1000":
            return Receipt("delivered", at=at, detail=detail)
        if status in ("COMPLETED", "FAILED"):
            return Receipt("bounced", at=at, detail=f"NHN AlimTalk {status}: {detail or ''}".strip())
        return None
