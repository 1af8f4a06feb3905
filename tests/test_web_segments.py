"""Segment list, builder data, segment page, explain, snapshot, user profiles and roles (TestClient, real DuckDB)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from html import unescape
from pathlib import Path
from urllib.parse import quote, quote_plus

import pytest
import yaml
from fastapi.testclient import TestClient

from segmint.api.app import create_app
from segmint.appdb.users import create_user, list_users
from segmint.demo.generate import DemoSpec
from segmint.demo.load import build_demo
from segmint.segments import model as m
from segmint.segments import saved
from segmint.segments.dsl import parse
from segmint.segments.reference import evaluate_user
from segmint.web.pretty import pretty_text
from segmint.workspace import Workspace
from web_login import second_session, sign_in

A1 = ("did not coupon_downloaded and did app_opened in last 1 month "
      "and did product_viewed at least 2 times in last 1 month and did cart_added in last 1 month")
EXAMPLES = Path(__file__).resolve().parents[1] / "examples" / "segments"
A2 = EXAMPLES / "a2-advanced.yaml"
VIEWER = ("viewer@shop.kr", "viewer-password-1")


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[TestClient, Workspace, str]]:
    """A small demo shop with two saved segments, served in-process; yields (client, workspace, csrf)."""
    now = datetime.now(UTC).replace(tzinfo=None, microsecond=0)
    ws, _info = build_demo(tmp_path_factory.mktemp("websegs") / "ws", DemoSpec(users=80, days=40, now=now),
                           progress=False)
    saved.create_segment(ws.appdb, "쿠폰 미다운로드 활성 고객", A1, description="A1 advanced", labels=["seed", "A1"])
    saved.create_segment(ws.appdb, "여성", 'trait gender = "F"', labels=["B"])
    create_user(ws.appdb, *VIEWER, role="viewer")
    with TestClient(create_app(ws)) as client:
        csrf = sign_in(client, ws)
        yield client, ws, csrf


def test_list_shows_segments_with_size_kind_labels(shop) -> None:  # type: ignore[no-untyped-def]
    client, ws, _ = shop
    html = client.get("/segments").text
    assert 'href="/segments/%EC%BF%A0%ED%8F%B0' in html and "A1 advanced" in html
    assert '<span class="tag">seed</span>' in html and ">동적<" in html
    assert 'id="new-segment" href="/builder"' in html
    size = client.get("/ui/segments/size", params={"name": "쿠폰 미다운로드 활성 고객"}).text
    expected = len(saved.segment_members(ws, "쿠폰 미다운로드 활성 고객"))
    assert f'data-count="{expected}"' in size and expected > 0
    labelled = client.get("/segments", params={"label": "B"}).text
    assert "여성" in labelled and "A1 advanced" not in labelled
    # date tests on traits compile (no demo profile has the trait: a count of 0, not a refusal)
    saved.create_segment(ws.appdb, "최근 가입일", "trait signup_date in last 7 days")
    dated = client.get("/ui/segments/size", params={"name": "최근 가입일"}).text
    saved.delete_segment(ws.appdb, "최근 가입일")
    assert 'data-count="0"' in dated and "unsupported" not in dated
    english = client.get("/segments", cookies={"lang": "en"}).text
    assert ">New segment<" in english and ">dynamic<" in english


def test_list_shows_the_last_recorded_evaluation(shop) -> None:  # type: ignore[no-untyped-def]
    client, ws, _ = shop
    from segmint.segments import live_log

    # the newest evaluation of a segment is what the list shows; a failure is shown with its error, not hidden
    late = datetime(2099, 1, 1, 9, 30)
    eval_id = live_log.begin(ws.appdb, "여성", 1, "sweep", late, late)
    live_log.fail(ws.appdb, eval_id, late + timedelta(seconds=2), 2000.0, "SegmentEvalError: boom at 1:5")
    html = client.get("/segments").text
    row = re.search(r'<tr data-segment="여성">(.*?)</tr>', html, re.S).group(1)
    assert 'data-status="failed"' in row and "2099-01-01 09:30" in row and "boom at 1:5" in row
    assert "실패" in row and "정기 재계산" in row
    eval_id = live_log.begin(ws.appdb, "여성", 1, "edit", late, late + timedelta(minutes=1))
    live_log.finish(ws.appdb, eval_id, late + timedelta(minutes=1, seconds=1), 12.0, members=7, entered=3, exited=1)
    row = re.search(r'<tr data-segment="여성">(.*?)</tr>', client.get("/segments").text, re.S).group(1)
    assert 'data-status="ok"' in row and "2099-01-01 09:31" in row and "+3 −1" in row and "boom" not in row

def test_builder_offers_taxonomy_names_counts_and_values(shop) -> None:  # type: ignore[no-untyped-def]
    client, ws, _ = shop
    html = client.get("/builder").text
    data = json.loads(re.search(r'<script type="application/json" id="builder-data">(.*?)</script>', html,
                                re.S).group(1))
    events = {e["name"]: e for e in data["events"]}
    counts = {c.event: c.count for c in ws.store.event_counts()}
    assert events["product_viewed"]["label"] == "상품 조회"
    assert events["product_viewed"]["count"] == counts["product_viewed"]
    assert "category" in {p["name"] for p in events["product_viewed"]["properties"]}
    traits = {t["name"]: t for t in data["traits"]}
    assert traits["gender"]["label"] == "성별" and traits["gender"]["enum"] == ["F", "M"]
    assert traits["rfm_tier"]["group"] == "computed" and traits["first_seen"]["source"] == "profile"
    assert set(data["segments"]) >= {"여성", "쿠폰 미다운로드 활성 고객"}
    assert data["i18n"]["b.add_condition"] == "+ 조건"
    assert 'id="save-segment"' in html and 'for="seg-text"' in html and 'for="seg-name"' in html
    # values that arrived, most frequent first
    vals = client.get("/ui/segments/values", params={"event": "product_viewed", "property": "category"}).json()
    got = [v["value"] for v in vals["values"]]
    top = ws.store.query("SELECT json_extract_string(properties, '$.category') AS c, count(*) AS n FROM events "
                         "WHERE event = 'product_viewed' GROUP BY c ORDER BY n DESC, c").to_pylist()
    assert got == [r["c"] for r in top if r["c"] is not None][:30]
    genders = client.get("/ui/segments/values", params={"trait": "gender"}).json()["values"]
    assert {v["value"] for v in genders} == {"F", "M"}
    # editing a saved segment loads its definition
    edit = client.get("/builder", params={"name": "여성"}).text
    assert '"kind":"trait"' in edit and 'readonly' in edit


def test_print_and_parse_round_trip_for_the_builder(shop) -> None:  # type: ignore[no-untyped-def]
    client, _ws, csrf = shop
    text = A2.read_text(encoding="utf-8").split("definition: |\n", 1)[1]
    parsed = client.post("/api/segments/parse", json={"text": text}, headers={"X-CSRF-Token": csrf})
    assert parsed.status_code == 200
    tree = parsed.json()["definition"]
    printed = client.post("/ui/segments/print", json={"definitions": [tree, tree["condition"]]},
                          headers={"X-CSRF-Token": csrf}).json()["texts"]
    # laid out one condition per line, the `with` body indented; it parses back to the same tree
    assert printed[0] == ("with any cart_added as cart at least 3 days ago:\n"
                          "  did not product_purchased where product_id = cart.product_id after cart\n"
                          "  and did product_viewed where category = cart.category at least 2 times\n"
                          "  and did not review_viewed where product_id = cart.product_id")
    assert printed[1].startswith("did not product_purchased")
    again = client.post("/api/segments/parse", json={"text": printed[0]}, headers={"X-CSRF-Token": csrf}).json()
    assert again["definition"] == tree
    assert client.post("/ui/segments/print", json={"definitions": [tree]}).status_code == 403  # no CSRF token
    wrong = client.post("/ui/segments/print", json={"definitions": [tree, {"kind": "value", "value": 1}]},
                        headers={"X-CSRF-Token": csrf})
    assert wrong.status_code == 400 and wrong.json()["where"].startswith("definitions.1")
    bad = client.post("/api/segments/parse", json={"text": "did not coupon_downloded"},
                      headers={"X-CSRF-Token": csrf}).json()
    assert (bad["line"], bad["column"], bad["suggestion"]) == (1, 9, "coupon_downloaded")


def test_segment_page_explain_and_export(shop) -> None:  # type: ignore[no-untyped-def]
    client, ws, _ = shop
    name = "쿠폰 미다운로드 활성 고객"
    members = saved.segment_members(ws, name)
    html = client.get("/segments/" + quote(name, safe="")).text
    assert f'id="member-count">{len(members):,}<' in html
    assert "did not coupon_downloaded\nand did app_opened in last 1 month\nand did product_viewed" in html
    assert f">{members[0]}</a>" in html
    assert f'href="/api/segments/{quote(name, safe="")}/members?format=csv"' in html
    seg = quote(name, safe="")
    assert f'data-url="/api/segment-analysis/growth?segment={quote_plus(name)}"' in html
    assert f'data-url="/api/segment-analysis/profile?segment={quote_plus(name)}&amp;top=5"' in html
    assert 'data-panel="overlap" data-url="/api/segment-analysis/overlap?segment=' in html
    assert seg in html
    assert "<td>v1</td>" in html
    csv = client.get(f"/api/segments/{quote(name, safe='')}/members", params={"format": "csv"})
    assert csv.status_code == 200 and len(csv.text.strip().splitlines()) == len(members) + 1
    # explain a member and a non-member: the verdict and the tree agree with the reference evaluator
    inside = client.get("/ui/segments/explain", params={"name": name, "user": members[0]}).text
    assert 'data-member="true"' in inside and "포함" in inside
    assert inside.count('data-result="true"') >= 5  # the AND and its four conditions
    outsider = next(u for u in (f"u{i:07d}" for i in range(80)) if u not in members)
    out = client.get("/ui/segments/explain", params={"name": name, "user": outsider}).text
    node = evaluate_user(saved.get_segment(ws.appdb, name).tree(), ws.store, outsider)
    assert 'data-member="false"' in out and not node.result
    assert out.count('data-result="false"') == 1 + sum(not c.result for c in node.children)
    ghost = client.get("/ui/segments/explain", params={"name": name, "user": "nobody-here"}).text
    assert "이 ID의 이벤트나 프로필이 없습니다" in ghost
    assert client.get("/ui/segments/explain", params={"name": name, "user": " "}).status_code == 400
    assert client.get("/segments/" + quote("없는 세그먼트", safe="")).status_code == 404


def test_snapshot_makes_a_frozen_static_copy(shop) -> None:  # type: ignore[no-untyped-def]
    client, ws, csrf = shop
    name = "여성"
    resp = client.post("/ui/segments/snapshot", params={"name": name}, data={"csrf_token": csrf},
                       follow_redirects=False)
    assert resp.status_code == 303
    copy_name = next(s.name for s in saved.list_segments(ws.appdb) if s.name.startswith("여성 @ "))
    assert resp.headers["location"] == "/segments/" + quote(copy_name, safe="")
    copy = saved.get_segment(ws.appdb, copy_name)
    assert copy.kind == "static" and "snapshot" in copy.labels
    assert saved.static_members(ws.appdb, copy_name) == saved.segment_members(ws, name)
    page = client.get(resp.headers["location"]).text
    assert "고정된 명단" in page and 'id="snapshot"' not in page  # a static segment is a snapshot already
    saved.delete_segment(ws.appdb, copy_name)


def test_user_profile_traits_timeline_segments(shop) -> None:  # type: ignore[no-untyped-def]
    client, ws, _ = shop
    members = saved.segment_members(ws, "쿠폰 미다운로드 활성 고객")
    uid = members[0]
    assert client.get("/users", params={"q": uid}, follow_redirects=False).headers["location"] == f"/users/{uid}"
    latest = ws.store.query("SELECT user_id FROM profiles ORDER BY last_seen DESC, user_id LIMIT 1").to_pylist()
    assert f'id="recent-users"><li><a href="/users/{latest[0]["user_id"]}"' in client.get("/users").text
    prefix = client.get("/users", params={"q": "u00000"}).text
    assert 'id="user-results"' in prefix and f'href="/users/{uid}"' in prefix
    html = client.get(f"/users/{uid}").text
    assert 'id="traits-declared"' in html and "성별" in html
    # yes/no traits read 예 / 아니오 (the stored value stays in data-value), not true / false
    consent = re.search(r'<td><code>consent_email</code>.*?<td data-value="(true|false)">(.*?)</td>', html, re.S)
    assert consent and consent.group(2) == {"true": "예", "false": "아니오"}[consent.group(1)]
    seg_row = re.search(r'data-segment="쿠폰 미다운로드 활성 고객" data-member="(\w+)"', html)
    assert seg_row and seg_row.group(1) == "true"
    women = set(saved.segment_members(ws, "여성"))
    row = re.search(r'data-segment="여성" data-member="(\w+)"', html)
    assert row and row.group(1) == ("true" if uid in women else "false")
    n_events = ws.store.query("SELECT count(*) AS n FROM events WHERE user_id = ?", [uid]).to_pylist()[0]["n"]
    assert html.count("<time>") == min(n_events, 100)
    msgs = ws.store.query("SELECT count(*) AS n FROM (SELECT * FROM events WHERE user_id = ? ORDER BY ts DESC "
                          "LIMIT 100) WHERE starts_with(event, 'message_')", [uid]).to_pylist()[0]["n"]
    assert html.count('<li class="msg">') == msgs
    missing = client.get("/users/nobody-here")
    assert missing.status_code == 404 and "해당하는 사용자가 없습니다" in missing.text


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.yaml")), ids=lambda p: p.stem)
def test_pretty_text_parses_back_to_the_same_tree(path: Path) -> None:
    tree = parse(yaml.safe_load(path.read_text(encoding="utf-8"))["definition"])
    text = pretty_text(tree)
    assert parse(text) == tree
    if isinstance(tree, m.And | m.Or):
        assert text.count("\n") >= len(tree.items) - 1


def test_viewer_can_look_but_not_save(shop) -> None:  # type: ignore[no-untyped-def]
    client, ws, _ = shop
    with second_session(client) as viewer:
        csrf = sign_in(viewer, ws, *VIEWER)
        hdr = {"X-CSRF-Token": csrf}
        listing = viewer.get("/segments").text
        assert 'id="new-segment"' not in listing and 'id="my-role">뷰어<' in listing
        builder = viewer.get("/builder").text
        assert 'id="save-segment"' not in builder and 'id="viewer-note"' in builder
        page = viewer.get("/segments/" + quote("여성", safe="")).text
        assert 'id="snapshot"' not in page and 'id="edit-segment"' not in page and 'id="export-csv"' in page
        # reading is allowed: preview, parse, explain
        assert viewer.post("/api/segments/preview", json={"definition": A1}, headers=hdr).status_code == 200
        assert viewer.post("/api/segments/parse", json={"text": A1}, headers=hdr).status_code == 200
        assert viewer.post(f"/api/segments/{quote('여성', safe='')}/explain", params={"user": "u0000001"},
                           headers=hdr).status_code == 200
        # changing is not, with a clear message
        refused = viewer.post("/api/segments", json={"name": "몰래", "definition": A1}, headers=hdr)
        assert refused.status_code == 403 and "viewer" in refused.json()["message"]
        assert viewer.put(f"/api/segments/{quote('여성', safe='')}", json={"description": "x"},
                          headers=hdr).status_code == 403
        assert viewer.delete(f"/api/segments/{quote('여성', safe='')}", headers=hdr).status_code == 403
        snap = viewer.post("/ui/segments/snapshot", params={"name": "여성"}, data={"csrf_token": csrf})
        assert snap.status_code == 403 and "뷰어 권한으로는" in snap.text
        key = viewer.post("/settings/keys", data={"label": "x", "csrf_token": csrf})
        assert key.status_code == 403 and "뷰어 권한으로는" in key.text
        assert 'id="create-key"' not in viewer.get("/settings").text
    assert {s.name for s in saved.list_segments(ws.appdb)} == {"쿠폰 미다운로드 활성 고객", "여성"}
    assert saved.get_segment(ws.appdb, "여성").description == ""


def test_marketer_saves_through_the_api_with_the_session(shop) -> None:  # type: ignore[no-untyped-def]
    client, ws, csrf = shop
    body = {"name": "장바구니 A1 사본", "definition": A1, "labels": ["ui"], "description": "from the builder"}
    assert client.post("/api/segments", json=body).status_code == 403  # no CSRF header
    made = client.post("/api/segments", json=body, headers={"X-CSRF-Token": csrf})
    assert made.status_code == 201 and made.json()["version"] == 1
    upd = client.put(f"/api/segments/{quote(body['name'], safe='')}", json={"definition": 'trait gender = "M"'},
                     headers={"X-CSRF-Token": csrf})
    assert upd.status_code == 200 and upd.json()["version"] == 2
    page = client.get("/segments/" + quote(body["name"], safe="")).text
    assert page.count("<td>v") == 2 and 'trait gender = "M"' in unescape(page)
    saved.delete_segment(ws.appdb, body["name"])


def test_only_admins_change_roles_and_not_their_own(shop) -> None:  # type: ignore[no-untyped-def]
    client, ws, csrf = shop
    viewer_id = next(u.id for u in list_users(ws.appdb) if u.email == VIEWER[0])
    # a marketer may not
    refused = client.post(f"/settings/users/{viewer_id}/role", data={"role": "admin", "csrf_token": csrf})
    assert refused.status_code == 403 and "관리자만 다른 사용자의 역할을" in refused.text
    assert 'id="role-' not in client.get("/settings").text
    create_user(ws.appdb, "boss@shop.kr", "boss-password-1", role="admin")
    with second_session(client) as admin:
        token = sign_in(admin, ws, "boss@shop.kr", "boss-password-1")
        page = admin.get("/settings").text
        assert f'id="role-{viewer_id}"' in page and 'for="role-' in page
        boss_id = next(u.id for u in list_users(ws.appdb) if u.email == "boss@shop.kr")
        assert f'id="role-{boss_id}"' not in page  # no form for one's own role
        ok = admin.post(f"/settings/users/{viewer_id}/role", data={"role": "marketer", "csrf_token": token})
        assert ok.status_code == 200 and 'id="role-changed"' in ok.text
        assert {u.email: u.role for u in list_users(ws.appdb)}[VIEWER[0]] == "marketer"
        assert admin.post(f"/settings/users/{boss_id}/role",
                          data={"role": "viewer", "csrf_token": token}).status_code == 403
        assert admin.post(f"/settings/users/{viewer_id}/role",
                          data={"role": "owner", "csrf_token": token}).status_code == 400
        admin.post(f"/settings/users/{viewer_id}/role", data={"role": "viewer", "csrf_token": token})
    assert {u.email: u.role for u in list_users(ws.appdb)}[VIEWER[0]] == "viewer"
