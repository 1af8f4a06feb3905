"""Campaigns through a real `segmint serve`: REST API, the server's campaign runtime, tracking endpoints (open
pixel, click redirect, one-click unsubscribe) turning into events, and the CLI going through the server."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import tomllib
from typing import Any

import httpx

from segmint.campaigns.links import LinkMaker
from server_util import SRC

CAMPAIGN: dict[str, Any] = {
    "id": "spring", "name": "봄 세일", "target": ["buyers"], "channels": ["outbox"],
    "sender": {"name": "데모몰", "contact": "02-123-4567"},
    "policy": {"quiet_hours": {"enabled": False}, "korean_ad_law": True, "night_consent_trait": "always_night"},
    "variants": [{"key": "A", "messages": {"outbox": {
        "subject": "{{ user.name }}님 봄 세일", "text": "지금 보기 {{ links.shop }}",
        "links": {"shop": "https://shop.example/sale?x=1"}}}}],
}


def _admin(server: Any) -> dict[str, str]:
    return {"Authorization": f"Bearer {server.admin_token}"}


def _event_counts(server: Any) -> dict[str, int]:
    return {row["event"]: row["count"] for row in server.admin("/api/events/stats")}


def _wait(predicate: Any, timeout: float = 120.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError("timed out")


def _seed(server: Any) -> None:
    batch = [{"type": "identify", "userId": f"u{i}", "messageId": f"id-{i}",
              "traits": {"name": f"고객{i}", "always_night": True, "buyer": i < 4}} for i in range(6)]
    r = httpx.post(server.url + "/v1/batch", json={"batch": batch}, auth=(server.key, ""), timeout=10)
    assert r.status_code == 200, r.text
    server.wait_caught_up()
    r = httpx.put(server.url + "/api/segments/buyers", json={"definition": "trait buyer = true"},
                  headers=_admin(server), timeout=30)
    assert r.status_code in (200, 201), r.text


def test_api_send_tracking_and_unsubscribe(served: Any) -> None:
    server = served
    _seed(server)
    h = _admin(server)
    r = httpx.post(server.url + "/api/campaigns", json=CAMPAIGN, headers=h, timeout=30)
    assert r.status_code == 200 and r.json()["result"] == "created" and r.json()["status"] == "draft", r.text
    bad = httpx.post(server.url + "/api/campaigns", json={**CAMPAIGN, "channels": ["sms"]}, headers=h, timeout=30)
    assert bad.status_code == 400 and "no message for channel" in bad.json()["message"]
    broken = {**CAMPAIGN, "id": "broken", "variants": [{"key": "A", "messages": {"outbox": {"text": "{% if %}"}}}]}
    bad = httpx.post(server.url + "/api/campaigns", json=broken, headers=h, timeout=30)
    assert bad.status_code == 400 and bad.json()["where"].startswith("variants.A.messages.outbox.text:1:")
    assert httpx.get(server.url + "/api/campaigns", timeout=10).status_code == 401

    preview = httpx.get(server.url + "/api/campaigns/spring/preview", params={"user_id": "u1"}, headers=h,
                        timeout=30).json()
    v = preview["variants"][0]
    assert preview["in_target"] and v["outcome"] == "queued"
    assert v["message"]["subject"] == "(광고) 고객1님 봄 세일" and "/t/c/" in v["message"]["text"]
    assert not httpx.get(server.url + "/api/campaigns/spring/preview", params={"user_id": "u5"}, headers=h,
                         timeout=30).json()["in_target"]

    sent = httpx.post(server.url + "/api/campaigns/spring/send", headers=h, timeout=60).json()
    assert sent["plans"][0]["audience"] == 4
    ledger = _wait(lambda: (x := httpx.get(server.url + "/api/campaigns/spring/ledger", headers=h,
                                           timeout=10).json())["counts"] == {"sent": 4} and x)
    assert {row["user_id"] for row in ledger["rows"]} == {"u0", "u1", "u2", "u3"}
    _wait(lambda: _event_counts(server).get("message_sent") == 4)

    lines = [json.loads(x) for x in (server.workspace / "outbox" / "outbox.jsonl").read_text().splitlines()]
    mine = next(x for x in lines if x["user_id"] == "u1")
    click_path = "/t/c/" + mine["text"].split("/t/c/", 1)[1].split()[0]
    r = httpx.get(server.url + click_path, follow_redirects=False, timeout=10)
    assert r.status_code == 302 and r.headers["location"] == "https://shop.example/sale?x=1"
    tampered = click_path.replace("/t/c/", "/t/c/x")
    assert httpx.get(server.url + tampered, follow_redirects=False, timeout=10).status_code == 403

    config = tomllib.loads((server.workspace / "segmint.toml").read_text())
    links = LinkMaker(server.url, config["session_secret"])
    ref = {"m": "spring:once:u1", "u": "u1", "c": "spring", "v": "A", "ch": "outbox"}
    pixel = links.open_pixel(ref)
    for _ in range(2):
        r = httpx.get(pixel, timeout=10)
        assert r.status_code == 200 and r.headers["content-type"] == "image/gif"
    unsubscribe_path = "/t/u/" + mine["unsubscribe_url"].split("/t/u/", 1)[1]
    page = httpx.get(server.url + unsubscribe_path, timeout=10)
    assert page.status_code == 200 and "<form method=post>" in page.text
    r = httpx.post(server.url + unsubscribe_path, content=b"List-Unsubscribe=One-Click",
                   headers={"Content-Type": "application/x-www-form-urlencoded"}, timeout=10)
    assert r.status_code == 200
    counts = _wait(lambda: (c := _event_counts(server)).get("message_unsubscribed") and c)
    assert counts["message_opened"] == 1 and counts["message_clicked"] == 1  # repeats deduplicated
    after = httpx.get(server.url + "/api/campaigns/spring/preview", params={"user_id": "u1"}, headers=h,
                      timeout=30).json()["variants"][0]
    assert (after["outcome"], after["reason"]) == ("suppressed", "unsubscribed")

    r = httpx.post(server.url + "/api/campaigns/spring/pause", headers=h, timeout=10)
    assert r.json()["status"] == "paused"


def test_cli_goes_through_the_running_server(served: Any, tmp_path: Any) -> None:
    server = served
    _seed(server)
    env = {**os.environ, "PYTHONPATH": f"{SRC}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    import yaml

    path = tmp_path / "spring.yaml"
    path.write_text(yaml.safe_dump(CAMPAIGN, allow_unicode=True), encoding="utf-8")

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-c", "from segmint.cli import main; main()", "-w",
                               str(server.workspace), "campaign", *args], env=env, capture_output=True, text=True,
                              timeout=120)

    out = cli("create", str(path))
    assert out.returncode == 0 and "created: spring" in out.stdout, out.stderr
    out = cli("preview", "spring", "--user", "u2")
    assert out.returncode == 0 and "(광고) 고객2님 봄 세일" in out.stdout and "channel:outbox" in out.stdout
    out = cli("send", "spring", "--json")
    assert out.returncode == 0 and json.loads(out.stdout)["plans"][0]["audience"] == 4, out.stderr
    _wait(lambda: httpx.get(server.url + "/api/campaigns/spring/ledger", headers=_admin(server),
                            timeout=10).json()["counts"] == {"sent": 4})
    assert "sent=4" in cli("list").stdout
    out = cli("show", "nope")
    assert out.returncode == 2 and "error:" in out.stderr and "no campaign 'nope'" in out.stderr
    bad = tmp_path / "bad.yaml"
    bad.write_text("id: x\ntarget: [a]\nchannels: [outbox]\nvariants: []\n")
    out = cli("create", str(bad))
    assert out.returncode == 2 and str(bad) in out.stderr and "variants" in out.stderr
