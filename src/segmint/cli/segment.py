"""`segmint segment eval|sql|explain`: evaluate segment text or files against the workspace's store."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import typer
import yaml
from rich.tree import Tree

from segmint.cli.common import console, handle_errors, open_workspace
from segmint.errors import InvalidInput

seg_app = typer.Typer(help="Evaluate, explain and compile segments.", no_args_is_help=True)


SAVED_PREFIX = "saved:"


def load_tree(source: str) -> Any:
    """Segment text, or @file.seg / @file.json / @file.yaml."""
    from segmint.segments import dsl

    if source.startswith("@"):
        path = Path(source[1:])
        if not path.exists():
            raise InvalidInput(f"no such file {path}", where=source)
        text = path.read_text(encoding="utf-8")
        if path.suffix in (".json", ".yaml", ".yml"):
            from segmint.segments.saved import parse_definition

            try:
                data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
            except (ValueError, yaml.YAMLError) as exc:
                raise InvalidInput(f"not valid {path.suffix[1:].upper()}: {exc}", where=str(path)) from None
            where = str(path)
            if isinstance(data, dict) and "definition" in data:  # a segment file (name, definition, ...)
                data, where = data["definition"], f"{path}: definition"
            return parse_definition(data, where=where)[0]  # text or tree; tree errors say where
        return dsl.parse(text)
    return dsl.parse(source)


def resolve_source(source: str, ws: Any | None) -> Any:
    """The tree to run for a SOURCE argument, nested `in segment` references inlined.

    `@file` is a file; `saved:NAME` is the saved segment NAME; anything else is segment text, except that
    text which does not parse but is exactly the name of a saved segment means that segment (so
    `segmint segment eval vip_buyers` works). Valid segment text always means the text.
    """
    from segmint.segments import saved
    from segmint.segments.errors import SegmentSyntaxError, suggest

    if source.startswith(SAVED_PREFIX):
        if ws is None:
            raise InvalidInput("saved segments need a workspace (--workspace)", where=source)
        return saved.segment_tree(ws.appdb, source[len(SAVED_PREFIX):])
    try:
        tree = load_tree(source)
    except SegmentSyntaxError as exc:
        if ws is None or source.startswith("@"):
            raise
        if not _is_saved(ws, source):
            close = suggest(source, [s.name for s in saved.list_segments(ws.appdb)])
            if close is not None and exc.suggestion is None:
                exc.message += f" (nor is it a saved segment; did you mean {SAVED_PREFIX}{close}?)"
            raise
        return saved.segment_tree(ws.appdb, source)
    return saved.inline_segments(tree, saved.resolver(ws.appdb)) if ws is not None else tree


def _is_saved(ws: Any, name: str) -> bool:
    from segmint.errors import NotFound
    from segmint.segments import saved

    try:
        saved.get_segment(ws.appdb, name)
    except NotFound:
        return False
    return True


def _optional_workspace(ctx: typer.Context) -> Any | None:
    """The chosen workspace if there is one (`segment sql` also works without)."""
    from segmint.errors import SegmintError

    try:
        return open_workspace(ctx)
    except SegmintError:
        return None


def _as_of(text: str | None) -> datetime:
    if not text:
        return datetime.now(UTC).replace(tzinfo=None)
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        raise InvalidInput(f"not an ISO 8601 time: {text!r}", where="--as-of") from None


def _store(ctx: typer.Context, engine: str) -> Any:
    ws = open_workspace(ctx)
    duck = ws.open_store_read_only()
    if engine == "duckdb":
        return duck
    if engine != "clickhouse":
        raise InvalidInput(f"unknown engine {engine!r} (duckdb or clickhouse)", where="--engine")
    from segmint.store.clickhouse import ClickHouseEventStore

    ch = ClickHouseEventStore(ws.path / "chdb-copy", database="segmint")
    if ch.summary()["events"] != duck.summary()["events"]:
        ch.copy_from(duck)  # a test copy, refreshed when the DuckDB store has more events
    return ch


@seg_app.command("eval")
@handle_errors
def eval_cmd(
    ctx: typer.Context,
    source: str,
    as_of: str = typer.Option(None, "--as-of"),
    fmt: str = typer.Option("ids", "--format"),
    engine: str = typer.Option("duckdb", "--engine"),
) -> None:
    """Print the members (ids one per line, a count, or JSON)."""
    from segmint.segments.evaluate import preview

    tree = resolve_source(source, open_workspace(ctx))
    result = preview(_store(ctx, engine), tree, _as_of(as_of), engine, sample=10**12)
    if fmt == "count":
        print(result["count"])
    elif fmt == "json":
        print(
            json.dumps(
                {"count": result["count"], "members": result["sample"], "elapsed_ms": result["elapsed_ms"]},
                ensure_ascii=False,
            )
        )
    elif fmt == "ids":
        for uid in result["sample"]:
            print(uid)
    else:
        raise InvalidInput(f"unknown format {fmt!r} (ids, count, json)", where="--format")


@seg_app.command("sql")
@handle_errors
def sql_cmd(
    ctx: typer.Context,
    source: str,
    engine: str = typer.Option("duckdb", "--engine"),
    as_of: str = typer.Option(None, "--as-of"),
) -> None:
    """Print the compiled SQL and its parameters."""
    from segmint.segments.compile import compile_segment

    ws = _optional_workspace(ctx)
    tree = resolve_source(source, ws)
    sql, params = compile_segment(tree, _as_of(as_of), dialect=engine,
                                  workspace_tz=ws.config.timezone if ws is not None else "Asia/Seoul")
    print(sql)
    print(json.dumps(params, default=str, ensure_ascii=False, indent=1))


@seg_app.command("explain")
@handle_errors
def explain_cmd(
    ctx: typer.Context,
    source: str,
    user: str = typer.Option(..., "--user"),
    as_of: str = typer.Option(None, "--as-of"),
) -> None:
    """Explain one user's result node by node (reference evaluator)."""
    from segmint.segments.reference import evaluate_user

    ws = open_workspace(ctx)
    tree = resolve_source(source, ws)
    node = evaluate_user(tree, ws.open_store_read_only(), user, _as_of(as_of))

    def add(t: Tree, n: Any) -> None:
        mark = "[green]true[/green]" if n.result else "[red]false[/red]"
        evs = ", ".join(f"{e['event']}@{e['ts']:%Y-%m-%d %H:%M}" for e in n.events[:5])
        sub = t.add(f"{mark} {n.kind} {n.detail}" + (f" [dim]({evs})[/dim]" if evs else ""))
        for c in n.children:
            add(sub, c)

    root = Tree(f"user {user}")
    add(root, node)
    console.print(root)


def register(app: typer.Typer) -> None:
    """Add `segmint segment ...`."""
    app.add_typer(seg_app, name="segment")
