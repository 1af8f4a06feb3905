"""`segmint import`: JSONL messages and CSV / Parquet through a column mapping; idempotent; rejects kept."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from segmint.cli import app
from segmint.cli.common import SERVER_FILE
from segmint.errors import InvalidInput
from segmint.ingest.files import import_jsonl_file, import_table_file
from segmint.ingest.tabular import load_mapping
from segmint.workspace import Workspace


def _q(ws: Workspace, sql: str) -> list[dict]:
    return ws.store.query(sql).to_pylist()


def _jsonl(path: Path, lines: list) -> Path:
    path.write_text("\n".join(x if isinstance(x, str) else json.dumps(x) for x in lines) + "\n")
    return path


def test_jsonl_import_rejects_bad_lines_and_is_idempotent(workspace: Workspace, tmp_path: Path) -> None:
    f = _jsonl(
        tmp_path / "msgs.jsonl",
        [
            {
                "type": "track",
                "anonymousId": "a1",
                "event": "product_viewed",
                "timestamp": "2026-10-01T00:00:00Z",
                "properties": {"price": 1000},
            },
            {
                "type": "identify",
                "anonymousId": "a1",
                "userId": "u1",
                "traits": {"gender": "F"},
                "timestamp": "2026-10-01T00:01:00Z",
            },
            "{not json",
            {"type": "track", "userId": "u2", "timestamp": "2026-10-01T00:02:00Z"},  # no event
            {
                "userId": "u2",
                "event": "cart_added",
                "messageId": "m-given",
                "timestamp": "2026-10-02T00:00:00Z",
            },
        ],
    )
    res = import_jsonl_file(workspace.store, f)
    assert (res.rows, res.imported, res.duplicates, res.rejected) == (5, 3, 0, 2)
    rows = _q(workspace, "SELECT event, user_id FROM events ORDER BY ts")
    # the anonymous view is stitched to u1 by the identify in the same file
    assert rows == [
        {"event": "product_viewed", "user_id": "u1"},
        {"event": "$identify", "user_id": "u1"},
        {"event": "cart_added", "user_id": "u2"},
    ]
    assert _q(workspace, "SELECT traits->>'gender' AS g FROM profiles WHERE user_id = 'u1'") == [{"g": "F"}]
    rej = {r["field"]: r["reason"] for r in workspace.store.rejected()}
    assert rej["msgs.jsonl:3"].startswith("invalid JSON")
    assert rej["msgs.jsonl:4: event"] == "event: required for track"

    again = import_jsonl_file(workspace.store, f)
    assert (again.imported, again.duplicates, again.rejected) == (0, 3, 2)
    assert _q(workspace, "SELECT count(*) AS n FROM events") == [{"n": 3}]


def _csv(path: Path) -> Path:
    path.write_text(
        "uid,name,when,product_id,price,note\n"
        "u1,order_completed,2026-11-01T10:00:00+09:00,p1,1000,x\n"
        "u2,order_completed,2026-11-01 02:00:00,p2,2500.5,y\n"
        ",order_completed,2026-11-01 02:00:00,p3,1,z\n"
        "u3,order_completed,not a date,p4,3,w\n"
        "u1,order_completed,2026-11-03T00:00:00Z,p5,700,v\n"
    )
    return path


def test_csv_mapping_rejects_rows_and_fills_typed_columns(workspace: Workspace, tmp_path: Path) -> None:
    workspace.store.ensure_property_columns({"price": "number"})
    mapping = load_mapping(None, pairs=["uid=user_id", "name=event", "when=timestamp", "note=-"])
    res = import_table_file(workspace.store, _csv(tmp_path / "orders.csv"), "csv", mapping)
    assert (res.rows, res.imported, res.rejected) == (5, 3, 2)
    rows = _q(
        workspace,
        "SELECT user_id, ts::VARCHAR AS ts, p_price, properties->>'product_id' AS pid, "
        "properties->>'note' AS note FROM events ORDER BY ts",
    )
    assert rows == [
        {"user_id": "u1", "ts": "2026-11-01 01:00:00", "p_price": 1000.0, "pid": "p1", "note": None},
        {"user_id": "u2", "ts": "2026-11-01 02:00:00", "p_price": 2500.5, "pid": "p2", "note": None},
        {"user_id": "u1", "ts": "2026-11-03 00:00:00", "p_price": 700.0, "pid": "p5", "note": None},
    ]
    prof = _q(workspace, "SELECT first_seen::VARCHAR AS f, last_seen::VARCHAR AS l FROM profiles WHERE user_id='u1'")
    assert prof == [{"f": "2026-11-01 01:00:00", "l": "2026-11-03 00:00:00"}]
    rej = {r["field"]: r for r in workspace.store.rejected()}
    assert rej["orders.csv:4: user_id"]["reason"].startswith("user_id or anonymous_id")
    assert rej["orders.csv:5: timestamp"]["reason"] == 'timestamp: cannot parse "not a date"'
    assert json.loads(rej["orders.csv:5: timestamp"]["payload"])["uid"] == "u3"

    again = import_table_file(workspace.store, tmp_path / "orders.csv", "csv", mapping)
    assert (again.imported, again.duplicates) == (0, 3)
    assert _q(workspace, "SELECT count(*) AS n FROM events") == [{"n": 3}]


def test_same_row_in_two_files_is_one_event(workspace: Workspace, tmp_path: Path) -> None:
    a = tmp_path / "a.parquet"
    b = tmp_path / "b.parquet"
    t = pa.table(
        {
            "user_id": ["u1", "u2"],
            "ts": pa.array([1_700_000_000, 1_700_000_100], pa.int64()),
            "sku": ["s1", "s2"],
        }
    )
    pq.write_table(pa.concat_tables([t, t.slice(0, 1)]), a)  # the first row twice in one file
    pq.write_table(t.slice(1), b)  # the second row again, in another file
    mapping = load_mapping(None, event="product_viewed")
    first = import_table_file(workspace.store, a, "parquet", mapping)
    assert (first.rows, first.imported, first.duplicates) == (3, 2, 1)
    res = import_table_file(workspace.store, b, "parquet", mapping)
    assert (res.imported, res.duplicates) == (0, 1)
    rows = _q(workspace, "SELECT event, ts::VARCHAR AS ts FROM events ORDER BY ts")
    assert rows == [
        {"event": "product_viewed", "ts": "2023-11-14 22:13:20"},
        {"event": "product_viewed", "ts": "2023-11-14 22:15:00"},
    ]


def test_identify_import_sets_profile_traits(workspace: Workspace, tmp_path: Path) -> None:
    f = tmp_path / "people.parquet"
    pq.write_table(pa.table({"id": ["u1", "u2"], "age": [27, 41], "gender": ["F", "M"]}), f)
    mapping = load_mapping(None, pairs=["id=user_id", "gender=traits.sex"], type_="identify")
    res = import_table_file(workspace.store, f, "parquet", mapping)
    assert res.imported == 2
    rows = _q(workspace, "SELECT user_id, traits->>'age' AS age, traits->>'sex' AS sex FROM profiles ORDER BY 1")
    assert rows == [{"user_id": "u1", "age": "27", "sex": "F"}, {"user_id": "u2", "age": "41", "sex": "M"}]
    assert import_table_file(workspace.store, f, "parquet", mapping).imported == 0


def test_mapping_errors_name_the_column(workspace: Workspace, tmp_path: Path) -> None:
    f = _csv(tmp_path / "orders.csv")
    with pytest.raises(InvalidInput, match=r"unknown column 'nope'.*uid, name, when, product_id, price, note"):
        import_table_file(workspace.store, f, "csv", load_mapping(None, pairs=["nope=user_id"]))
    with pytest.raises(InvalidInput, match="no event column"):
        import_table_file(workspace.store, f, "csv", load_mapping(None, pairs=["uid=user_id"]))
    with pytest.raises(InvalidInput, match="no value of column 'note' parses as a timestamp"):
        import_table_file(
            workspace.store,
            f,
            "csv",
            load_mapping(None, pairs=["uid=user_id", "name=event", "note=timestamp"]),
        )
    with pytest.raises(InvalidInput, match="unknown field 'userid'"):
        load_mapping(None, pairs=["uid=userid"])


def test_cli_import(workspace: Workspace, tmp_path: Path) -> None:
    path = str(workspace.path)
    workspace.close()
    f = _csv(tmp_path / "orders.csv")
    runner = CliRunner()
    args = [
        "-w",
        path,
        "import",
        str(f),
        "--map",
        "uid=user_id",
        "--map",
        "name=event",
        "--map",
        "when=timestamp",
    ]
    out = runner.invoke(app, args)
    assert out.exit_code == 0, out.output
    assert "3 imported, 0 duplicates skipped, 2 rejected" in out.output
    out = runner.invoke(app, args)
    assert "0 imported, 3 duplicates skipped, 2 rejected" in out.output

    out = runner.invoke(app, ["-w", path, "import", str(tmp_path / "missing.csv")])
    assert out.exit_code == 2 and "no such file" in out.output

    # a live server holds the store: the command refuses and says what to do
    (Path(path) / SERVER_FILE).write_text(json.dumps({"pid": os.getpid(), "url": "http://127.0.0.1:9"}))
    out = runner.invoke(app, args)
    assert out.exit_code == 2 and "stop it" in out.output


def test_cli_jsonl_import_applies_strict_taxonomy(workspace: Workspace, tmp_path: Path) -> None:
    workspace.taxonomy_path.write_text(
        "version: 1\nevents:\n  order_completed:\n    properties:\n"
        "      revenue: {type: number, required: true, column: true}\n"
    )
    workspace.config.taxonomy.mode = "strict"
    workspace.save()
    path = str(workspace.path)
    workspace.close()
    f = _jsonl(
        tmp_path / "orders.jsonl",
        [
            {"userId": "u1", "event": "order_completed", "properties": {"revenue": 1200.5}},
            {"userId": "u2", "event": "order_completed", "properties": {}},
        ],
    )
    out = CliRunner().invoke(app, ["-w", path, "import", str(f)])
    assert out.exit_code == 0, out.output
    assert "1 imported, 0 duplicates skipped, 1 rejected" in out.output
    ws = Workspace(path)
    try:
        assert _q(ws, "SELECT user_id, p_revenue FROM events") == [{"user_id": "u1", "p_revenue": 1200.5}]
        assert [(r["field"], r["reason"]) for r in ws.store.rejected()] == [
            ("orders.jsonl:2: properties.revenue", "required property is missing")
        ]
    finally:
        ws.close()


def test_mapping_file_and_several_files(workspace: Workspace, tmp_path: Path) -> None:
    mapping = tmp_path / "orders.yaml"
    mapping.write_text(
        "type: track\nevent: order_completed\ncolumns: {uid: user_id, when: timestamp, name: '-'}\n"
        "properties: [price]\n"
    )
    f1 = _csv(tmp_path / "a.csv")
    f2 = tmp_path / "b.csv"
    f2.write_text("uid,name,when,product_id,price,note\nu7,x,2026-11-05T00:00:00Z,p9,10,q\n")
    path = str(workspace.path)
    workspace.close()
    out = CliRunner().invoke(app, ["-w", path, "import", str(f1), str(f2), "--mapping", str(mapping)])
    assert out.exit_code == 0, out.output
    assert "total: 4 imported, 0 duplicates skipped, 2 rejected" in out.output
    ws = Workspace(path)
    try:
        rows = _q(ws, "SELECT DISTINCT event, properties::VARCHAR AS p FROM events WHERE user_id = 'u7'")
        assert rows == [{"event": "order_completed", "p": '{"price":10}'}]
    finally:
        ws.close()
    bad = tmp_path / "bad.yaml"
    bad.write_text("columns: [1, 2]\n")
    out = CliRunner().invoke(app, ["-w", path, "import", str(f1), "--mapping", str(bad)])
    assert out.exit_code == 2 and "bad.yaml" in out.output and "columns" in out.output
