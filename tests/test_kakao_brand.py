"""KakaoTalk brand messages (NHN Cloud FriendTalk v2.3) against a local fake that follows the documented contract."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from segmint.channels.base import OutboundMessage
from segmint.channels.kakao_brand import KakaoBrandChannel, in_night_window
from vendor_fakes import Running, nhn_friendtalk_app

NOON_KST = datetime(2026, 11, 25, 3, 0, tzinfo=UTC)  # 12:00 in Seoul
SENDER = "s" * 40


@pytest.fixture(scope="module")
def fake():
    app, state = nhn_friendtalk_app("ft-app", "ft-secret", SENDER, friends={"01012345678", "01098765432"})
    with Running(app) as running:
        yield running, state


@pytest.fixture(autouse=True)
def _reset(fake):
    fake[1].update(night=False, fail_http=[])
    fake[1]["requests"].clear()


def _channel(running: Running, secret: str = "ft-secret", clock=lambda: NOON_KST) -> KakaoBrandChannel:
    return KakaoBrandChannel(app_key="ft-app", secret_key=secret, sender_key=SENDER, base_url=running.url,
                             clock=clock)


def _msg(mid: str = "cmp:once:u1", **kw) -> OutboundMessage:
    base = dict(message_id=mid, user_id="u1", to="01012345678", campaign_id="cmp",
                text="(광고) 데모몰\n장바구니에 담은 립스틱, 오늘만 20% 할인!\n무료수신거부 080-000-0000",
                advertising=True,
                data={"buttons": [{"name": "보러 가기", "linkMo": "https://shop.segmint.kr/cart"}],
                      "image_url": "https://img.segmint.kr/lip.jpg"})
    return OutboundMessage(**(base | kw))


def test_sends_an_ad_brand_message(fake) -> None:
    running, state = fake
    result = _channel(running).send(_msg())
    assert result.ok and result.provider_message_id == "ft-1:1"
    req = state["requests"][-1]
    assert req["idempotency_key"] == "cmp:once:u1"
    body = req["body"]
    assert body["senderKey"] == SENDER and body["senderGroupingKey"] == "cmp"
    (recipient,) = body["recipientList"]
    assert recipient["isAd"] is True and recipient["content"].startswith("(광고)")
    assert recipient["imageUrl"] == "https://img.segmint.kr/lip.jpg"
    assert recipient["buttons"] == [{"ordering": 1, "type": "WL", "name": "보러 가기",
                                     "linkMo": "https://shop.segmint.kr/cart"}]
    assert recipient["recipientGroupingKey"] == "cmp:once:u1"


def test_marks_every_message_as_advertising(fake) -> None:
    running, state = fake
    # not flagged advertising by the caller: the brand channel still sends it as an ad
    assert _channel(running).send(_msg("cmp:once:u2", advertising=False)).ok
    assert state["requests"][-1]["body"]["recipientList"][0]["isAd"] is True


def test_refuses_without_the_ad_label_before_calling(fake) -> None:
    running, state = fake
    result = _channel(running).send(_msg("cmp:once:u3", text="장바구니에 담은 립스틱, 오늘만 20% 할인!"))
    assert result.status == "refused" and "(광고)" in result.error
    assert state["requests"] == []


def test_vendor_refuses_unlabelled_ads_too(fake) -> None:
    """The fake follows the vendor: a request that skips the adapter's check is refused per recipient."""
    import httpx

    running, _ = fake
    body = {"senderKey": SENDER, "recipientList": [{"recipientNo": "01012345678", "content": "할인!", "isAd": True}]}
    answer = httpx.post(running.url + "/friendtalk/v2.3/appkeys/ft-app/messages", json=body,
                        headers={"X-Secret-Key": "ft-secret"}).json()
    assert answer["header"]["isSuccessful"] and answer["message"]["sendResults"][0]["resultCode"] != 0


def test_length_buttons_and_phone_checks(fake) -> None:
    running, state = fake
    channel = _channel(running)
    too_long = channel.send(_msg("cmp:once:u4", text="(광고) " + "가" * 500))  # with an image: 400 at most
    assert too_long.status == "refused" and "400" in too_long.error
    assert channel.send(_msg("cmp:once:u5", text="(광고) " + "가" * 500, data={})).ok  # without: 1,000
    six = {"buttons": [{"name": f"b{i}", "linkMo": "https://x"} for i in range(6)]}
    assert channel.send(_msg("cmp:once:u6", data=six)).status == "refused"
    assert channel.send(_msg("cmp:once:u7", data={"buttons": [{"linkMo": "https://x"}]})).status == "refused"
    assert channel.send(_msg("cmp:once:u8", to="")).status == "refused"
    assert len(state["requests"]) == 1


def test_night_window(fake) -> None:
    running, state = fake
    assert in_night_window(datetime(2026, 11, 25, 12, 0, tzinfo=UTC))  # 21:00 KST
    assert in_night_window(datetime(2026, 11, 25, 22, 59, tzinfo=UTC))  # 07:59 KST
    assert not in_night_window(datetime(2026, 11, 25, 23, 0, tzinfo=UTC))  # 08:00 KST
    assert not in_night_window(datetime(2026, 11, 25, 11, 49, tzinfo=UTC))  # 20:49 KST
    night = _channel(running, clock=lambda: datetime(2026, 11, 25, 13, 0, tzinfo=UTC)).send(_msg("cmp:once:u9"))
    assert night.status == "refused" and "20:50" in night.error and state["requests"] == []
    state["night"] = True  # our clock says day, the vendor says night: its answer is reported, not retried
    failed = _channel(running).send(_msg("cmp:once:u10"))
    assert failed.status == "failed" and not failed.retryable and "-1030" in failed.error


def test_vendor_errors(fake) -> None:
    running, state = fake
    assert _channel(running).send(_msg("cmp:once:u11")).ok
    repeat = _channel(running).send(_msg("cmp:once:u11"))  # same idempotency key within 10 minutes
    assert repeat.status == "failed" and "-9001" in repeat.error
    bad_secret = _channel(running, secret="nope").send(_msg("cmp:once:u12"))
    assert bad_secret.status == "failed" and "-1001" in bad_secret.error
    stranger = _channel(running).send(_msg("cmp:once:u13", to="01000000000"))
    assert stranger.status == "failed" and "not a friend" in stranger.error
    state["fail_http"] = [503]
    busy = _channel(running).send(_msg("cmp:once:u14"))
    assert busy.status == "failed" and busy.retryable


def test_registry_builds_it_from_config(workspace) -> None:
    from segmint.channels.registry import build_channels, get_channel
    from segmint.config import Config

    workspace.config = Config.model_validate({"channels": {"kakao_brand": {
        "app_key": "a", "secret_key": "s", "sender_key": SENDER}}})
    channel = get_channel(workspace, "kakao_brand")
    assert isinstance(channel, KakaoBrandChannel) and channel.url.endswith("/friendtalk/v2.3/appkeys/a/messages")
    assert "kakao_brand" in build_channels(workspace)
