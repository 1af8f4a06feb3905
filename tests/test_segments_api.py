"""REST API for saved segments over the real app (FastAPI TestClient with its lifespan)."""

from __future__ import annotations

import csv
import io
import time
from pathlib import Path

import httpx
import pyarrow.parquet as pq
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from saved_fixtures import shop_workspace
from segmint.api.app import create_app
from segmint.cli import app
from segmint.workspace import Workspace
from server_util import Server


@pytest.fixture
def client(tmp_path: Path) -> TestClient:
    """An admin client of the app on the small shop workspace."""
    shop_workspace(tmp_path / "ws")
    ws = Workspace(tmp_path / "ws")
    with TestClient(create_app(ws)) as c:
        c.headers["Authorization"] = f"Bearer {ws.config.admin_token}"
        yield c


def _save(c: TestClient, name: str, definition: object, **kw: object) -> dict:
    r = c.post("/api/segments", json={"name": name, "definition": definition, **kw})
    assert r.status_code == 201, r.text
    return r.json()


def test_needs_admin_token(client: TestClient) -> None:
    r = client.get("/api/segments", headers={"Authorization": "Bearer wrong"})
    assert r.status_code == 401
    r = client.post("/api/segments/preview", json={"definition": "did app_opened"}, headers={"Authorization": ""})
    assert r.status_code == 401


def test_crud_and_versions(client: TestClient) -> None:
    out = _save(client, "휴면", "did not app_opened in last 30 days", labels=["retention"], description="30일")
    assert out["version"] == 1 and out["definition"]["kind"] == "performed"
    assert client.post("/api/segments", json={"name": "휴면", "definition": "did app_opened"}).status_code == 409
    assert [s["name"] for s in client.get("/api/segments").json()] == ["휴면"]
    assert client.get("/api/segments", params={"label": "other"}).json() == []
    r = client.put("/api/segments/휴면", json={"definition": "did not app_opened in last 14 days"})
    assert r.status_code == 200 and r.json()["status"] == "updated" and r.json()["version"] == 2
    assert r.json()["labels"] == ["retention"]  # absent fields keep their value
    r = client.put("/api/segments/휴면", json={"definition": "did not app_opened in last 14 days"})
    assert r.json()["status"] == "unchanged" and r.json()["version"] == 2
    vs = client.get("/api/segments/휴면/versions").json()
    assert [(v["version"], v["text"]) for v in vs] == [(1, "did not app_opened in last 30 days"),
                                                       (2, "did not app_opened in last 14 days")]
    assert client.get("/api/segments/휴면", params={"version": 1}).json()["text"].endswith("30 days")
    r = client.put("/api/segments/새 세그먼트", json={"definition": 'trait gender = "M"'})
    assert r.json()["status"] == "created"
    assert client.put("/api/segments/없음", json={"description": "x"}).status_code == 404
    assert client.delete("/api/segments/휴면").json() == {"deleted": "휴면"}
    r = client.get("/api/segments/휴면")
    assert r.status_code == 404 and r.json()["error"] == "not_found"


def test_parse_returns_tree_or_line_column_error(client: TestClient) -> None:
    r = client.post("/api/segments/parse", json={"text": 'did app_opened\nand trait gender = "F"'})
    assert r.status_code == 200
    assert r.json()["definition"]["kind"] == "and" and r.json()["text"] == 'did app_opened and trait gender = "F"'
    r = client.post("/api/segments/parse", json={"text": "did app_opened\nand did app_opend in last 7 days"})
    assert r.status_code == 400
    body = r.json()
    assert (body["line"], body["column"], body["suggestion"]) == (2, 9, "app_opened")
    assert "^^^" in body["display"] and body["where"] == "2:9"
    r = client.post("/api/segments/parse", json={"text": "did app_opened where"})
    assert r.status_code == 400 and r.json()["error"] == "segment_syntax" and r.json()["line"] == 1
    r = client.post("/api/segments/parse", json={"text": "did app_opend", "check": False})
    assert r.status_code == 200


def test_preview_counts_samples_and_shows_sql(client: TestClient) -> None:
    r = client.post("/api/segments/preview", json={"definition": "did app_opened in last 30 days", "sample": 1})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["count"] == 2 and body["sample"] == ["u1"] and "SELECT" in body["sql"]
    assert body["elapsed_ms"] >= 0 and body["text"] == "did app_opened in last 30 days"
    tree = {"kind": "trait", "name": "gender", "op": "eq", "value": {"kind": "value", "value": "F"}}
    assert client.post("/api/segments/preview", json={"definition": tree}).json()["sample"] == ["u1", "u3"]
    _save(client, "여성", tree)
    r = client.post("/api/segments/preview", json={"definition": 'in segment "여성" and trait age < 30'})
    assert r.json()["sample"] == ["u1"]


