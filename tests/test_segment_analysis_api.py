"""REST API (the real app through TestClient) and CLI (a real `segmint serve` subprocess, and no server) for
growth, backfill, overlap, profile, snapshots, uploads and comparison."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from saved_fixtures import NOW, shop_workspace
from segmint.api.app import create_app
from segmint.cli import app
from segmint.segments import saved
from segmint.workspace import Workspace
from server_util import Server

R = "/api/segment-analysis"
ACTIVE = "did app_opened in last 7 days"


def _shop(path: Path) -> Workspace:
    shop_workspace(path)
    ws = Workspace(path)
    saved.create_segment(ws.appdb, "활성", ACTIVE)
    saved.create_segment(ws.appdb, "여성", 'trait gender = "F"')
    ws.appdb.dispose()
    return ws


@pytest.fixture
def client(tmp_path: Path) -> TestClient:
    ws = _shop(tmp_path / "ws")
    with TestClient(create_app(ws)) as c:
        c.headers["Authorization"] = f"Bearer {ws.config.admin_token}"
        yield c


def test_needs_admin(client: TestClient) -> None:
    r = client.get(f"{R}/overlap", params={"segment": ["활성", "여성"]}, headers={"Authorization": "Bearer no"})
    assert r.status_code == 401


def test_backfill_then_growth(client: TestClient) -> None:
    r = client.post(f"{R}/backfill", json={"segment": "활성", "days": 10})
    assert r.status_code == 200, r.text
    b = r.json()
    assert b["evaluated"] == 10 and b["skipped"] is None and b["entries"] >= 2
    again = client.post(f"{R}/backfill", json={"segment": "활성", "days": 10}).json()
    assert again["evaluated"] == 0 and again["skipped"]
    g = client.get(f"{R}/growth", params={"segment": "활성", "days": 10}).json()
    assert len(g["days"]) == 10 and g["timezone"] == "Asia/Seoul"
    # u1 opened the app 2 days ago and u4 1 day ago: both members at yesterday's end, and today
    assert g["days"][-1]["members"] == 2 and g["backfilled_until"] is not None
    assert sum(d["entries"] for d in g["days"]) - sum(d["exits"] for d in g["days"]) == 2
    r = client.get(f"{R}/growth", params={"segment": "없음"})
    assert r.status_code == 404
    r = client.post(f"{R}/backfill", json={"segment": "활성", "days": 0})
    assert r.status_code == 400 and r.json()["where"] == "body.days"


def test_overlap_and_profile(client: TestClient) -> None:
    o = client.get(f"{R}/overlap", params={"segment": ["활성", "여성"]}).json()
    assert o["sizes"] == [2, 2] and o["shared"] == [[2, 1], [1, 2]] and o["percent"][0][1] == 50.0
    r = client.get(f"{R}/overlap", params={"segment": ["활성"]})
    assert r.status_code == 400 and r.json()["where"] == "segments"
    p = client.get(f"{R}/profile", params={"segment": "여성", "traits": "gender,vip"}).json()
    assert p["members"] == 2 and p["population"] == 4 and p["flagged"] == ["gender", "vip"]
    gender = next(t for t in p["traits"] if t["name"] == "gender")
    assert {v["value"]: v["lift"] for v in gender["values"]} == {"F": 2.0, "M": 0.0}
    r = client.get(f"{R}/profile", params={"segment": "여성", "traits": 'a"b'})
    assert r.status_code == 400


def test_snapshot_upload_compare(client: TestClient) -> None:
    as_of = (NOW - timedelta(days=1, hours=12)).isoformat()
    r = client.post(f"{R}/snapshots", json={"name": "봄 종료", "source": "활성", "as_of": as_of,
                                            "description": "churned at the end of the March promotion",
                                            "labels": ["march"]})
    assert r.status_code == 201, r.text
    s = r.json()
    assert (s["count"], s["origin"], s["source"], s["labels"]) == (1, "snapshot", "활성", ["march"])
    c = client.get(f"{R}/compare", params={"snapshot": "봄 종료"}).json()
    assert (c["both"], c["only_in_snapshot"], c["only_now"], c["only_now_sample"]) == (1, 0, 1, ["u4"])
    r = client.post(f"{R}/snapshots", json={"name": "텍스트", "definition": 'trait gendr = "F"'})
    assert r.status_code == 400 and "did you mean gender" in r.json()["message"]
    r = client.post(f"{R}/uploads", params={"name": "목록", "file_name": "l.csv", "label": ["a", "b"]},
                    content=b"user_id\nu1\nu2\nghost\n", headers={"Content-Type": "text/csv"})
    assert r.status_code == 201, r.text
    u = r.json()
    assert (u["count"], u["detail"]["unknown"], u["detail"]["unknown_sample"], u["labels"]) == \
        (3, 1, ["ghost"], ["a", "b"])
    r = client.post(f"{R}/uploads", params={"name": "나쁨", "file_name": "bad.csv"},
                    content=b"name,user_id\nx,\ny,u1,z\n")
    assert r.status_code == 400 and r.json()["where"] == "bad.csv"
    assert "line 2: empty user id" in r.json()["message"] and "line 3: 3 columns" in r.json()["message"]
    r = client.post(f"{R}/uploads", params={"name": "빈"}, content=b"")
    assert r.status_code == 400 and r.json()["where"] == "body"
    c = client.get(f"{R}/compare", params={"snapshot": "목록", "against": "여성"}).json()
    assert (c["both"], c["only_in_snapshot"], c["only_now"]) == (1, 2, 1)
    listed = client.get(f"{R}/static").json()
    assert [(x["name"], x["origin"]) for x in listed] == [("목록", "upload"), ("봄 종료", "snapshot")]
    # the saved-segment API sees them as static segments with frozen members
    assert client.get("/api/segments/목록/members").json()["members"] == ["ghost", "u1", "u2"]


def test_openapi_lists_the_routes(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    for p in ("growth", "backfill", "overlap", "profile", "snapshots", "uploads", "compare", "static"):
        assert f"{R}/{p}" in paths


# ---------------------------------------------------------------- CLI


def _run(*args: str) -> tuple[int, str]:
    res = CliRunner().invoke(app, list(args))
    return res.exit_code, res.output


def _cli_story(ws: Path, tmp: Path) -> None:
    w = ["-w", str(ws)]
    code, out = _run(*w, "segment", "growth", "활성", "--days", "5", "--backfill", "--json")
    assert code == 0, out
    g = json.loads(out)
    assert len(g["days"]) == 5 and g["days"][-1]["members"] == 2
    code, out = _run(*w, "segment", "backfill", "활성", "--days", "5")
    assert code == 0 and "nothing to do" in out, out
    code, out = _run(*w, "segment", "overlap", "활성", "여성")
    assert code == 0 and "1 (50.0%)" in out, out
    code, out = _run(*w, "segment", "profile", "여성", "--traits", "gender")
    assert code == 0 and "diverges" in out and "members diverge on: gender" in out, out
    code, out = _run(*w, "segment", "snapshot", "지금", "--from", "활성", "-d", "now", "-l", "x")
    assert code == 0 and "지금: static, 2 members (snapshot of 활성 v1" in out, out
    csv_file = tmp / "list.csv"
    csv_file.write_text("user_id\nu3\nnobody\n", encoding="utf-8")
    code, out = _run(*w, "segment", "upload", str(csv_file), "--name", "올린", "--unknown", "drop")
    assert code == 0 and "올린: static, 1 members (upload)" in out and "unknown ids: nobody" in out, out
    bad = tmp / "bad.csv"
    bad.write_text("a,b\n1,2\n", encoding="utf-8")
    code, out = _run(*w, "segment", "upload", str(bad), "--name", "x")
    assert code == 2 and "bad.csv: line 1: 2 columns but no header" in out, out
    code, out = _run(*w, "segment", "compare", "올린", "--with", "여성", "--json")
    assert code == 0 and json.loads(out)["both"] == 1, out
    code, out = _run(*w, "segment", "compare", "지금")
    assert code == 0 and "both 2, only in snapshot 0, only now 0" in out, out
    code, out = _run(*w, "segment", "static")
    assert code == 0 and "올린" in out and "지금" in out, out
    code, out = _run(*w, "segment", "overlap", "활성", "--as-of", "yesterday")
    assert code == 2 and "--as-of: not an ISO 8601 time" in out, out


def test_cli_without_a_server(tmp_path: Path) -> None:
    ws = _shop(tmp_path / "ws")
    ws.close()
    _cli_story(ws.path, tmp_path)


def test_cli_through_the_running_server(tmp_path: Path) -> None:
    ws = _shop(tmp_path / "ws")
    ws.close()
    server = Server(ws.path, ws.config.admin_token).start()
    try:
        _cli_story(ws.path, tmp_path)
        # the server did the work: its store holds the backfill transitions
        assert server.admin(f"{R}/growth", segment="활성", days=5)["backfilled_until"] is not None
    finally:
        server.stop()


def test_a_segment_created_through_the_api_gets_its_history(client: TestClient) -> None:
    # the builder saves through POST/PUT /api/segments; the 90-day history is filled right after the response
    r = client.post("/api/segments", json={"name": "새 활성", "definition": ACTIVE})
    assert r.status_code == 201
    r = client.put("/api/segments/새 여성", json={"definition": 'trait gender = "F"'})
    assert r.status_code == 200 and r.json()["status"] == "created"
    for name in ("새 활성", "새 여성"):
        g = client.get(f"{R}/growth", params={"segment": name, "days": 90}).json()
        assert g["backfilled_until"] is not None and max(d["members"] for d in g["days"][:-1]) > 0, g
    untouched = client.get(f"{R}/growth", params={"segment": "활성", "days": 90}).json()
    assert untouched["backfilled_until"] is None  # segments saved outside the API are not backfilled by it
