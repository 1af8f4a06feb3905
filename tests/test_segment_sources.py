"""`segmint segment eval|sql|explain` on saved segments by name, and `segmint apply` error positions
counted in the YAML file."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from saved_fixtures import shop_workspace
from segmint.cli import app
from segmint.errors import NotFound
from segmint.segments import saved
from segmint.segments.dsl import parse
from segmint.segments.errors import SegmentSyntaxError
from segmint.workspace import Workspace


@pytest.fixture(scope="module")
def ws(tmp_path_factory: pytest.TempPathFactory) -> Workspace:
    """The small shop with two saved segments, one nesting the other (the tests only read it)."""
    w = shop_workspace(tmp_path_factory.mktemp("sources") / "ws")
    cat = saved.workspace_catalog(w)
    saved.create_segment(w.appdb, "recent_visitors", "did app_opened in last 7 days", catalog=cat)
    saved.create_segment(w.appdb, "최근 방문 남성", 'in segment "recent_visitors" and trait gender = "M"', catalog=cat)
    w.close()
    yield w
    w.close()


def _cli(ws: Workspace, *args: str):
    return CliRunner().invoke(app, ["--workspace", str(ws.path), *args])


def test_eval_by_bare_name_and_saved_prefix(ws: Workspace) -> None:
    res = _cli(ws, "segment", "eval", "recent_visitors")
    assert res.exit_code == 0, res.output
    assert res.stdout.split() == ["u1", "u4"]
    res = _cli(ws, "segment", "eval", "saved:recent_visitors", "--format", "count")
    assert res.stdout.strip() == "2"
    # a name with a space and Korean letters, nesting another saved segment (inlined)
    res = _cli(ws, "segment", "eval", "최근 방문 남성")
    assert res.exit_code == 0, res.output
    assert res.stdout.split() == ["u4"]


def test_eval_of_segment_files_text_tree_and_bad_input(ws: Workspace, tmp_path: Path) -> None:
    seg = tmp_path / "seg.yaml"  # a segments-as-code file: name, description, definition as text
    seg.write_text("name: x\ndescription: d\ndefinition: |\n  did app_opened in last 7 days\n", encoding="utf-8")
    res = _cli(ws, "segment", "eval", f"@{seg}")
    assert res.exit_code == 0 and res.stdout.split() == ["u1", "u4"], res.output
    tree = tmp_path / "tree.json"  # a JSON tree in a file
    tree.write_text(parse('trait gender = "M"').model_dump_json(), encoding="utf-8")
    res = _cli(ws, "segment", "eval", f"@{tree}")
    assert res.exit_code == 0, res.output
    males = set(res.stdout.split())
    assert males and males == set(_cli(ws, "segment", "eval", 'trait gender = "M"').stdout.split())
    bad = tmp_path / "bad.json"  # a malformed tree is a clear error naming the file, never a traceback
    bad.write_text('{"type": "trait", "name": 3}', encoding="utf-8")
    res = _cli(ws, "segment", "eval", f"@{bad}")
    assert res.exit_code == 2 and f"{bad}" in res.output and "Traceback" not in res.output
    broken = tmp_path / "broken.yaml"
    broken.write_text("definition: [", encoding="utf-8")
    res = _cli(ws, "segment", "eval", f"@{broken}")
    assert res.exit_code == 2 and "not valid YAML" in res.output


def test_text_still_means_text_and_nested_refs_resolve(ws: Workspace) -> None:
    res = _cli(ws, "segment", "eval", "did app_opened in last 50 days", "--format", "count")
    assert res.stdout.strip() == "3"
    res = _cli(ws, "segment", "eval", 'in segment "recent_visitors" and trait gender = "F"')
    assert res.exit_code == 0, res.output
    assert res.stdout.split() == ["u1"]


def test_unknown_name_is_the_syntax_error(ws: Workspace) -> None:
    res = _cli(ws, "segment", "eval", "no_such_segment")
    assert res.exit_code == 2 and "error:" in res.output and "1:" in res.output
    res = _cli(ws, "segment", "eval", "saved:no_such_segment")
    assert res.exit_code == 2 and "no saved segment" in res.output


def test_sql_and_explain_by_name(ws: Workspace) -> None:
    res = _cli(ws, "segment", "sql", "최근 방문 남성")
    assert res.exit_code == 0, res.output
    assert "app_opened" in res.stdout and "gender" in res.stdout and "in segment" not in res.stdout.lower()
    res = _cli(ws, "segment", "explain", "saved:최근 방문 남성", "--user", "u4")
    assert res.exit_code == 0, res.output
    assert "true" in res.stdout and "false" not in res.stdout
    res = _cli(ws, "segment", "explain", "recent_visitors", "--user", "u2")
    assert res.exit_code == 0 and "false" in res.stdout


def test_resolve_source_inlines_nested_segments(ws: Workspace) -> None:
    from segmint.cli.segment import resolve_source
    from segmint.segments import model as m

    tree = resolve_source("saved:최근 방문 남성", ws)
    assert not any(isinstance(n, m.InSegment) for n in _walk(tree))
    with pytest.raises(NotFound):
        resolve_source("saved:없음", ws)
    with pytest.raises(SegmentSyntaxError):
        resolve_source("did app_opened where", ws)


def _walk(node):
    yield node
    for child in getattr(node, "items", None) or []:
        yield from _walk(child)
    for attr in ("item", "condition"):
        if getattr(node, attr, None) is not None:
            yield from _walk(getattr(node, attr))


def _write(folder: Path, fname: str, body: str) -> Path:
    folder.mkdir(exist_ok=True)
    (folder / fname).write_text(body, encoding="utf-8")
    return folder / fname


@pytest.mark.parametrize(
    ("body", "line", "column"),
    [
        # literal block: line 4 of the file, indented two spaces; `cart_aded` at text 2:9
        ("name: t\nkind: dynamic\ndefinition: |\n  did app_opened\n  and did cart_aded in last 7 days\n", 5, 11),
        # block with a blank first line and deeper indentation
        ("name: t\ndefinition: |\n\n    did app_opened\n    and did cart_aded\n", 5, 13),
        # one-line plain scalar: `did cart_aded` after `definition: `
        ("name: t\ndefinition: did cart_aded\n", 2, 17),
        # one-line double-quoted scalar
        ('name: t\ndescription: x\ndefinition: "did cart_aded"\n', 3, 18),
        # a syntax error (not a name): `where` with nothing after it, at the end of line 4
        ("name: t\ndefinition: |\n  did app_opened\n  and did cart_added where\n", 4, 27),
    ],
)
def test_apply_errors_point_into_the_yaml_file(ws: Workspace, tmp_path: Path, body: str, line: int,
                                               column: int) -> None:
    path = _write(tmp_path / "segs", "t.yaml", body)
    with pytest.raises(SegmentSyntaxError) as info:
        saved.apply_dir(ws, tmp_path / "segs")
    exc = info.value
    assert (exc.line, exc.column) == (line, column), str(exc)
    assert exc.where == f"{path}:{line}:{column}"
    src_line = body.splitlines()[line - 1]
    assert exc.display.splitlines()[0] == f"  {src_line}"
    assert exc.display.splitlines()[1].index("^") == column + 1  # two spaces of margin, 1-based column
    ws.close()
    res = _cli(ws, "apply", str(tmp_path / "segs"))
    assert res.exit_code == 2 and f"t.yaml:{line}:{column}:" in res.output


def test_apply_folded_definition_keeps_definition_positions(ws: Workspace, tmp_path: Path) -> None:
    path = _write(tmp_path / "segs", "t.yaml", "name: t\ndefinition: >\n  did app_opened\n  and did cart_aded\n")
    with pytest.raises(SegmentSyntaxError) as info:
        saved.apply_dir(ws, tmp_path / "segs")
    assert info.value.where.startswith(f"{path}: definition 1:")


def test_a_near_miss_name_suggests_the_saved_segment(ws: Workspace) -> None:
    res = _cli(ws, "segment", "eval", "recent_visitor")
    assert res.exit_code == 2
    assert "did you mean saved:recent_visitors?" in res.output


def test_apply_through_a_running_server_gives_file_positions(served, tmp_path: Path) -> None:
    folder = tmp_path / "segs"
    path = _write(folder, "t.yaml", "name: t\ndefinition: |\n  did app_opened\n  and did cart_added where\n")
    res = CliRunner().invoke(app, ["--workspace", str(served.workspace), "apply", str(folder)])
    assert res.exit_code == 2
    assert f"{path}:4:27:" in res.output.replace("\n", ""), res.output

