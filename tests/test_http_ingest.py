"""HTTP ingestion against a real `segmint serve` subprocess: auth, gzip, limits, bad input, CORS, PostHog."""

from __future__ import annotations

import gzip
import time
import uuid
from pathlib import Path

import httpx
import orjson
import pytest

from segmint.appdb.base import make_engine
from segmint.appdb.keys import create_key, revoke_key
from segmint.workspace import Workspace
from server_util import Server


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory):
    """One server for the module; tests use their own event names so they do not interfere."""
    ws = Workspace.init(tmp_path_factory.mktemp("http") / "ws")
    key = create_key(ws.appdb, label="test").secret
    token = ws.config.admin_token
    ws.appdb.dispose()
    ws.close()
    srv = Server(ws.path, token).start()
    srv.key = key  # type: ignore[attr-defined]
    yield srv
    srv.stop()


def _counts(server: Server) -> dict[str, int]:
    server.wait_caught_up()
    return {row["event"]: row["count"] for row in server.admin("/api/events/stats")}


def _rejected(server: Server) -> list[dict]:
    server.wait_caught_up()
    return server.admin("/api/events/rejected", limit=1000)


def _post(
    server: Server, route: str, body: object, *, key: str | None = None, **kw: object
) -> httpx.Response:
    content = body if isinstance(body, bytes) else orjson.dumps(body)
    auth = (key or server.key, "") if key != "" else None  # type: ignore[attr-defined]
    return httpx.post(server.url + route, content=content, auth=auth, timeout=30, **kw)


def test_track_with_basic_auth_is_stored(server: Server) -> None:
    body = {"userId": "u1", "event": "basic_auth_event", "properties": {"price": 12000}}
    r = _post(server, "/v1/track", body)
    assert r.status_code == 200 and r.json() == {"success": True}
    assert _counts(server)["basic_auth_event"] == 1


def test_every_single_message_route(server: Server) -> None:
    bodies = {
        "identify": {"userId": "u-routes", "traits": {"plan": "gold"}},
        "page": {"userId": "u-routes", "name": "Home"},
        "screen": {"userId": "u-routes", "name": "Cart"},
        "group": {"userId": "u-routes", "groupId": "g1"},
        "alias": {"userId": "u-routes", "previousId": "anon-routes"},
        "track": {"userId": "u-routes", "event": "routes_track"},
    }
    for route, body in bodies.items():
        r = _post(server, f"/v1/{route}", body)
        assert r.status_code == 200, (route, r.text)
    counts = _counts(server)
    assert counts["routes_track"] == 1
    for name in ("$identify", "$page", "$screen", "$group", "$alias"):
        assert counts[name] >= 1


def test_write_key_in_body_and_text_plain(server: Server) -> None:
    key = server.key  # type: ignore[attr-defined]
    body = {"writeKey": key, "anonymousId": "anon-tp", "event": "text_plain_event"}
    r = httpx.post(server.url + "/v1/t", content=orjson.dumps(body), headers={"content-type": "text/plain"})
    assert r.status_code == 200, r.text
    batch = {"batch": [{**body, "type": "track"}], "writeKey": key}
    r = httpx.post(server.url + "/v1/b", content=orjson.dumps(batch), headers={"content-type": "text/plain"})
    assert r.status_code == 200, r.text
    assert _counts(server)["text_plain_event"] == 2


def test_gzip_detected_whatever_the_content_type(server: Server) -> None:
    batch = {"batch": [{"type": "track", "userId": "u1", "event": "gzip_event"} for _ in range(3)]}
    packed = gzip.compress(orjson.dumps(batch))
    # RudderStack node SDK: gzip body labelled form-urlencoded, no Content-Encoding
    r = _post(server, "/v1/batch", packed, headers={"content-type": "application/x-www-form-urlencoded"})
    assert r.status_code == 200, r.text
    headers = {"content-encoding": "gzip", "content-type": "application/json"}
    r = _post(server, "/v1/batch", packed, headers=headers)
    assert r.status_code == 200, r.text
    assert _counts(server)["gzip_event"] == 6


