"""The event taxonomy: file validation, per-event checks, violation counting per mode, inference, apply, CLI."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from segmint.cli import app
from segmint.errors import InvalidInput
from segmint.ingest.journal import Journal
from segmint.ingest.messages import normalize, parse_message
from segmint.ingest.pipeline import Ingestor
from segmint.taxonomy.infer import infer_taxonomy
from segmint.taxonomy.model import load_taxonomy, parse_taxonomy
from segmint.taxonomy.runtime import apply_taxonomy, attach_taxonomy
from segmint.taxonomy.validate import check_event
from segmint.workspace import Workspace
from server_util import Server

NOW = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
runner = CliRunner(env={"COLUMNS": "250"})

TAXONOMY = """\
version: 1
events:
  product_viewed:
    display_name: 상품 조회
    properties:
      product_id: {type: string, required: true, display_name: 상품 ID, column: true}
      category: {type: string, enum: [뷰티, 패션, 식품], display_name: 카테고리}
      price: {type: integer, display_name: 가격, column: true}
  order_completed:
    display_name: 주문 완료
    properties:
      order_id: {type: string, required: true}
      revenue: {type: number, required: true, column: true}
traits:
  age: {type: integer, display_name: 나이}
  gender: {type: string, enum: [F, M]}
  consent_push: {type: boolean}
