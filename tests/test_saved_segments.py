"""Saved segments: CRUD with versions, nested segments and cycles, catalog errors, export, and apply."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from saved_fixtures import shop_workspace
from segmint.cli import app
from segmint.errors import Conflict, InvalidInput, NotFound, PayloadTooLarge
from segmint.segments import saved
from segmint.segments.errors import SegmentError, SegmentSyntaxError
from segmint.segments.export import export_members
from segmint.segments.reference import SegmentCycleError
from segmint.workspace import Workspace


@pytest.fixture
def ws(tmp_path: Path) -> Workspace:
    """The small shop workspace."""
    w = shop_workspace(tmp_path / "ws")
    yield w
    w.close()


@pytest.fixture
def cat(ws: Workspace):
    """Its catalog (events, properties and traits seen)."""
    return saved.workspace_catalog(ws)


def test_create_get_list_korean_name(ws: Workspace, cat) -> None:
    seg = saved.create_segment(ws.appdb, "휴면 고객", "did not app_opened in last 30 days",
                               description="30일 미방문", labels=["retention"], catalog=cat)
    assert seg.version == 1 and seg.kind == "dynamic"
    assert seg.text == "did not app_opened in last 30 days"
    assert seg.definition["kind"] == "performed"
    got = saved.get_segment(ws.appdb, "휴면 고객")
    assert got.description == "30일 미방문" and got.labels == ["retention"]
    assert [s.name for s in saved.list_segments(ws.appdb)] == ["휴면 고객"]
    assert saved.list_segments(ws.appdb, label="nope") == []
    assert saved.segment_members(ws, "휴면 고객") == ["u2", "u3"]


def test_duplicate_name_conflicts(ws: Workspace, cat) -> None:
    saved.create_segment(ws.appdb, "a", "did app_opened", catalog=cat)
    with pytest.raises(Conflict, match="exists already"):
        saved.create_segment(ws.appdb, "a", "did cart_added", catalog=cat)


def test_every_update_is_a_new_version(ws: Workspace, cat) -> None:
    saved.create_segment(ws.appdb, "s", "did app_opened in last 7 days", catalog=cat)
    seg, changed = saved.update_segment(ws.appdb, "s", definition="did app_opened in last 90 days", catalog=cat)
    assert changed and seg.version == 2
    seg, changed = saved.update_segment(ws.appdb, "s", description="wider", catalog=cat)
    assert changed and seg.version == 3 and seg.text == "did app_opened in last 90 days"
    _, changed = saved.update_segment(ws.appdb, "s", definition="did app_opened in last 90 days", catalog=cat)
    assert not changed
    vs = saved.segment_versions(ws.appdb, "s")
    assert [v.version for v in vs] == [1, 2, 3]
    assert vs[0].text == "did app_opened in last 7 days"  # the old definition is kept, not overwritten
    assert saved.get_segment(ws.appdb, "s", version=1).text == "did app_opened in last 7 days"
    assert saved.segment_members(ws, "s") == ["u1", "u2", "u3", "u4"]
    with pytest.raises(NotFound):
        saved.get_segment(ws.appdb, "s", version=9)


def test_json_tree_definition_round_trips(ws: Workspace, cat) -> None:
    tree = {"kind": "trait", "name": "gender", "op": "eq", "value": {"kind": "value", "value": "F"}}
    seg = saved.create_segment(ws.appdb, "women", tree, catalog=cat)
    assert seg.text == 'trait gender = "F"'
    assert saved.segment_members(ws, "women") == ["u1", "u3"]
    with pytest.raises(InvalidInput) as exc:
        saved.create_segment(ws.appdb, "bad", {"kind": "trait", "name": "gender", "op": "eq"}, catalog=cat)
    assert exc.value.where.startswith("definition")


def test_nested_segments_and_cycles(ws: Workspace, cat) -> None:
    saved.create_segment(ws.appdb, "휴면", "did not app_opened in last 30 days", catalog=cat)
    saved.create_segment(ws.appdb, "휴면 여성", 'in segment "휴면" and trait gender = "F"', catalog=cat)
    assert saved.segment_members(ws, "휴면 여성") == ["u3"]
    with pytest.raises(SegmentCycleError, match="휴면 -> 휴면 여성 -> 휴면"):
        saved.update_segment(ws.appdb, "휴면", definition='in segment "휴면 여성"', catalog=cat)
    with pytest.raises(SegmentCycleError, match="self -> self"):
        saved.create_segment(ws.appdb, "self", 'in segment "self"', catalog=cat)
    with pytest.raises(NotFound, match="no saved segment"):
        saved.create_segment(ws.appdb, "x", 'in segment "없음"', catalog=cat)
    with pytest.raises(Conflict, match="used by 휴면 여성"):
        saved.delete_segment(ws.appdb, "휴면")
    saved.delete_segment(ws.appdb, "휴면 여성")
    saved.delete_segment(ws.appdb, "휴면")
    assert saved.list_segments(ws.appdb) == []
    with pytest.raises(NotFound):
        saved.segment_versions(ws.appdb, "휴면")


def test_unknown_names_error_with_suggestions(ws: Workspace, cat) -> None:
    with pytest.raises(SegmentSyntaxError) as exc:
        saved.create_segment(ws.appdb, "x", "did app_opened\nand did app_opend", catalog=cat)
    assert exc.value.where == "2:9" and exc.value.suggestion == "app_opened"
    with pytest.raises(SegmentSyntaxError, match="did you mean gender"):
        saved.create_segment(ws.appdb, "x", 'trait gendr = "F"', catalog=cat)
    with pytest.raises(SegmentSyntaxError, match="did you mean revenue"):
        saved.create_segment(ws.appdb, "x", "did order_completed where revenu > 10", catalog=cat)
    tree = {"kind": "performed", "event": "cart_add"}
    with pytest.raises(SegmentError, match="did you mean cart_added"):
        saved.create_segment(ws.appdb, "x", tree, catalog=cat)
    assert saved.list_segments(ws.appdb) == []


def test_bad_meta_and_sizes(ws: Workspace) -> None:
    with pytest.raises(InvalidInput, match="kind"):
        saved.create_segment(ws.appdb, "x", "did app_opened", kind="frozen")
    with pytest.raises(InvalidInput, match="surrounding spaces"):
        saved.create_segment(ws.appdb, " x", "did app_opened")
    with pytest.raises(PayloadTooLarge):
        saved.create_segment(ws.appdb, "x", "did app_opened or " * 2000 + "did app_opened")
    with pytest.raises(InvalidInput, match="nested too deeply"):
        saved.create_segment(ws.appdb, "x", "(" * 5000 + "did app_opened" + ")" * 5000)
    with pytest.raises(InvalidInput, match="empty"):
        saved.create_segment(ws.appdb, "x", "   ")


def test_export_csv_and_parquet(ws: Workspace, cat) -> None:
    saved.create_segment(ws.appdb, "all", "did app_opened", catalog=cat)
    tree = saved.segment_tree(ws.appdb, "all")
    rows = list(csv.DictReader(io.StringIO(export_members(ws.store, tree, "csv", ["gender", "name", "vip"]).decode())))
    assert [r["user_id"] for r in rows] == ["u1", "u2", "u3", "u4"]
    assert set(rows[0]) == {"user_id", "first_seen", "last_seen", "gender", "name", "vip"}
    assert rows[0]["name"] == 'Kim, "Ji"; 민' and rows[0]["gender"] == "F"
    assert rows[2]["vip"] == "true" and rows[0]["vip"] == ""
    assert rows[0]["first_seen"] and rows[0]["last_seen"]
    table = pq.read_table(io.BytesIO(export_members(ws.store, tree, "parquet", ["age", "region"])))
    assert table.column_names == ["user_id", "first_seen", "last_seen", "age", "region"]
    assert table.column("age").to_pylist() == [25, 31, 44, 22]
    assert table.column("region").to_pylist() == ["서울", "부산", "경기", None]
    assert export_members(ws.store, tree, "ids") == b"u1\nu2\nu3\nu4\n"
    with pytest.raises(InvalidInput, match="always exported"):
        export_members(ws.store, tree, "csv", ["user_id"])
    with pytest.raises(InvalidInput, match="quote"):
        export_members(ws.store, tree, "csv", ['a"; DROP TABLE profiles; --'])


# ---------------------------------------------------------------- segments as code


HEAD = "name: 활성\ndescription: active\nlabels: [core]\n"


def _write(folder: Path, fname: str, body: str) -> None:
    folder.mkdir(exist_ok=True)
    (folder / fname).write_text(body, encoding="utf-8")


def _cli(ws: Workspace, *args: str):
    return CliRunner().invoke(app, ["--workspace", str(ws.path), *args])


def test_apply_dry_run_then_apply_then_update_and_prune(ws: Workspace, tmp_path: Path) -> None:
    folder = tmp_path / "segs"
    _write(folder, "a.yaml", HEAD + "definition: did app_opened in last 7 days\n")
    _write(folder, "b.yaml", "name: 활성 여성\ndefinition: |\n  in segment \"활성\"\n  and trait gender = \"F\"\n")
    ws.close()
    res = _cli(ws, "apply", str(folder), "--dry-run")
    assert res.exit_code == 0, res.output
    assert "would be created: 활성" in res.output and "2 created" in res.output
    assert saved.list_segments(ws.appdb) == []  # dry run changed nothing

    res = _cli(ws, "apply", str(folder))
    assert res.exit_code == 0, res.output
    assert [s.name for s in saved.list_segments(ws.appdb)] == ["활성", "활성 여성"]
    assert saved.segment_members(ws, "활성 여성") == ["u1"]
    ws.close()

    res = _cli(ws, "apply", str(folder), "--json")
    assert json.loads(res.stdout)["counts"] == {"created": 0, "updated": 0, "unchanged": 2, "deleted": 0}

    _write(folder, "a.yaml", HEAD + "definition: did app_opened in last 3 days\n")
    (folder / "b.yaml").unlink()
    res = _cli(ws, "apply", str(folder), "--dry-run", "--prune")
    assert res.exit_code == 0, res.output
    assert "would be updated: 활성" in res.output and "would be deleted: 활성 여성" in res.output
    assert "-did app_opened in last 7 days" in res.output and "+did app_opened in last 3 days" in res.output
    assert saved.get_segment(ws.appdb, "활성").version == 1

    res = _cli(ws, "apply", str(folder))  # without --prune nothing is deleted
    assert res.exit_code == 0 and "1 updated" in res.output
    assert len(saved.list_segments(ws.appdb)) == 2
    res = _cli(ws, "apply", str(folder), "--prune")
    assert res.exit_code == 0 and "1 deleted" in res.output
    assert [s.name for s in saved.list_segments(ws.appdb)] == ["활성"]
    assert [v.version for v in saved.segment_versions(ws.appdb, "활성")] == [1, 2]


def test_apply_rejects_bad_files_and_changes_nothing(ws: Workspace, tmp_path: Path) -> None:
    folder = tmp_path / "segs"
    _write(folder, "ok.yaml", "name: ok\ndefinition: did app_opened\n")
    _write(folder, "typo.yaml", "name: typo\ndefinition: did cart_aded\n")
    ws.close()
    res = _cli(ws, "apply", str(folder))
    assert res.exit_code == 2
    assert "typo.yaml:2:17: unknown event" in res.output and "did you mean cart_added" in res.output
    assert saved.list_segments(ws.appdb) == []
    _write(folder, "typo.yaml", "name: ok\ndefinition: did cart_added\n")
    res = _cli(ws, "apply", str(folder))
    assert res.exit_code == 2 and "also defined in" in res.output
    _write(folder, "typo.yaml", "nam: x\n")
    res = _cli(ws, "apply", str(folder))
    assert res.exit_code == 2 and "unknown keys" in res.output


def test_cli_save_show_versions_export_delete(ws: Workspace, tmp_path: Path) -> None:
    ws.close()
    res = _cli(ws, "segment", "save", "여성", "--text", 'trait gender = "F"', "-l", "demo")
    assert res.exit_code == 0 and "created: 여성 (version 1)" in res.output, res.output
    res = _cli(ws, "segment", "save", "여성", "--text", 'trait gender = "F" and trait age < 30')
    assert "updated: 여성 (version 2)" in res.output
    res = _cli(ws, "segment", "versions", "여성", "--json")
    assert [v["version"] for v in json.loads(res.stdout)] == [1, 2]
    res = _cli(ws, "segment", "show", "여성", "--version", "1")
    assert 'trait gender = "F"' in res.output and "age" not in res.output
    out = tmp_path / "m.csv"
    res = _cli(ws, "segment", "export", "여성", "--traits", "age,region", "-o", str(out))
    assert res.exit_code == 0, res.output
    rows = list(csv.DictReader(out.open(encoding="utf-8")))
    assert [(r["user_id"], r["age"], r["region"]) for r in rows] == [("u1", "25", "서울")]
    res = _cli(ws, "segment", "list", "--json")
    assert [s["name"] for s in json.loads(res.stdout)] == ["여성"]
    res = _cli(ws, "segment", "save", "bad", "--text", "did app_opened where")
    assert res.exit_code == 2 and "error:" in res.output
    res = _cli(ws, "segment", "delete", "여성")
    assert res.exit_code == 0
    res = _cli(ws, "segment", "show", "여성")
    assert res.exit_code == 2 and "no saved segment" in res.output


def test_static_segment_freezes_members_per_version(ws: Workspace, cat) -> None:
    from saved_fixtures import NOW, _ev
    from segmint.store.base import WriteBatch
    from segmint.store.schema import events_to_arrow

    saved.create_segment(ws.appdb, "고정", "did app_opened in last 7 days", kind="static", catalog=cat)
    saved.create_segment(ws.appdb, "live", "did app_opened in last 7 days", catalog=cat)
    assert saved.static_members(ws.appdb, "고정") is None  # not frozen until evaluated
    assert saved.freeze_members(ws.appdb, ws.store, "고정") == ["u1", "u4"]
    assert saved.freeze_members(ws.appdb, ws.store, "live") is None
    ws.store.write(WriteBatch(events=events_to_arrow([_ev(100, "u2", "app_opened", 0.1)])))
    assert saved.segment_members(ws, "고정") == ["u1", "u4"]  # frozen
    assert saved.segment_members(ws, "live") == ["u1", "u2", "u4"]  # live
    assert saved.segment_members(ws, "고정", as_of=NOW) == ["u1", "u2", "u4"]  # as_of evaluates
    rows = list(csv.DictReader(io.StringIO(export_members(
        ws.store, saved.segment_tree(ws.appdb, "고정"), "csv", ["gender"], ids=saved.static_members(ws.appdb, "고정"))
        .decode())))
    assert [(r["user_id"], r["gender"]) for r in rows] == [("u1", "F"), ("u4", "M")]
    saved.update_segment(ws.appdb, "고정", description="v2")  # same definition: the frozen list carries over
    assert saved.static_members(ws.appdb, "고정") == ["u1", "u4"]
    saved.update_segment(ws.appdb, "고정", definition="did app_opened in last 8 days")  # a new definition
    assert saved.static_members(ws.appdb, "고정") is None  # ... freezes anew
    assert saved.freeze_members(ws.appdb, ws.store, "고정") == ["u1", "u2", "u4"]
