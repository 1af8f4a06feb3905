"""Local fakes of outside vendors (FCM HTTP v1, NHN Cloud SMS v3.0, AlimTalk v2.3, FriendTalk v2.3), on uvicorn.

They follow the documented contracts: paths, auth headers, request bodies, success and error bodies.
"""

from __future__ import annotations

import socket
import threading
import time
from typing import Any

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse


class Running:
    """A FastAPI app served by uvicorn on 127.0.0.1 in a background thread."""

    def __init__(self, app: FastAPI) -> None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> Running:
        self.thread.start()
        deadline = time.monotonic() + 60
        while not self.server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("fake vendor did not start")
            time.sleep(0.01)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(10)


def _fcm_error(code: int, status: str, message: str, fcm_code: str | None = None) -> JSONResponse:
    details = [{"@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError", "errorCode": fcm_code}] if fcm_code \
        else []
    return JSONResponse({"error": {"code": code, "message": message, "status": status, "details": details}}, code)


def fcm_app(project: str, token: str) -> tuple[FastAPI, dict[str, Any]]:
    """FCM HTTP v1 fake, errors as documented (firebase.google.com/docs/reference/fcm/rest/v1/ErrorCode and
    /docs/cloud-messaging/error-codes):

    - a non-string data value: 400 INVALID_ARGUMENT with a google.rpc.BadRequest field violation;
    - a malformed token (contains a space, or in `state["malformed"]`): 400 INVALID_ARGUMENT, FcmError
      INVALID_ARGUMENT "The registration token is not a valid FCM registration token";
    - a token in `state["unregistered"]` (default: "unregistered-token"): 404 NOT_FOUND, FcmError UNREGISTERED;
    - a token in `state["other_sender"]`: 403 PERMISSION_DENIED, FcmError SENDER_ID_MISMATCH;
    - `state["fail_token"][token]` and then `state["fail"]`: lists of (http, status, fcm code, retry-after)
      answered first (QUOTA_EXCEEDED 429, UNAVAILABLE 503, INTERNAL 500 ...), for that token / for any."""
    app = FastAPI()
    state: dict[str, Any] = {"requests": [], "fail": [], "fail_token": {}, "unregistered": {"unregistered-token"},
                             "other_sender": set(), "malformed": set()}

    @app.post("/v1/projects/{project_id}/messages:send")
    async def send(project_id: str, request: Request) -> JSONResponse:
        if request.headers.get("authorization") != f"Bearer {token}":
            return _fcm_error(401, "UNAUTHENTICATED", "Request had invalid authentication credentials.",
                              "THIRD_PARTY_AUTH_ERROR")
        if project_id != project:
            return _fcm_error(403, "PERMISSION_DENIED", "SenderId mismatch", "SENDER_ID_MISMATCH")
        body = await request.json()
        state["requests"].append(body)
        message = body.get("message") or {}
        data = message.get("data") or {}
        bad = [k for k, v in data.items() if not isinstance(v, str)]
        if bad:
            field = f"message.data[{list(data).index(bad[0])}].value"
            text = f"Invalid value at '{field}' (TYPE_STRING), {data[bad[0]]}"
            return JSONResponse({"error": {"code": 400, "message": text, "status": "INVALID_ARGUMENT", "details": [
                {"@type": "type.googleapis.com/google.rpc.BadRequest",
                 "fieldViolations": [{"field": field, "description": text}]}]}}, 400)
        device = message.get("token")
        if not device or " " in device or device in state["malformed"]:
            return _fcm_error(400, "INVALID_ARGUMENT", "The registration token is not a valid FCM registration token",
                              "INVALID_ARGUMENT")
        if device in state["unregistered"]:
            return _fcm_error(404, "NOT_FOUND", "Requested entity was not found.", "UNREGISTERED")
        if device in state["other_sender"]:
            return _fcm_error(403, "PERMISSION_DENIED", "SenderId mismatch", "SENDER_ID_MISMATCH")
        queue = state["fail_token"].get(device) or state["fail"]
        if queue:
            http, status, fcm_code, retry_after = queue.pop(0)
            response = _fcm_error(http, status, "try again", fcm_code)
            if retry_after is not None:
                response.headers["Retry-After"] = str(retry_after)
            return response
        return JSONResponse({"name": f"projects/{project}/messages/0:{len(state['requests'])}"})

    return app, state


async def _kakao_request(request: Any, key: str, app_key: str, secret: str, sender_key: str,
                         state: dict[str, Any]) -> tuple[JSONResponse | None, dict[str, Any]]:
    """NHN Kakao (AlimTalk / FriendTalk) send checks shared by both fakes: app key + secret, idempotency key
    (a repeated key is refused), the request recorded, sender key. Returns (refusal or None, body)."""
    if key != app_key or request.headers.get("x-secret-key") != secret:
        return JSONResponse({"header": _nhn_header(False, -1001, "Invalid appkey or secret key")}), {}
    idem = request.headers.get("x-nc-api-idempotency-key")
    if idem:
        if idem in state["keys"]:
            return JSONResponse({"header": _nhn_header(False, -9001, "Duplicated idempotency key")}), {}
        state["keys"].add(idem)
    body = await request.json()
    state["requests"].append({"body": body, "idempotency_key": idem})
    if body.get("senderKey") != sender_key:
        return JSONResponse({"header": _nhn_header(False, -1006, "Invalid senderKey")}), body
    return None, body