def test_members_ids_csv_parquet(client: TestClient) -> None:
    _save(client, "여성", 'trait gender = "F"')
    r = client.get("/api/segments/여성/members")
    assert r.json() == {"name": "여성", "count": 2, "members": ["u1", "u3"]}
    r = client.get("/api/segments/여성/members", params={"format": "csv", "traits": "name,age"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert [(x["user_id"], x["age"]) for x in rows] == [("u1", "25"), ("u3", "44")]
    assert rows[0]["name"] == 'Kim, "Ji"; 민'
    r = client.get("/api/segments/여성/members", params={"format": "parquet", "traits": "region"})
    table = pq.read_table(io.BytesIO(r.content))
    assert table.column("region").to_pylist() == ["서울", "경기"]
    assert client.get("/api/segments/여성/members", params={"format": "xml"}).status_code == 400
    r = client.get("/api/segments/여성/members", params={"format": "csv", "traits": 'x"; DROP TABLE events'})
    assert r.status_code == 400 and r.json()["where"] == "traits"
    assert client.get("/api/segments/없음/members").status_code == 404


def test_explain_user(client: TestClient) -> None:
    _save(client, "활성", "did app_opened in last 7 days")
    _save(client, "활성 여성", 'in segment "활성" and trait gender = "F"')
    r = client.post("/api/segments/활성 여성/explain", params={"user": "u1"})
    assert r.status_code == 200, r.text
    assert r.json()["member"] is True and r.json()["explain"]["kind"] == "and"
    r = client.post("/api/segments/활성 여성/explain", params={"user": "u4"})
    assert r.json()["member"] is False
    assert client.post("/api/segments/활성 여성/explain").status_code == 400  # user is required


HOSTILE = [
    "did app_opened'; DROP TABLE events; --",
    'trait gender = "F"; DELETE FROM profiles',
    "did `app_opened\"; DROP TABLE events; --` in last 7 days",
    "did \u202eapp_opened\u0000",
    "did 앱_열기 where 상품 = \"🙂\"",
    "(" * 3000 + "did app_opened" + ")" * 3000,
    "did app_opened or " * 3000 + "did app_opened",
    "",
    "\ufeff\x1b[31m",
]


@pytest.mark.parametrize("text", HOSTILE)
def test_hostile_text_is_4xx_never_500(client: TestClient, text: str) -> None:
    for route, body in [("/api/segments/parse", {"text": text}), ("/api/segments/preview", {"definition": text}),
                        ("/api/segments", {"name": "h", "definition": text})]:
        r = client.post(route, json=body)
        assert 400 <= r.status_code < 500, (route, r.status_code, r.text)
        assert r.json()["message"]
    assert client.get("/api/segments").json() == []
    assert client.post("/api/segments/preview", json={"definition": "did app_opened"}).json()["count"] == 4


def test_quotes_in_values_are_values(client: TestClient) -> None:
    text = 'trait `name` = "Kim, \\"Ji\\"; 민" or trait region = "\'); DROP TABLE profiles; --"'
    r = client.post("/api/segments/preview", json={"definition": text})
    assert r.status_code == 200, r.text
    assert r.json()["sample"] == ["u1"]
    _save(client, "따옴표", text)
    assert client.get("/api/segments/따옴표/members").json()["members"] == ["u1"]
    assert client.post("/api/segments/preview", json={"definition": "did app_opened"}).json()["count"] == 4


def test_bad_trees_and_bodies_are_4xx(client: TestClient) -> None:
    bad = [{"kind": "nope"}, {"kind": "performed"}, {"kind": "performed", "event": 5},
           {"kind": "and", "items": [{"kind": "in_segment", "segment": "없음"}]},
           {"kind": "trait", "name": "gendr", "op": "eq", "value": {"kind": "value", "value": "F"}}]
    for tree in bad:
        r = client.post("/api/segments/preview", json={"definition": tree})
        assert 400 <= r.status_code < 500, (tree, r.text)
    r = client.post("/api/segments", json={"name": "x" * 200, "definition": "did app_opened"})
    assert r.status_code == 400
    r = client.post("/api/segments", json={"name": "x", "definition": "did app_opened", "kind": "frozen"})
    assert r.status_code == 400
    r = client.post("/api/segments", json={"name": "x", "definition": ["did app_opened"]})
    assert r.status_code == 400
    r = client.post("/api/segments", content=b"{not json", headers={"Content-Type": "application/json"})
    assert r.status_code == 400
    _save(client, "a", "did app_opened")
    r = client.put("/api/segments/a", json={"definition": 'in segment "a"'})
    assert r.status_code == 400 and r.json()["error"] == "segment_cycle"


# ---------------------------------------------------------------- CLI through a running server


def test_cli_goes_through_the_running_server(tmp_path: Path) -> None:
    ws = shop_workspace(tmp_path / "ws")
    server = Server(ws.path, Workspace(ws.path).config.admin_token).start()
    port = server.port
    try:
        runner = CliRunner()
        w = ["-w", str(ws.path)]
        res = runner.invoke(app, [*w, "segment", "save", "여성", "--text", 'trait gender = "F"'])
        assert res.exit_code == 0 and "created: 여성 (version 1)" in res.output, res.output
        res = runner.invoke(app, [*w, "segment", "save", "x", "--text", 'trait gendr = "F"'])
        assert res.exit_code == 2 and "did you mean gender" in res.output
        folder = tmp_path / "segs"
        folder.mkdir()
        (folder / "a.yaml").write_text("name: 활성\ndefinition: did app_opened in last 7 days\n", encoding="utf-8")
        (folder / "b.yaml").write_text("name: 오타\ndefinition: did app_opend\n", encoding="utf-8")
        res = runner.invoke(app, [*w, "apply", str(folder)])
        assert res.exit_code == 2 and "b.yaml:2:17:" in res.output and "did you mean app_opened" in res.output
        (folder / "b.yaml").unlink()
        res = runner.invoke(app, [*w, "apply", str(folder), "--prune"])
        assert res.exit_code == 0 and "1 created" in res.output and "1 deleted" in res.output, res.output
        res = runner.invoke(app, [*w, "segment", "export", "활성", "--format", "ids"])
        assert res.exit_code == 0 and res.stdout == "u1\nu4\n", res.output
        out = tmp_path / "m.csv"
        res = runner.invoke(app, [*w, "segment", "export", "활성", "--traits", "gender", "-o", str(out)])
        assert res.exit_code == 0, res.output
        rows = list(csv.DictReader(out.open(encoding="utf-8")))
        assert [(r["user_id"], r["gender"]) for r in rows] == [("u1", "F"), ("u4", "M")]
        token = Workspace(ws.path).config.admin_token
        r = httpx.post(f"http://127.0.0.1:{port}/api/segments/preview", json={"definition": 'in segment "활성"'},
                       headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 200 and r.json()["sample"] == ["u1", "u4"]
    finally:
        server.stop()


def test_static_segment_members_are_frozen(client: TestClient) -> None:
    _save(client, "고정", "did app_opened in last 7 days", kind="static")
    assert client.get("/api/segments/고정/members").json()["members"] == ["u1", "u4"]
    assert client.post("/api/segments/고정/freeze").json() == {"name": "고정", "count": 2}
    _save(client, "live", "did app_opened")
    r = client.post("/api/segments/live/freeze")
    assert r.status_code == 400 and r.json()["where"] == "kind"
    r = client.get("/api/segments/고정/members", params={"format": "csv", "traits": "age"})
    assert [x["age"] for x in csv.DictReader(io.StringIO(r.text))] == ["25", "22"]


def test_names_with_slashes_and_spaces_route(client: TestClient) -> None:
    _save(client, "최근 방문 (푸시/인앱)", "did app_opened in last 7 days")
    assert client.get("/api/segments/최근 방문 (푸시/인앱)").json()["version"] == 1
    r = client.put("/api/segments/최근 방문 (푸시/인앱)", json={"description": "v2"})
    assert r.json()["status"] == "updated"
    assert len(client.get("/api/segments/최근 방문 (푸시/인앱)/versions").json()) == 2
    assert client.get("/api/segments/최근 방문 (푸시/인앱)/members").json()["members"] == ["u1", "u4"]
    assert client.post("/api/segments/최근 방문 (푸시/인앱)/explain", params={"user": "u1"}).json()["member"]
    assert client.delete("/api/segments/최근 방문 (푸시/인앱)").status_code == 200
    assert client.get("/api/segments/최근 방문 (푸시/인앱)").status_code == 404


def test_new_event_names_are_known_after_a_catalog_refresh(client: TestClient) -> None:
    from saved_fixtures import _ev
    from segmint.store.base import WriteBatch
    from segmint.store.schema import events_to_arrow

    r = client.post("/api/segments/preview", json={"definition": "did wishlist_added"})
    assert r.status_code == 400 and "unknown event 'wishlist_added'" in r.json()["message"]
    store = client.app.state.segmint.workspace.store
    store.write(WriteBatch(events=events_to_arrow([_ev(200, "u3", "wishlist_added", 0.5)])))
    time.sleep(1.1)  # the cached catalog is refreshed when it rejects a name and is older than 1 s
    r = client.post("/api/segments/preview", json={"definition": "did wishlist_added"})
    assert r.status_code == 200 and r.json()["sample"] == ["u3"]


def test_openapi_documents_the_contract(client: TestClient) -> None:
    doc = client.get("/openapi.json").json()
    assert {"/api/segments", "/api/segments/parse", "/api/segments/preview", "/api/segments/{name}",
            "/api/segments/{name}/versions", "/api/segments/{name}/members",
            "/api/segments/{name}/explain"} <= set(doc["paths"])
    assert {"SegmentIn", "SegmentOut", "PreviewIn", "PreviewOut", "ParseOut"} <= set(doc["components"]["schemas"])
