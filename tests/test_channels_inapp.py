"""In-app channel: queued in the app DB, fetched and marked over the real HTTP API with the write key."""

from __future__ import annotations

import httpx

from segmint.appdb.base import create_all, make_engine
from segmint.channels.base import OutboundMessage
from segmint.channels.inapp import InAppChannel


def test_inapp_queue_fetch_read_dismiss(served) -> None:
    engine = make_engine("sqlite:///app.sqlite", served.workspace)
    create_all(engine)
    channel = InAppChannel(engine)
    first = OutboundMessage(message_id="c1:u1", user_id="u1", subject="쿠폰 도착", text="15,000원 쿠폰",
                            data={"deeplink": "shop://coupons"}, campaign_id="c1")
    assert channel.send(first).ok
    assert channel.send(first).ok  # same message id: stored once
    assert channel.send(OutboundMessage(message_id="c2:u1", user_id="u1", subject="두번째", text="b")).ok
    assert channel.send(OutboundMessage(message_id="c1:u2", user_id="u2", subject="남의 것", text="x")).ok
    engine.dispose()

    base, auth = served.url + "/v1/inapp", (served.key, "")
    r = httpx.get(f"{base}/u1", auth=auth)
    assert r.status_code == 200, r.text
    messages = r.json()["messages"]
    assert [m["message_id"] for m in messages] == ["c2:u1", "c1:u1"]
    assert messages[1]["title"] == "쿠폰 도착" and messages[1]["data"] == {"deeplink": "shop://coupons"}

    assert httpx.post(f"{base}/u1/c1:u1/read", auth=auth).json()["read_at"] is not None
    assert [m["message_id"] for m in httpx.get(f"{base}/u1", auth=auth).json()["messages"]] == ["c2:u1"]
    with_read = httpx.get(f"{base}/u1", params={"include_read": "true"}, auth=auth).json()["messages"]
    assert {m["message_id"] for m in with_read} == {"c1:u1", "c2:u1"}

    assert httpx.post(f"{base}/u1/c2:u1/dismissed", auth=auth).status_code == 200
    with_read = httpx.get(f"{base}/u1", params={"include_read": "true"}, auth=auth).json()["messages"]
    assert [m["message_id"] for m in with_read] == ["c1:u1"]

    assert httpx.post(f"{base}/u1/c1:u2/read", auth=auth).status_code == 404  # another user's message
    assert httpx.post(f"{base}/u1/c1:u1/liked", auth=auth).status_code == 400
    assert httpx.get(f"{base}/u1").status_code == 401
    assert httpx.get(f"{base}/u1", auth=("wk_wrong", "")).status_code == 401