def _nhn_header(ok: bool, code: int = 0, message: str = "SUCCESS") -> dict[str, Any]:
    return {"isSuccessful": ok, "resultCode": code, "resultMessage": message}


def _euc_kr_len(text: str) -> int:
    return len(text.encode("euc-kr", errors="replace"))


def nhn_sms_app(app_key: str, secret: str) -> tuple[FastAPI, dict[str, Any]]:
    """NHN Cloud SMS v3.0 fake (sms, mms, ad-sms, ad-mms senders, and the 단건 조회 delivery lookup:
    `state["results"][recipientNo]` = msgStatus to report, default "3" = success; "2" = still processing)."""
    app = FastAPI()
    state: dict[str, Any] = {"requests": [], "fail_http": [], "sent": {}, "results": {}, "lookups": 0}

    @app.get("/sms/v3.0/appKeys/{key}/sender/{kind}/{request_id}")
    async def lookup(key: str, kind: str, request_id: str, request: Request) -> JSONResponse:
        state["lookups"] += 1
        if key != app_key or request.headers.get("x-secret-key") != secret:
            return JSONResponse({"header": _nhn_header(False, -1001, "Invalid appKey or secret key")})
        seq = request.query_params.get("mtPr", "1")
        sent = state["sent"].get((request_id, seq))
        if sent is None or sent[0] != kind:
            return JSONResponse({"header": _nhn_header(False, -4000, "No message found")})
        status = state["results"].get(sent[1], "3")
        code, name = {"3": ("1000", "성공"), "0": ("3015", "착신 가입자 없음")}.get(status, ("", "처리 중"))
        data = {"requestId": request_id, "mtPr": seq, "recipientNo": sent[1], "msgStatus": status,
                "msgStatusName": {"3": "성공", "0": "실패"}.get(status, "처리 중"), "resultCode": code,
                "resultCodeName": name, "resultDate": "2026-03-02 12:00:05.0" if code else None}
        return JSONResponse({"header": _nhn_header(True), "body": {"data": data}})

    @app.post("/sms/v3.0/appKeys/{key}/sender/{kind}")
    async def send(key: str, kind: str, request: Request) -> JSONResponse:
        if state["fail_http"]:
            return JSONResponse({"error": "unavailable"}, state["fail_http"].pop(0))
        if key != app_key:
            return JSONResponse({"header": _nhn_header(False, -1000, "Invalid appKey")})
        if request.headers.get("x-secret-key") != secret:
            return JSONResponse({"header": _nhn_header(False, -1001, "Invalid secret key")})
        if kind not in {"sms", "mms", "ad-sms", "ad-mms"}:
            return JSONResponse({"header": _nhn_header(False, -1, "Unknown sender type")}, 404)
        body = await request.json()
        state["requests"].append({"kind": kind, "body": body})
        text = body.get("body") or ""
        if not body.get("sendNo") or not body.get("recipientList"):
            return JSONResponse({"header": _nhn_header(False, -2000, "sendNo and recipientList are required")})
        if kind.endswith("sms") and _euc_kr_len(text) > 90:
            return JSONResponse({"header": _nhn_header(False, -2001, "SMS body over 90 bytes")})
        if kind.startswith("ad-") and not text.startswith("(광고)"):
            return JSONResponse({"header": _nhn_header(False, -2002, "Advertising body must start with (광고)")})
        results = []
        for seq, recipient in enumerate(body["recipientList"], start=1):
            ok = recipient.get("recipientNo", "").isdigit()
            results.append({"recipientNo": recipient.get("recipientNo"), "resultCode": 0 if ok else -2008,
                            "resultMessage": "SUCCESS" if ok else "Invalid recipient number", "recipientSeq": seq,
                            "recipientGroupingKey": recipient.get("recipientGroupingKey")})
        data = {"requestId": f"2026-req-{len(state['requests'])}", "statusCode": "2", "sendResultList": results}
        for r in results:
            state["sent"][(data["requestId"], str(r["recipientSeq"]))] = (kind.removeprefix("ad-"), r["recipientNo"])
        return JSONResponse({"header": _nhn_header(True), "body": {"data": data}})

    return app, state


