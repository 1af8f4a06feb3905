"""FCM, NHN Cloud SMS and AlimTalk adapters against local fakes that follow the vendors' documented contracts."""

from __future__ import annotations

import pytest

from segmint.channels.base import OutboundMessage
from segmint.channels.fcm import FcmChannel
from segmint.channels.nhn import NhnAlimtalkChannel, NhnSmsChannel
from vendor_fakes import Running, fcm_app, nhn_alimtalk_app, nhn_sms_app


@pytest.fixture(scope="module")
def fcm():
    app, state = fcm_app("demo-shop", "good-token")
    with Running(app) as running:
        yield running, state


def _push(**kw) -> OutboundMessage:
    base = dict(message_id="c1:u1", user_id="u1", to="device-token-1", subject="장바구니", text="립스틱을 잊지 마세요",
                data={"price": 15000, "deeplink": "shop://cart"})
    return OutboundMessage(**(base | kw))


def _fcm_channel(running: Running, sleeps: list[float], token: str = "good-token", project: str = "demo-shop"):
    return FcmChannel(project_id=project, access_token=token, base_url=running.url, sleep=sleeps.append)


def test_fcm_sends_notification_with_string_data(fcm) -> None:
    running, state = fcm
    state["requests"].clear()
    result = _fcm_channel(running, []).send(_push())
    assert result.ok and result.provider_message_id.startswith("projects/demo-shop/messages/")
    message = state["requests"][-1]["message"]
    assert message["token"] == "device-token-1"
    assert message["notification"] == {"title": "장바구니", "body": "립스틱을 잊지 마세요"}
    assert message["data"] == {"price": "15000", "deeplink": "shop://cart", "segmint_message_id": "c1:u1"}


def test_fcm_unregistered_token_not_retried(fcm) -> None:
    running, _ = fcm
    sleeps: list[float] = []
    result = _fcm_channel(running, sleeps).send(_push(to="unregistered-token"))
    assert result.status == "bounced" and not result.retryable and result.error.startswith("UNREGISTERED")
    assert sleeps == []


def test_fcm_auth_and_project_errors(fcm) -> None:
    running, _ = fcm
    bad_auth = _fcm_channel(running, [], token="expired").send(_push())
    assert bad_auth.status == "failed" and "THIRD_PARTY_AUTH_ERROR" in bad_auth.error and "401" in bad_auth.error
    bad_project = _fcm_channel(running, [], project="other").send(_push())
    assert "SENDER_ID_MISMATCH" in bad_project.error and not bad_project.retryable


def test_fcm_retries_quota_and_unavailable(fcm) -> None:
    running, state = fcm
    state["fail"] = [(429, "RESOURCE_EXHAUSTED", "QUOTA_EXCEEDED", 7), (503, "UNAVAILABLE", "UNAVAILABLE", None)]
    sleeps: list[float] = []
    assert _fcm_channel(running, sleeps).send(_push()).ok
    assert len(sleeps) == 2 and sleeps[0] == 7.0
    state["fail"] = [(500, "INTERNAL", "INTERNAL", None)] * 3
    failed = _fcm_channel(running, []).send(_push())
    assert failed.status == "failed" and failed.retryable and "INTERNAL" in failed.error


def test_fcm_refuses_without_token(fcm) -> None:
    running, _ = fcm
    assert _fcm_channel(running, []).send(_push(to="")).status == "refused"


@pytest.fixture(scope="module")
def sms():
    app, state = nhn_sms_app("sms-app", "sms-secret")
    with Running(app) as running:
        yield running, state


def _sms_channel(running: Running, secret: str = "sms-secret") -> NhnSmsChannel:
    return NhnSmsChannel(app_key="sms-app", secret_key=secret, send_no="15446859", base_url=running.url)


def test_nhn_short_text_goes_as_sms(sms) -> None:
    running, state = sms
    result = _sms_channel(running).send(_push(to="01012345678", text="쿠폰이 도착했어요"))
    assert result.ok and result.provider_message_id.endswith(":1")
    request = state["requests"][-1]
    assert request["kind"] == "sms"
    assert request["body"]["sendNo"] == "15446859"
    assert request["body"]["recipientList"] == [{"recipientNo": "01012345678", "recipientGroupingKey": "c1:u1"}]
    assert "title" not in request["body"]


def test_nhn_long_text_goes_as_lms_with_title(sms) -> None:
    running, state = sms
    text = "장바구니에 담은 상품이 곧 품절될 수 있어요. " * 4
    assert _sms_channel(running).send(_push(to="01012345678", text=text, subject="품절 임박")).ok
    request = state["requests"][-1]
    assert request["kind"] == "mms" and request["body"]["title"] == "품절 임박"