def test_unknown_missing_and_revoked_keys(server: Server) -> None:
    body = {"userId": "u1", "event": "never_stored"}
    r = _post(server, "/v1/track", body, key="wk_not_a_key")
    assert r.status_code == 401 and r.json()["error"] == "unauthorized"
    r = httpx.post(server.url + "/v1/track", content=orjson.dumps(body))
    assert r.status_code == 401 and "write key" in r.json()["message"]
    engine = make_engine("sqlite:///app.sqlite", server.workspace)
    fresh = create_key(engine, label="to revoke")
    first = _post(server, "/v1/track", {"userId": "u1", "event": "before_revoke"}, key=fresh.secret)
    assert first.status_code == 200
    revoke_key(engine, str(fresh.id))
    revoked_at = time.monotonic()
    probe = {"userId": "u1", "event": "while_revoking"}
    while _post(server, "/v1/track", probe, key=fresh.secret).status_code != 401:
        assert time.monotonic() - revoked_at < 5, "revoked key still accepted after 5 s"
        time.sleep(0.1)
    engine.dispose()
    assert "never_stored" not in _counts(server)


def test_malformed_json_is_400_with_where_and_recorded(server: Server) -> None:
    r = _post(server, "/v1/batch", b'{"batch": [{"type": "track", "userId": "u1", "event": "half_json"}')
    assert r.status_code == 400
    err = r.json()
    assert err["where"] == "body" and "malformed JSON" in err["message"] and "column" in err["message"]
    rejected = _rejected(server)
    assert any(x["reason"].startswith("malformed JSON") and "half_json" in x["payload"] for x in rejected)


def test_size_limits_are_413_and_recorded(server: Server) -> None:
    big = {"userId": "u1", "event": "too_big_single", "properties": {"blob": "x" * 40_000}}
    r = _post(server, "/v1/track", big)
    assert r.status_code == 413 and r.json()["error"] == "payload_too_large"
    batch = {
        "batch": [
            {"type": "track", "userId": "u1", "event": "too_big_batch", "properties": {"blob": "y" * 20_000}}
            for _ in range(30)
        ]
    }
    r = _post(server, "/v1/batch", batch)
    assert r.status_code == 413
    # a gzip body that inflates past the batch limit is refused too
    r = _post(server, "/v1/batch", gzip.compress(orjson.dumps(batch)))
    assert r.status_code == 413
    reasons = [x["reason"] for x in _rejected(server)]
    assert sum("limit" in reason for reason in reasons) >= 3
    counts = _counts(server)
    assert "too_big_single" not in counts and "too_big_batch" not in counts


def test_oversize_message_inside_a_batch_is_rejected_alone(server: Server) -> None:
    batch = {
        "batch": [
            {"type": "track", "userId": "u1", "event": "size_mix", "properties": {"n": 1}},
            {"type": "track", "userId": "u1", "event": "size_mix", "properties": {"b": "z" * 40_000}},
        ]
    }
    r = _post(server, "/v1/batch", batch)
    assert r.status_code == 400
    body = r.json()
    assert body["accepted"] == 1 and body["rejected"][0]["index"] == 1
    assert "32768-byte limit" in body["rejected"][0]["message"]
    assert _counts(server)["size_mix"] == 1


def test_batch_keeps_valid_messages_and_lists_invalid_ones(server: Server) -> None:
    batch = {
        "batch": [
            {"type": "track", "userId": "u1", "event": "mixed_ok"},
            {"type": "track", "event": "mixed_bad"},  # no user
            {"type": "track", "userId": True, "event": "mixed_bad"},  # wrong type
            {"type": "track", "userId": "u1", "event": "mixed_bad", "properties": [1, 2]},
            {"type": "teleport", "userId": "u1"},
            "not an object",
            {"type": "track", "anonymousId": "a1", "event": "mixed_ok"},
        ]
    }
    r = _post(server, "/v1/batch", batch)
    assert r.status_code == 400
    body = r.json()
    assert body["accepted"] == 2
    by_index = {x["index"]: x for x in body["rejected"]}
    assert sorted(by_index) == [1, 2, 3, 4, 5]
    assert by_index[1]["where"] == "batch[1]" and "userId or anonymousId" in by_index[1]["message"]
    assert by_index[2]["message"].startswith("userId:")
    assert by_index[3]["message"].startswith("properties:")
    assert by_index[4]["message"].startswith("type:")
    assert "JSON object" in by_index[5]["message"]
    counts = _counts(server)
    assert counts["mixed_ok"] == 2 and "mixed_bad" not in counts
    stored = [x for x in _rejected(server) if x["source"] == "http" and x["message_index"] in (1, 2, 3, 4, 5)]
    assert {x["field"] for x in stored} >= {"userId", "properties", "type"}