"""


def _ev(raw: dict) -> dict:
    return normalize(parse_message(raw), NOW)


def _track(mid: str, event: str, **props: object) -> dict:
    return _ev({"type": "track", "userId": "u1", "event": event, "messageId": mid, "properties": props})


def _ingestor(ws: Workspace, mode: str | None = None, taxonomy: str | None = TAXONOMY) -> Ingestor:
    if taxonomy is not None:
        ws.taxonomy_path.write_text(taxonomy, encoding="utf-8")
    if mode is not None:
        ws.config.taxonomy.mode = mode
    ing = Ingestor(ws.store, Journal(ws.journal_dir), flush_interval=0.01)
    attach_taxonomy(ws, ing)
    ing.start()
    return ing


def _count(ws: Workspace, sql: str) -> int:
    return ws.store.query(sql).column(0)[0].as_py()


# -- the file ------------------------------------------------------------------------------------

def test_malformed_yaml_names_file_line_and_column(tmp_path: Path) -> None:
    path = tmp_path / "tax.yaml"
    path.write_text("events:\n  a:\n    properties: {x: [1, 2}\n", encoding="utf-8")
    with pytest.raises(InvalidInput) as exc:
        load_taxonomy(path)
    assert exc.value.where == f"{path}:3:26"  # the stray `}`
    assert "malformed YAML" in exc.value.message


def test_schema_error_names_field_path_and_line() -> None:
    text = "events:\n  product_viewed:\n    properties:\n      price: {type: money}\n"
    with pytest.raises(InvalidInput) as exc:
        parse_taxonomy(text, "t.yaml")
    assert exc.value.message.startswith("events.product_viewed.properties.price.type:")
    assert exc.value.where == "t.yaml:4:21"
    with pytest.raises(InvalidInput) as exc:
        parse_taxonomy("events:\n  e:\n    propertys: {}\n", "t.yaml")
    assert "events.e.propertys" in exc.value.message and exc.value.where == "t.yaml:3:5"


def test_column_needs_one_scalar_type() -> None:
    with pytest.raises(InvalidInput, match="cannot be a typed column"):
        parse_taxonomy("events:\n  e:\n    properties:\n      tags: {type: array, column: true}\n")
    two = "events:\n  a:\n    properties:\n      x: {type: string, column: true}\n" \
          "  b:\n    properties:\n      x: {type: integer, column: true}\n"
    with pytest.raises(InvalidInput, match="column with two types") as exc:
        parse_taxonomy(two, "t.yaml")
    assert exc.value.where == "t.yaml:7:7"


# -- checks --------------------------------------------------------------------------------------

def test_check_event_cases() -> None:
    tax = parse_taxonomy(TAXONOMY)
    kinds = lambda ev: [(v.field, v.kind) for v in check_event(tax, ev)]  # noqa: E731
    assert kinds(_track("m", "product_viewed", product_id="p1", category="뷰티", price=1000)) == []
    assert kinds(_track("m", "product_vieweed", product_id="p1")) == [("event", "unknown_event")]
    assert kinds(_track("m", "product_viewed", category="뷰티")) == [("properties.product_id", "missing_required")]
    assert kinds(_track("m", "product_viewed", product_id="p1", price="1000")) == [("properties.price", "wrong_type")]
    assert kinds(_track("m", "product_viewed", product_id="p1", price=True)) == [("properties.price", "wrong_type")]
    assert kinds(_track("m", "product_viewed", product_id="p1", category="자동차")) == [
        ("properties.category", "not_in_enum")]
    undeclared = check_event(tax, _track("m", "product_viewed", product_id="p1", color="red"))
    assert [(v.field, v.kind, v.blocking) for v in undeclared] == [("properties.color", "undeclared_property", False)]
    # a revenue of 0 is a number; an integer passes as a number
    assert kinds(_track("m", "order_completed", order_id="o1", revenue=0)) == []
    ident = _ev({"type": "identify", "userId": "u1", "traits": {"age": "27", "gender": "F", "nickname": "x"}})
    got = check_event(tax, ident)
    assert [(v.field, v.kind, v.blocking) for v in got] == [
        ("traits.age", "wrong_type", True), ("traits.nickname", "undeclared_trait", False)]
    assert got[0].value == "27" and got[0].reason == "expected integer, got string"
    # page calls are checked only when the taxonomy declares `$page`
    assert kinds(_ev({"type": "page", "userId": "u1", "name": "홈"})) == []
    with_page = parse_taxonomy(TAXONOMY.replace("traits:", "  $page:\n    properties:\n"
                                                "      name: {type: string, required: true}\ntraits:"))
    assert [(v.field, v.kind) for v in check_event(with_page, _ev({"type": "page", "userId": "u1"}))] == [
        ("properties.name", "missing_required")]
    assert check_event(with_page, _ev({"type": "page", "userId": "u1", "name": "홈"})) == []


# -- modes in the pipeline -----------------------------------------------------------------------

def test_warn_mode_keeps_events_and_counts_violations_exactly(workspace: Workspace) -> None:
    ing = _ingestor(workspace, "warn")
    bad = [_track(f"m{i}", "product_viewed", product_id="p1", price=str(1000 + i)) for i in range(7)]
    ing.submit([*bad, _track("ok", "product_viewed", product_id="p2", price=5)])
    ing.submit([_track("m0", "product_viewed", product_id="p1", price="1000")])  # a retry: stored once
    ing.submit([_track("u1", "cart_abandoned")])
    assert ing.wait_stored()
    ing.stop()
    assert _count(workspace, "SELECT count(*) FROM events") == 9
    assert _count(workspace, "SELECT count(*) FROM rejected") == 0
    rows = {(r["event"], r["field"], r["kind"]): r for r in workspace.store.violations()}
    price = rows[("product_viewed", "properties.price", "wrong_type")]
    assert price["count"] == 7 and price["rejected"] == 0
    assert len(price["examples"]) == 5
    assert price["examples"][0] == {"message_id": "m0", "value": '"1000"', "rejected": False}
    assert price["reason"] == "expected integer, got string"
    assert rows[("cart_abandoned", "event", "unknown_event")]["count"] == 1
    assert set(rows) == {("product_viewed", "properties.price", "wrong_type"),
                         ("cart_abandoned", "event", "unknown_event")}


def test_violation_counts_add_up_across_flushes_and_keep_first_examples(workspace: Workspace) -> None:
    ing = _ingestor(workspace, "warn")
    for batch in range(3):
        ing.submit([_track(f"b{batch}-{i}", "product_viewed", product_id=i) for i in range(4)])
        assert ing.wait_stored()
    ing.stop()
    (row,) = workspace.store.violations()
    assert row["count"] == 12 and [e["message_id"] for e in row["examples"]] == [
        "b0-0", "b0-1", "b0-2", "b0-3", "b1-0"]


def test_strict_mode_rejects_with_reason_and_counts_it(workspace: Workspace) -> None:
    ing = _ingestor(workspace, "strict")
    ing.submit([
        _track("good", "product_viewed", product_id="p1", category="패션", extra=1),
        _track("nocat", "product_viewed", product_id="p1", category="자동차"),
        _track("noid", "order_completed", revenue=1000),
        _ev({"type": "identify", "userId": "u1", "messageId": "id1", "traits": {"age": 30, "hobby": "run"}}),
        _ev({"type": "identify", "userId": "u2", "messageId": "id2", "traits": {"consent_push": "yes"}}),
    ])
    assert ing.wait_stored()
    ing.stop()
    stored = {r["message_id"] for r in workspace.store.query("SELECT message_id FROM events").to_pylist()}
    assert stored == {"good", "id1"}  # undeclared properties and traits are counted, not rejected
    rejected = {(r["field"], r["reason"]) for r in workspace.store.rejected()}
    assert rejected == {
        ("properties.category", "'자동차' is not one of ['뷰티', '패션', '식품']"),
        ("properties.order_id", "required property is missing"),
        ("traits.consent_push", "expected boolean, got string"),
    }
    rows = {(r["event"], r["field"], r["kind"]): (r["count"], r["rejected"]) for r in workspace.store.violations()}
    assert rows == {
        ("product_viewed", "properties.extra", "undeclared_property"): (1, 0),
        ("product_viewed", "properties.category", "not_in_enum"): (1, 1),
        ("order_completed", "properties.order_id", "missing_required"): (1, 1),
        ("$identify", "traits.hobby", "undeclared_trait"): (1, 0),
        ("$identify", "traits.consent_push", "wrong_type"): (1, 1),
    }
    prof = workspace.store.query("SELECT user_id FROM profiles WHERE traits::VARCHAR LIKE '%hobby%'").to_pylist()
    assert prof == [{"user_id": "u1"}]


def test_violations_of_a_replayed_journal_are_counted_once(workspace: Workspace) -> None:
    workspace.taxonomy_path.write_text(TAXONOMY, encoding="utf-8")
    workspace.config.taxonomy.mode = "strict"
    journal = Journal(workspace.journal_dir)
    ing = Ingestor(workspace.store, journal)
    attach_taxonomy(workspace, ing)
    # accepted and fsynced, but the writer never ran (kill -9 right after the 2xx)
    ing.submit([_track("r1", "product_viewed", product_id=1), _track("r2", "product_viewed", product_id="p")])
    journal.close()
    for _ in range(2):  # restart twice: the second replays nothing
        again = Ingestor(workspace.store, Journal(workspace.journal_dir))
        again.start()
        again.stop()
    (row,) = workspace.store.violations()
    assert (row["field"], row["count"], row["rejected"]) == ("properties.product_id", 1, 1)
    assert [r["field"] for r in workspace.store.rejected()] == ["properties.product_id"]
    assert _count(workspace, "SELECT count(*) FROM events") == 1


def test_open_mode_accepts_everything_and_counts_nothing(workspace: Workspace) -> None:
    ing = _ingestor(workspace, "open")
    ing.submit([_track("a", "whatever", x=1), _track("b", "product_viewed", price="free")])
    assert ing.wait_stored()
    ing.stop()
    assert _count(workspace, "SELECT count(*) FROM events") == 2
    assert workspace.store.violations() == []
    # typed columns exist even in open mode; a value that does not cast is NULL, the JSON keeps it
    assert workspace.store.query("SELECT p_price FROM events WHERE message_id = 'b'").to_pylist() == [
        {"p_price": None}]


# -- inference -----------------------------------------------------------------------------------

def _mixed_shop(ws: Workspace) -> None:
    ing = _ingestor(ws, taxonomy=None)
    evs = []
    for i in range(200):
        props = {"product_id": f"sku-{i % 37}", "price": 1000 + i, "category": ["뷰티", "패션", "식품"][i % 3],
                 "viewed_at": "2026-10-01T10:00:00+09:00"}
        if i % 4 == 0:
            props["coupon_id"] = f"c{i}"
        if i < 199:
            props["source"] = "app"
        if i == 7:
            props["price"] = "1,000원"  # one mistyped value
        if i % 2:
            props["discount"] = 0.1
        else:
            props["discount"] = 0
        evs.append(_ev({"type": "track", "userId": f"u{i % 20}", "event": "product_viewed", "properties": props,
                        "messageId": f"pv{i}"}))
    for i in range(20):
        evs.append(_ev({"type": "identify", "userId": f"u{i}", "messageId": f"id{i}",
                        "traits": {"age": 20 + i, "gender": "FM"[i % 2], "consent_push": i % 3 == 0}}))
    evs.append(_ev({"type": "track", "userId": "u1", "event": "signed_up", "properties": {"channel": "kakao"},
                    "messageId": "su1"}))
    evs.append(_ev({"type": "page", "userId": "u1", "name": "이벤트 페이지", "messageId": "pg1",
                    "properties": {"url": "https://shop.example/event"}}))
    ing.submit(evs)
    assert ing.wait_stored()
    ing.stop()


def test_infer_proposes_types_required_flags_enums_and_traits(workspace: Workspace) -> None:
    _mixed_shop(workspace)
    inf = infer_taxonomy(workspace.store)
    events = {e.name: e for e in inf.events}
    assert events["product_viewed"].count == 200 and events["signed_up"].count == 1
    assert {p.name for p in events["$page"].properties} == {"name", "url"}
    props = {p.name: p for p in events["product_viewed"].properties}
    assert props["price"].type == "integer" and props["price"].mixed
    assert props["price"].types == {"integer": 199, "string": 1}
    assert props["discount"].type == "number" and not props["discount"].mixed
    assert props["viewed_at"].type == "datetime"
    assert props["product_id"].required and props["product_id"].enum is None
    assert props["source"].required and props["source"].enum is None  # 199 of 200 = 99.5%; one value is no enum
    assert not props["coupon_id"].required and props["coupon_id"].ratio == 0.25
    assert props["category"].enum == sorted(["뷰티", "패션", "식품"])
    traits = {t.name: t for t in inf.traits}
    assert (traits["age"].type, traits["gender"].type, traits["consent_push"].type) == ("integer", "string", "boolean")
    assert inf.profiles == 20
    tax = inf.to_taxonomy()
    assert tax.events["product_viewed"].properties["source"].required
    assert "MIXED TYPES" in tax.events["product_viewed"].properties["price"].description
    # a sample reads fewer events per name but keeps the exact counts
    sampled = {e.name: e for e in infer_taxonomy(workspace.store, sample=50).events}
    assert sampled["product_viewed"].count == 200
    assert {p.total for p in sampled["product_viewed"].properties} == {50}


def test_infer_against_a_declared_taxonomy_shows_what_differs(workspace: Workspace) -> None:
    _mixed_shop(workspace)
    base = parse_taxonomy(TAXONOMY)
    inf = infer_taxonomy(workspace.store)
    changes = {(d["change"], d["where"]) for d in inf.diff(base)}
    assert ("new_event", "events.signed_up") in changes
    assert ("not_seen", "events.order_completed") in changes
    assert ("new_property", "events.product_viewed.properties.coupon_id") in changes
    assert ("mixed_types", "events.product_viewed.properties.price") in changes
    assert ("type_differs", "traits.gender") not in changes
    merged = inf.to_taxonomy(base)
    assert merged.events["product_viewed"].display_name == "상품 조회"  # declared entries kept
    assert "signed_up" in merged.events and "coupon_id" in merged.events["product_viewed"].properties


# -- apply ---------------------------------------------------------------------------------------

def test_apply_creates_typed_columns_and_backfills_them(workspace: Workspace) -> None:
    ing = _ingestor(workspace, taxonomy=None)
    ing.submit([_track("old", "product_viewed", product_id="p9", price=12900),
                _track("order", "order_completed", order_id="o1", revenue=45000.5)])
    assert ing.wait_stored()
    result = apply_taxonomy(workspace, TAXONOMY, "tax.yaml", mode="strict", ingestor=ing)
    assert sorted(result["columns_added"]) == ["price", "product_id", "revenue"] and result["mode"] == "strict"
    assert workspace.taxonomy_path.read_text(encoding="utf-8") == TAXONOMY
    assert Workspace(workspace.path).config.taxonomy.mode == "strict"
    rows = workspace.store.query(
        "SELECT message_id, p_price, p_product_id, p_revenue FROM events ORDER BY message_id").to_pylist()
    assert rows == [{"message_id": "old", "p_price": 12900, "p_product_id": "p9", "p_revenue": None},
                    {"message_id": "order", "p_price": None, "p_product_id": None, "p_revenue": 45000.5}]
    # the running ingestor now checks strictly and fills the new columns
    ing.submit([_track("new", "product_viewed", product_id="p1", price=100), _track("bad", "unknown_thing")])
    assert ing.wait_stored()
    ing.stop()
    assert workspace.store.query("SELECT p_price FROM events WHERE message_id = 'new'").to_pylist() == [
        {"p_price": 100}]
    assert [r["field"] for r in workspace.store.rejected()] == ["event"]
    retyped = TAXONOMY.replace("price: {type: integer", "price: {type: string")
    with pytest.raises(InvalidInput, match="already exists as integer"):
        apply_taxonomy(workspace, retyped, "tax2.yaml")
    assert workspace.taxonomy_path.read_text(encoding="utf-8") == TAXONOMY  # nothing installed


# -- CLI -----------------------------------------------------------------------------------------

def test_cli_show_check_infer_apply(tmp_path: Path) -> None:
    ws = Workspace.init(tmp_path / "ws")
    _mixed_shop(ws)
    ws.close()
    w = ["-w", str(ws.path)]
    shown = runner.invoke(app, [*w, "taxonomy", "show", "--json"])
    assert shown.exit_code == 0, shown.output
    data = json.loads(shown.output)
    assert not data["declared"] and {e["name"] for e in data["undeclared_events"]} == {"product_viewed", "signed_up"}

    out = tmp_path / "proposal.yaml"
    inferred = runner.invoke(app, [*w, "taxonomy", "infer", "--out", str(out)])
    assert inferred.exit_code == 0, inferred.output
    assert "product_viewed" in inferred.output and "mixed" in inferred.output
    proposal = load_taxonomy(out)
    assert proposal.events["product_viewed"].properties["price"].type == "integer"

    bad = tmp_path / "bad.yaml"
    bad.write_text("events:\n  a: [\n", encoding="utf-8")
    res = runner.invoke(app, [*w, "taxonomy", "apply", str(bad)])
    assert res.exit_code == 2 and f"{bad}:3:1" in res.output and "malformed YAML" in res.output

    tax = tmp_path / "tax.yaml"
    tax.write_text(TAXONOMY, encoding="utf-8")
    applied = runner.invoke(app, [*w, "taxonomy", "apply", str(tax), "--mode", "warn"])
    assert applied.exit_code == 0, applied.output
    assert "p_price" in applied.output

    shown = runner.invoke(app, [*w, "taxonomy", "show"])
    assert shown.exit_code == 0 and "상품 조회" in shown.output and "카테고리" in shown.output

    clean = runner.invoke(app, [*w, "taxonomy", "check"])
    assert clean.exit_code == 0 and "no violations" in clean.output

    msgs = tmp_path / "events.jsonl"
    msgs.write_text("\n".join([
        json.dumps({"type": "track", "userId": "u", "event": "product_viewed", "messageId": "f1",
                    "properties": {"product_id": "p", "price": "12,900"}}),
        json.dumps({"batch": [{"type": "track", "userId": "u", "event": "order_completed",
                               "properties": {"order_id": "o", "revenue": 1}}]}),
        "{not json",
    ]) + "\n", encoding="utf-8")
    checked = runner.invoke(app, [*w, "taxonomy", "check", "--file", str(msgs), "--json"])
    assert checked.exit_code == 1, checked.output
    rows = {(r["event"], r["field"], r["kind"]): r for r in json.loads(checked.output)}
    assert set(rows) == {("product_viewed", "properties.price", "wrong_type"), ("", "message", "malformed_json")}
    assert rows[("product_viewed", "properties.price", "wrong_type")]["examples"][0]["line"] == 1
    store = Workspace(ws.path).open_store_read_only()
    assert store.summary()["events"] == 222  # --file stores nothing
    store.close()


def test_cli_goes_through_the_running_server(tmp_path: Path) -> None:
    ws = Workspace.init(tmp_path / "ws")
    _mixed_shop(ws)
    ws.close()
    server = Server(ws.path, Workspace(ws.path).config.admin_token).start()
    port = server.port
    try:
        w = ["-w", str(ws.path)]
        tax = tmp_path / "tax.yaml"
        tax.write_text(TAXONOMY, encoding="utf-8")
        applied = runner.invoke(app, [*w, "taxonomy", "apply", str(tax), "--json"])
        assert applied.exit_code == 0, applied.output
        assert sorted(json.loads(applied.output)["columns_added"]) == ["price", "product_id", "revenue"]
        bad = tmp_path / "bad.yaml"
        bad.write_text("events:\n  e:\n    properties:\n      x: {type: money}\n", encoding="utf-8")
        res = runner.invoke(app, [*w, "taxonomy", "apply", str(bad)])
        assert res.exit_code == 2 and f"{bad}:4:17" in res.output and "events.e.properties.x.type" in res.output
        shown = json.loads(runner.invoke(app, [*w, "taxonomy", "show", "--json"]).output)
        assert {e["name"]: e["count"] for e in shown["events"]} == {"product_viewed": 200, "order_completed": 0}
        inferred = runner.invoke(app, [*w, "taxonomy", "infer", "--json"])
        assert inferred.exit_code == 0, inferred.output
        diff = {(d["change"], d["where"]) for d in json.loads(inferred.output)["diff"]}
        assert ("new_event", "events.signed_up") in diff
        assert runner.invoke(app, [*w, "taxonomy", "check"]).exit_code == 0
        token = Workspace(ws.path).config.admin_token
        unauth = httpx.get(f"http://127.0.0.1:{port}/api/taxonomy/violations")
        assert unauth.status_code == 401
        ok = httpx.get(f"http://127.0.0.1:{port}/api/taxonomy/violations",
                       headers={"Authorization": f"Bearer {token}"})
        assert ok.status_code == 200 and ok.json() == []
        bad_mode = httpx.put(f"http://127.0.0.1:{port}/api/taxonomy", params={"mode": "lenient"},
                             content=TAXONOMY.encode(), headers={"Authorization": f"Bearer {token}"})
        assert bad_mode.status_code == 400 and bad_mode.json()["where"] == "query.mode"
        bad_yaml = httpx.put(f"http://127.0.0.1:{port}/api/taxonomy", content=b"events: [",
                             headers={"Authorization": f"Bearer {token}"})
        assert bad_yaml.status_code == 400 and bad_yaml.json()["where"].startswith("taxonomy.yaml:")
    finally:
        server.stop()
