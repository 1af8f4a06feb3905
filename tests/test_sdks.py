"""The real SDK clients, unchanged but for the host, against a real `segmint serve` subprocess."""

from __future__ import annotations

import json
from typing import Any

from segmint.workspace import Workspace
from server_util import Server


def _stored(server: Server) -> tuple[list[dict[str, Any]], dict[str, dict[str, Any]]]:
    """Stop the server (it drains the journal) and read every event and profile from the store."""
    server.wait_caught_up()
    server.stop()
    store = Workspace(server.workspace).open_store_read_only()
    rows = store.query(
        "SELECT type, event, user_id, anonymous_id, properties, source FROM events ORDER BY ts, event"
    ).to_pylist()
    profiles = store.query("SELECT user_id, traits::VARCHAR AS traits FROM profiles").to_pylist()
    store.close()
    for r in rows:
        r["properties"] = json.loads(r["properties"])
    return rows, {p["user_id"]: json.loads(p["traits"]) for p in profiles}


def test_segment_analytics_python(served: Server) -> None:
    import segment.analytics as analytics

    errors: list[Exception] = []
    analytics.write_key = served.key  # type: ignore[attr-defined]
    analytics.host = served.url
    analytics.on_error = lambda exc, _batch: errors.append(exc)
    analytics.default_client = None
    try:
        analytics.identify("seg-u1", {"email": "a@example.kr", "plan": "gold"})
        for i in range(120):
            analytics.track("seg-u1", "Order Completed", {"order_id": f"o{i}", "revenue": 39000 + i})
        analytics.page("seg-u1", "Shop", "Home", {"path": "/"})
        analytics.track(anonymous_id="seg-anon", event="Product Viewed", properties={"sku": "K-1"})
        analytics.alias("seg-anon", "seg-u1")
        analytics.flush()
    finally:
        analytics.shutdown()
        analytics.default_client = None
    assert errors == []
    rows, traits = _stored(served)
    orders = [r for r in rows if r["event"] == "Order Completed"]
    assert len(orders) == 120 and {r["user_id"] for r in orders} == {"seg-u1"}
    assert sorted(r["properties"]["revenue"] for r in orders) == list(range(39000, 39120))
    assert [r["properties"]["name"] for r in rows if r["type"] == "page"] == ["Home"]
    viewed = [r for r in rows if r["event"] == "Product Viewed"]
    assert viewed[0]["anonymous_id"] == "seg-anon" and viewed[0]["user_id"] == "seg-u1"  # stitched by alias
    assert traits["seg-u1"]["plan"] == "gold"


def test_rudder_sdk_python(served: Server) -> None:
    import rudderstack.analytics as rudder_analytics

    errors: list[Exception] = []
    rudder_analytics.write_key = served.key  # type: ignore[attr-defined]
    rudder_analytics.dataPlaneUrl = served.url
    rudder_analytics.on_error = lambda exc, _batch: errors.append(exc)
    rudder_analytics.default_client = None
    try:
        rudder_analytics.identify("rs-u1", {"city": "Seoul"})
        for i in range(50):
            rudder_analytics.track("rs-u1", "Cart Added", {"sku": f"S{i}", "qty": 1})
        rudder_analytics.screen("rs-u1", "Checkout", properties={"step": 2})
        rudder_analytics.flush()
    finally:
        rudder_analytics.shutdown()
        rudder_analytics.default_client = None
    assert errors == []
    rows, traits = _stored(served)
    carts = [r for r in rows if r["event"] == "Cart Added"]
    assert len(carts) == 50 and {r["user_id"] for r in carts} == {"rs-u1"}
    assert {r["properties"]["sku"] for r in carts} == {f"S{i}" for i in range(50)}
    assert [r["properties"]["step"] for r in rows if r["type"] == "screen"] == [2]
    assert traits["rs-u1"]["city"] == "Seoul"


def test_posthog_python(served: Server) -> None:
    from posthog import Posthog

    errors: list[Exception] = []
    client = Posthog(
        served.key,
        host=served.url,
        gzip=True,
        on_error=lambda exc, _batch: errors.append(exc),
        enable_local_evaluation=False,
    )
    try:
        for i in range(30):
            props = {"amount": 1000 * i, "currency": "KRW"}
            client.capture("ph purchase", distinct_id="ph-u1", properties=props)
        client.set(distinct_id="ph-u1", properties={"tier": "vip"})
        client.capture("$pageview", distinct_id="ph-u1", properties={"$current_url": "https://shop.kr/"})
        client.alias(previous_id="ph-device-1", distinct_id="ph-u1")
        client.flush()
    finally:
        client.shutdown()
    assert errors == []
    rows, traits = _stored(served)
    purchases = [r for r in rows if r["event"] == "ph purchase"]
    assert len(purchases) == 30 and {r["user_id"] for r in purchases} == {"ph-u1"}
    assert sorted(r["properties"]["amount"] for r in purchases) == [1000 * i for i in range(30)]
    assert {r["source"] for r in rows} == {"posthog"}
    assert [r["properties"]["$current_url"] for r in rows if r["type"] == "page"] == ["https://shop.kr/"]
    assert [r["properties"]["previous_id"] for r in rows if r["type"] == "alias"] == ["ph-device-1"]
    assert traits["ph-u1"]["tier"] == "vip"