def nhn_alimtalk_app(app_key: str, secret: str, sender_key: str,
                     templates: dict[str, list[str]]) -> tuple[FastAPI, dict[str, Any]]:
    """NHN Cloud AlimTalk v2.3 fake: approved templates with their #{parameters}; idempotency key enforced;
    메시지 단건 조회 (`state["results"][recipientNo]` = messageStatus to report, default COMPLETED)."""
    app = FastAPI()
    state: dict[str, Any] = {"requests": [], "keys": set(), "sent": {}, "results": {}}

    @app.get("/alimtalk/v2.3/appkeys/{key}/messages/{request_id}/{seq}")
    async def lookup(key: str, request_id: str, seq: str, request: Request) -> JSONResponse:
        if key != app_key or request.headers.get("x-secret-key") != secret:
            return JSONResponse({"header": _nhn_header(False, -1001, "Invalid appkey or secret key")})
        no = state["sent"].get((request_id, seq))
        if no is None:
            return JSONResponse({"header": _nhn_header(False, -1003, "Message not found")})
        status = state["results"].get(no, "COMPLETED")
        code = {"COMPLETED": "1000", "FAILED": "3018"}.get(status, "")
        return JSONResponse({"header": _nhn_header(True, 0, "success"), "message": {
            "requestId": request_id, "recipientSeq": int(seq), "recipientNo": no, "messageStatus": status,
            "resultCode": code, "resultCodeName": {"1000": "성공", "3018": "메시지를 전송할 수 없음"}.get(code, ""),
            "receiveDate": "2026-03-02 12:00:07" if code else None}})

    @app.post("/alimtalk/v2.3/appkeys/{key}/messages")
    async def send(key: str, request: Request) -> JSONResponse:
        refused, body = await _kakao_request(request, key, app_key, secret, sender_key, state)
        if refused is not None:
            return refused
        params = templates.get(body.get("templateCode", ""))
        if params is None:
            return JSONResponse({"header": _nhn_header(False, -1011, "Template not found")})
        results = []
        for seq, recipient in enumerate(body.get("recipientList") or [], start=1):
            missing = [p for p in params if p not in (recipient.get("templateParameter") or {})]
            results.append({"recipientSeq": seq, "recipientNo": recipient.get("recipientNo"),
                            "resultCode": -1025 if missing else 0,
                            "resultMessage": f"missing template parameter {missing}" if missing else "",
                            "recipientGroupingKey": recipient.get("recipientGroupingKey")})
        message = {"requestId": f"alim-{len(state['requests'])}", "senderGroupingKey": body.get("senderGroupingKey"),
                   "sendResults": results}
        for r in results:
            state["sent"][(message["requestId"], str(r["recipientSeq"]))] = r["recipientNo"]
        return JSONResponse({"header": _nhn_header(True, 0, "success"), "message": message})

    return app, state


def nhn_friendtalk_app(app_key: str, secret: str, sender_key: str,
                       friends: set[str] | None = None) -> tuple[FastAPI, dict[str, Any]]:
    """NHN Cloud KakaoTalk Bizmessage FriendTalk v2.3 fake (brand messages): X-Secret-Key, idempotency key
    (a repeat within 10 minutes fails), senderKey, content length (1,000; 400 with an image), ad content must
    start with "(광고)", buttons at most 5, only channel friends receive it; `state["night"] = True` answers
    like the vendor does between 20:50 and 08:00 KST; `state["fail_http"]` = statuses answered first."""
    app = FastAPI()
    state: dict[str, Any] = {"requests": [], "keys": set(), "night": False, "fail_http": []}

    @app.post("/friendtalk/v2.3/appkeys/{key}/messages")
    async def send(key: str, request: Request) -> JSONResponse:
        if state["fail_http"]:
            return JSONResponse({"error": "unavailable"}, state["fail_http"].pop(0))
        refused, body = await _kakao_request(request, key, app_key, secret, sender_key, state)
        if refused is not None:
            return refused
        if state["night"]:
            return JSONResponse({"header": _nhn_header(False, -1030, "Night delivery restricted (20:50~08:00)")})
        recipients = body.get("recipientList") or []
        if not recipients or len(recipients) > 1000:
            return JSONResponse({"header": _nhn_header(False, -2000, "recipientList must hold 1 to 1000 entries")})
        results = []
        for seq, r in enumerate(recipients, start=1):
            content = r.get("content") or ""
            limit = 400 if r.get("imageUrl") else 1000
            if not content or len(content) > limit:
                code, msg = -1020, f"content must be 1 to {limit} characters"
            elif r.get("isAd", True) and not content.startswith("(광고)"):
                code, msg = -1021, "advertising content must start with (광고)"
            elif len(r.get("buttons") or []) > 5:
                code, msg = -1022, "at most 5 buttons"
            elif friends is not None and r.get("recipientNo") not in friends:
                code, msg = -3026, "recipient is not a friend of the channel"
            else:
                code, msg = 0, ""
            results.append({"recipientSeq": seq, "recipientNo": r.get("recipientNo"), "resultCode": code,
                            "resultMessage": msg, "recipientGroupingKey": r.get("recipientGroupingKey")})
        message = {"requestId": f"ft-{len(state['requests'])}", "senderGroupingKey": body.get("senderGroupingKey"),
                   "sendResults": results}
        return JSONResponse({"header": _nhn_header(True, 0, "success"), "message": message})

    return app, state
