"""`segmint segment save|list|show|delete|versions|export` and `segmint apply DIR`: saved segments and
segments as code. With a server running, evaluation and catalog checks go through its REST API."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from segmint.cli.common import console, handle_errors, open_workspace, print_json, running_server, server_request
from segmint.errors import InvalidInput, SegmintError
from segmint.segments import saved
from segmint.segments.dsl import to_text
from segmint.workspace import Workspace

_server = server_request  # the running server's admin API (cli/common.py); also used by segment_live/analysis


def _local_catalog(ws: Workspace) -> Any:
    store = ws.open_store_read_only()
    try:
        return saved.workspace_catalog(ws, store)
    finally:
        store.close()


def _freeze_local(ws: Workspace, names: list[str]) -> None:
    """Freeze the members of the static ones among these segments (store opened read-only)."""
    static = [n for n in names if saved.get_segment(ws.appdb, n).kind == "static"]
    if not static:
        return
    store = ws.open_store_read_only()
    try:
        for n in static:
            saved.freeze_members(ws.appdb, store, n)
    finally:
        store.close()


def _segment_group(app: typer.Typer) -> typer.Typer:
    """The `segment` command group (cli/segment.py's when registered first, else a new one)."""
    for info in app.registered_groups:
        if info.name == "segment" and info.typer_instance is not None:
            return info.typer_instance
    group = typer.Typer(help="Segments: define, save, evaluate and export.", no_args_is_help=True)
    app.add_typer(group, name="segment")
    return group


def _definition(text: str | None, file: Path | None) -> str | dict[str, Any]:
    if (text is None) == (file is None):
        raise InvalidInput("give the definition as --text TEXT or --file PATH (one of them)", where="definition")
    if text is not None:
        return text
    assert file is not None
    try:
        raw = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise InvalidInput(f"cannot read: {exc.strerror}", where=str(file)) from None
    if file.suffix == ".json":
        try:
            return json.loads(raw)
        except ValueError as exc:
            raise InvalidInput(f"not JSON: {exc}", where=str(file)) from None
    return raw


def save(ctx: typer.Context, name: str = typer.Argument(..., help="Segment name (Korean allowed)."),
         text: str = typer.Option(None, "--text", "-t", help="Definition in the segment language."),
         file: Path = typer.Option(None, "--file", "-f", help="File with the text (or a .json tree)."),
         description: str = typer.Option("", "--description", "-d"),
         kind: str = typer.Option("dynamic", "--kind", help="dynamic or static."),
         label: list[str] = typer.Option([], "--label", "-l", help="A label (repeatable)."),
         as_json: bool = typer.Option(False, "--json", help="JSON output.")) -> None:
    """Create a segment or save a new version of it."""
    ws = open_workspace(ctx)
    definition = _definition(text, file)
    url = running_server(ws)
    if url:
        out = _server(ws, "PUT", url, f"/api/segments/{name}", body={
            "definition": definition, "description": description, "kind": kind, "labels": label})
        status = out.pop("status")
    else:
        seg, status = saved.save_segment(ws.appdb, name, definition, description=description, kind=kind,
                                         labels=label, catalog=_local_catalog(ws))
        _freeze_local(ws, [name])
        out = seg.to_dict()
    if as_json:
        print_json({**out, "status": status})
    else:
        console.print(f"{status}: {name} (version {out['version']})", highlight=False)


def list_cmd(ctx: typer.Context, label: str = typer.Option(None, "--label", "-l"),
             as_json: bool = typer.Option(False, "--json", help="JSON output.")) -> None:
    """Saved segments with their version and labels."""
    segs = saved.list_segments(open_workspace(ctx).appdb, label)
    if as_json:
        print_json([s.to_dict() for s in segs])
        return
    table = Table("name", "kind", "version", "labels", "updated", "definition")
    for s in segs:
        table.add_row(s.name, s.kind, str(s.version), ", ".join(s.labels), str(s.updated_at)[:19],
                      s.text.replace("\n", " ")[:80])
    console.print(table)


def show(ctx: typer.Context, name: str, version: int = typer.Option(None, "--version", "-v", min=1),
         as_json: bool = typer.Option(False, "--json", help="JSON output.")) -> None:
    """One saved segment: description, kind, labels and the text of its definition."""
    s = saved.get_segment(open_workspace(ctx).appdb, name, version)
    if as_json:
        print_json(s.to_dict())
        return
    console.print(f"{s.name}  (version {s.version}, {s.kind}, labels: {', '.join(s.labels) or '-'})",
                  highlight=False, markup=False)
    if s.description:
        console.print(s.description, highlight=False, markup=False)
    console.print(s.text, highlight=False, markup=False)


def delete(ctx: typer.Context, name: str) -> None:
    """Delete a segment and its version history."""
    saved.delete_segment(open_workspace(ctx).appdb, name)
    console.print(f"deleted: {name}", highlight=False)


def versions(ctx: typer.Context, name: str, as_json: bool = typer.Option(False, "--json")) -> None:
    """Every version of a segment, oldest first."""
    vs = saved.segment_versions(open_workspace(ctx).appdb, name)
    if as_json:
        print_json([v.to_dict() for v in vs])
        return
    table = Table("version", "saved", "kind", "definition")
    for v in vs:
        table.add_row(str(v.version), str(v.created_at)[:19], v.kind, v.text.replace("\n", " ")[:100])
    console.print(table)


def export(ctx: typer.Context, name: str,
           fmt: str = typer.Option("csv", "--format", help="ids, csv or parquet."),
           traits: str = typer.Option("", "--traits", help="Comma-separated traits to add as columns."),
           output: Path = typer.Option(None, "--output", "-o", help="File to write (default stdout).")) -> None:
    """Export the members of a saved segment (with first_seen, last_seen and chosen traits)."""
    from segmint.segments.export import export_members

    if fmt not in ("ids", "csv", "parquet"):
        raise InvalidInput(f"format {fmt!r}; expected ids, csv or parquet", where="--format")
    if fmt == "parquet" and output is None:
        raise InvalidInput("Parquet is binary: give --output FILE", where="--output")
    ws = open_workspace(ctx)
    names = [t.strip() for t in traits.split(",") if t.strip()]
    url = running_server(ws)
    if url:
        route = f"/api/segments/{name}/members"
        if fmt == "ids":
            data = "".join(f"{u}\n" for u in _server(ws, "GET", url, route, format="ids")["members"]).encode()
        else:
            data = _server(ws, "GET", url, route, raw=True, format=fmt, traits=",".join(names))
    else:
        tree = saved.segment_tree(ws.appdb, name)
        frozen = saved.static_members(ws.appdb, name)
        store = ws.open_store_read_only()
        try:
            data = saved.guarded(export_members, store, tree, fmt, names, None, frozen)
        finally:
            store.close()
    if output is None:
        typer.echo(data.decode(), nl=False)
    else:
        output.write_bytes(data)
        console.print(f"wrote {output} ({len(data)} bytes)", highlight=False)


def apply(ctx: typer.Context, path: Path = typer.Argument(..., help="Folder of segment YAML files."),
          dry_run: bool = typer.Option(False, "--dry-run", help="Show what would change; change nothing."),
          prune: bool = typer.Option(False, "--prune", help="Delete saved segments that have no file."),
          as_json: bool = typer.Option(False, "--json", help="JSON output.")) -> None:
    """Sync saved segments to a folder of YAML files (segments as code)."""
    ws = open_workspace(ctx)
    files = saved.read_segment_dir(path)
    url = running_server(ws)
    if url:  # the server holds the store: it checks names against its catalog; app-state writes stay local
        for f in files:
            text = f.definition if isinstance(f.definition, str) else to_text(
                saved.parse_definition(f.definition, None, where=f"{f.path}: definition")[0])
            try:
                _server(ws, "POST", url, "/api/segments/parse", body={"text": text})
            except SegmintError as exc:
                raise SegmintError(exc.message, where=f.locate(exc.where)) from None
        catalog = None
    else:
        catalog = _local_catalog(ws)
    result = saved.apply_files(ws.appdb, files, dry_run=dry_run, prune=prune, catalog=catalog)
    changed = [c.name for c in result.changes if c.action in ("created", "updated")]
    if not dry_run and changed:
        if url:
            for n in changed:
                if saved.get_segment(ws.appdb, n).kind == "static":
                    _server(ws, "POST", url, f"/api/segments/{n}/freeze")
        else:
            _freeze_local(ws, changed)
    if as_json:
        print_json(result.to_dict())
        return
    for c in result.changes:
        if c.action == "unchanged":
            continue
        console.print(f"{'would be ' if dry_run else ''}{c.action}: {c.name}", highlight=False, markup=False)
        if c.diff:
            console.print(c.diff, highlight=False, markup=False)
    n = result.counts()
    console.print(f"{'dry run: ' if dry_run else ''}{n['created']} created, {n['updated']} updated, "
                  f"{n['unchanged']} unchanged, {n['deleted']} deleted", highlight=False)


def register(app: typer.Typer) -> None:
    """Add the saved-segment commands to `segment` and `apply` at the top level."""
    group = _segment_group(app)
    group.command("save")(handle_errors(save))
    group.command("list")(handle_errors(list_cmd))
    group.command("show")(handle_errors(show))
    group.command("delete")(handle_errors(delete))
    group.command("versions")(handle_errors(versions))
    group.command("export")(handle_errors(export))
    app.command("apply")(handle_errors(apply))