def test_many_invalid_messages_are_all_recorded_but_listed_up_to_100(server: Server) -> None:
    batch = {"batch": [{"type": "track", "userId": "u1", "event": "many_ok"}]}
    batch["batch"] += [{"type": "track", "userId": "u1", "event": "", "n": i} for i in range(150)]
    r = _post(server, "/v1/batch", batch)
    assert r.status_code == 400
    body = r.json()
    assert body["accepted"] == 1 and body["rejected_count"] == 150 and len(body["rejected"]) == 100
    assert body["rejected"][0]["index"] == 1
    before = len(_rejected(server))
    assert _post(server, "/v1/batch", batch).status_code == 400
    assert len(_rejected(server)) == before + 150


def test_single_invalid_message_and_bad_batch_shape(server: Server) -> None:
    r = _post(server, "/v1/track", {"userId": "u1"})
    assert r.status_code == 400 and r.json()["rejected"][0]["message"] == "event: required for track"
    r = _post(server, "/v1/batch", {"batch": {"type": "track"}})
    assert r.status_code == 400 and r.json()["where"] == "batch"
    r = _post(server, "/v1/track", b"[1, 2]")
    assert r.status_code == 400 and r.json()["where"] == "body"
    r = _post(server, "/v1/batch", b"\x1f\x8bnot really gzip")
    assert r.status_code == 400 and "gzip" in r.json()["message"]


def test_retried_message_ids_are_stored_once(server: Server) -> None:
    mid = str(uuid.uuid4())
    batch = {"batch": [{"type": "track", "userId": "u1", "event": "retried", "messageId": mid}]}
    for _ in range(3):
        assert _post(server, "/v1/batch", batch).status_code == 200
    single = {"userId": "u1", "event": "retried", "messageId": mid}
    assert _post(server, "/v1/track", single).status_code == 200
    assert _counts(server)["retried"] == 1


def test_cors_preflight_and_settings(server: Server) -> None:
    origin = "https://shop.example.kr"
    r = httpx.options(
        server.url + "/v1/t",
        headers={
            "origin": origin,
            "access-control-request-method": "POST",
            "access-control-request-headers": "content-type, authorization",
        },
    )
    assert r.status_code in (200, 204)
    assert r.headers["access-control-allow-origin"] == origin
    assert "authorization" in r.headers["access-control-allow-headers"].lower()
    r = _post(server, "/v1/p", {"anonymousId": "a-cors", "name": "Home"}, headers={"origin": origin})
    assert r.status_code == 200 and r.headers["access-control-allow-origin"] == origin
    key = server.key  # type: ignore[attr-defined]
    r = httpx.get(f"{server.url}/v1/projects/{key}/settings", headers={"origin": origin})
    assert r.status_code == 200 and r.headers["access-control-allow-origin"] == origin
    seg = r.json()["integrations"]["Segment.io"]
    assert seg["apiKey"] == key and seg["protocol"] == "http"
    assert seg["apiHost"] == f"127.0.0.1:{server.port}/v1"
    assert r.json()["plan"]["track"]["__default"]["enabled"] is True
    assert httpx.get(f"{server.url}/v1/projects/wk_nope/settings").status_code == 404