def test_nhn_advertising_needs_prefix(sms) -> None:
    running, state = sms
    count = len(state["requests"])
    refused = _sms_channel(running).send(_push(to="01012345678", text="세일!", advertising=True))
    assert refused.status == "refused" and "(광고)" in refused.error
    assert len(state["requests"]) == count  # nothing sent
    text = "(광고) 세일! 무료수신거부 0800000000"
    ad = _sms_channel(running).send(_push(to="01012345678", text=text, advertising=True))
    assert ad.ok and state["requests"][-1]["kind"] == "ad-sms"


def test_nhn_sms_errors(sms) -> None:
    running, state = sms
    wrong = _sms_channel(running, secret="nope").send(_push(to="01012345678", text="x"))
    assert wrong.status == "failed" and not wrong.retryable and "Invalid secret key" in wrong.error
    bad_number = _sms_channel(running).send(_push(to="010-abc", text="x"))
    assert bad_number.status == "failed" and "Invalid recipient number" in bad_number.error
    state["fail_http"] = [503]
    down = _sms_channel(running).send(_push(to="01012345678", text="x"))
    assert down.status == "failed" and down.retryable and "503" in down.error


@pytest.fixture(scope="module")
def alimtalk():
    app, state = nhn_alimtalk_app("kakao-app", "kakao-secret", "s" * 40, {"CART_REMIND": ["name", "product"]})
    with Running(app) as running:
        yield running, state


def _kakao_channel(running: Running) -> NhnAlimtalkChannel:
    return NhnAlimtalkChannel(app_key="kakao-app", secret_key="kakao-secret", sender_key="s" * 40,
                              base_url=running.url)


def _kakao(**kw) -> OutboundMessage:
    base = dict(message_id="c1:u1:kakao", user_id="u1", to="01012345678", text="",
                data={"template_code": "CART_REMIND", "template_parameters": {"name": "김민지", "product": "립스틱"}})
    return OutboundMessage(**(base | kw))


def test_alimtalk_sends_template_with_idempotency_key(alimtalk) -> None:
    running, state = alimtalk
    result = _kakao_channel(running).send(_kakao())
    assert result.ok, result.error
    request = state["requests"][-1]
    assert request["idempotency_key"] == "c1:u1:kakao"
    assert request["body"]["templateCode"] == "CART_REMIND"
    assert request["body"]["recipientList"][0]["templateParameter"] == {"name": "김민지", "product": "립스틱"}
    again = _kakao_channel(running).send(_kakao())
    assert again.status == "failed" and "Duplicated idempotency key" in again.error


def test_alimtalk_refuses_advertising_before_calling(alimtalk) -> None:
    running, state = alimtalk
    count = len(state["requests"])
    result = _kakao_channel(running).send(_kakao(message_id="ad1", advertising=True))
    assert result.status == "refused" and "informational messages only" in result.error
    assert len(state["requests"]) == count


def test_alimtalk_template_errors(alimtalk) -> None:
    running, _ = alimtalk
    unknown = _kakao_channel(running).send(_kakao(message_id="t1", data={"template_code": "NOPE"}))
    assert unknown.status == "failed" and "Template not found" in unknown.error
    missing = _kakao_channel(running).send(
        _kakao(message_id="t2", data={"template_code": "CART_REMIND", "template_parameters": {"name": "a"}}))
    assert missing.status == "failed" and "product" in missing.error
    no_code = _kakao_channel(running).send(_kakao(message_id="t3", data={}))
    assert no_code.status == "refused" and "template_code" in no_code.error


def test_every_configured_channel_is_built(workspace) -> None:
    from segmint.channels.registry import build_channels
    from segmint.config import Config

    workspace.config = Config.model_validate({"channels": {
        "email": {"host": "smtp.example", "sender": "crm@shop.example"},
        "webhook": {"url": "https://hooks.example/x", "secret": "s"},
        "push": {"project_id": "demo-shop", "access_token": "t"},
        "sms": {"app_key": "a", "secret_key": "s", "send_no": "15446859"},
        "kakao": {"app_key": "a", "secret_key": "s", "sender_key": "k"},
    }})
    channels = build_channels(workspace)
    assert sorted(channels) == ["email", "in_app", "kakao", "outbox", "push", "sms", "webhook"]
    assert all(channel.name for channel in channels.values())