def test_posthog_capture_mapping(server: Server) -> None:
    key = server.key  # type: ignore[attr-defined]
    anon = "device-" + uuid.uuid4().hex
    events = [
        {
            "event": "ph_viewed",
            "distinct_id": anon,
            "uuid": str(uuid.uuid4()),
            "properties": {"$device_id": anon, "sku": "A1"},
            "timestamp": "2026-11-01T00:00:00+00:00",
        },
        {
            "event": "$identify",
            "distinct_id": "ph-user",
            "uuid": str(uuid.uuid4()),
            "properties": {"$anon_distinct_id": anon, "$set": {"tier": "vip"}},
        },
        {"event": "$pageview", "distinct_id": "ph-user", "properties": {"$current_url": "https://x/"}},
        {"event": "ph_bought", "distinct_id": "ph-user", "properties": {"amount": 3}, "offset": 1500},
    ]
    packed = gzip.compress(orjson.dumps({"api_key": key, "batch": events, "sent_at": None}))
    r = httpx.post(server.url + "/batch/", content=packed, headers={"content-type": "application/json"})
    assert r.status_code == 200, r.text
    # single event on /capture/ and /i/v0/e/ with the key as `token`
    r = httpx.post(
        server.url + "/i/v0/e/",
        content=orjson.dumps(
            {"token": key, "event": "ph_single", "distinct_id": "ph-user", "properties": {}}
        ),
    )
    assert r.status_code == 200, r.text
    r = httpx.post(
        server.url + "/capture/",
        content=orjson.dumps(
            {"api_key": key, "event": "ph_single", "properties": {"distinct_id": "ph-user"}}
        ),
    )
    assert r.status_code == 200, r.text
    r = httpx.post(server.url + "/batch/", content=orjson.dumps({"api_key": "nope", "batch": events}))
    assert r.status_code == 401
    r = httpx.post(
        server.url + "/batch/",
        content=orjson.dumps({"api_key": key, "batch": [{"event": "ph_no_id", "properties": {}}]}),
    )
    assert r.status_code == 400 and r.json()["rejected"][0]["message"].startswith("distinct_id")
    counts = _counts(server)
    assert counts["ph_viewed"] == 1 and counts["ph_bought"] == 1 and counts["ph_single"] == 2
    assert "ph_no_id" not in counts
    stats = {row["event"]: row for row in server.admin("/api/events/stats")}
    # the anonymous view was re-attributed to ph-user by the $identify link
    assert stats["ph_viewed"]["users"] == 1


def test_server_keeps_serving_after_bad_input(server: Server, tmp_path: Path) -> None:
    bad = [b"", b"{", b"null", b"\x1f\x8b\x08", b'{"batch": "x"}', b"\xff\xfe\x00garbage"]
    for body in bad:
        r = _post(server, "/v1/batch", body)
        assert 400 <= r.status_code < 500, (body, r.status_code, r.text)
    assert httpx.get(server.url + "/health").json()["status"] == "ok"
    assert _post(server, "/v1/track", {"userId": "u1", "event": "after_bad"}).status_code == 200
    assert _counts(server)["after_bad"] == 1


def test_posthog_js_form_body_and_cors(server: Server) -> None:
    import base64

    key = server.key  # type: ignore[attr-defined]
    props = {"token": key, "$device_id": "d1"}
    payload = [{"event": "phjs_click", "distinct_id": "phjs-u", "properties": props}]
    form = "data=" + base64.b64encode(orjson.dumps(payload)).decode()
    origin = "https://shop.example.kr"
    r = httpx.post(
        server.url + "/e/?compression=base64",
        content=form,
        headers={"content-type": "application/x-www-form-urlencoded", "origin": origin},
    )
    assert r.status_code == 200, r.text
    assert r.headers["access-control-allow-origin"] == origin
    r = httpx.options(server.url + "/e/", headers={"origin": origin, "access-control-request-method": "POST"})
    assert r.status_code in (200, 204) and r.headers["access-control-allow-origin"] == origin
    assert _counts(server)["phjs_click"] == 1


def test_cli_lists_rejected_messages_from_the_running_server(server: Server) -> None:
    import json
    import os
    import subprocess
    import sys

    from server_util import SRC

    _post(
        server,
        "/v1/batch",
        {
            "batch": [
                {
                    "type": "track",
                    "userId": "u1",
                    "event": "cli_bad",
                    "properties": "not an object",
                }
            ]
        },
    )
    server.wait_caught_up()
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    out = subprocess.run(
        [
            sys.executable,
            "-c",
            "from segmint.cli import main; main()",
            "-w",
            str(server.workspace),
            "events",
            "rejected",
            "--json",
            "--limit",
            "1000",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=True,
    ).stdout
    rows = json.loads(out)
    assert any(r["field"] == "properties" and "cli_bad" in r["payload"] for r in rows)
