"""`segmint sync add|list|run`: pull events and traits from the team's own database."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from segmint.cli.common import console, handle_errors, open_workspace, running_server
from segmint.errors import WorkspaceError
from segmint.sync.definition import add_definition, list_definitions, load_definition
from segmint.sync.runner import SyncRunner, decode_cursor

sync_app = typer.Typer(help="Pull events and traits from your own database.", no_args_is_help=True)


@sync_app.command("add")
@handle_errors
def add(ctx: typer.Context, file: Path = typer.Argument(..., help="Sync definition (YAML).")) -> None:
    """Check a sync definition and store it in the workspace (same name replaces)."""
    ws = open_workspace(ctx)
    d = add_definition(ws.path, file)
    console.print(
        f"added sync [bold]{d.name}[/bold] ({d.map.type}, cursor: {d.cursor or 'none: full reload'})"
    )


@sync_app.command("list")
@handle_errors
def list_(ctx: typer.Context) -> None:
    """The workspace's syncs and where each one's cursor stands."""
    ws = open_workspace(ctx)
    defs = list_definitions(ws.path)
    store = None if running_server(ws) else ws.open_store_read_only()
    table = Table("name", "type", "database", "cursor column", "cursor")
    for d in defs:
        pos = decode_cursor(store.get_state(d.state_key)) if store else "(server running)"
        table.add_row(d.name, d.map.type, d.url.split("://", 1)[0], d.cursor or "-", str(pos))
    if store:
        store.close()
    console.print(table)
    if not defs:
        console.print("no syncs yet: `segmint sync add FILE.yaml`")


@sync_app.command("run")
@handle_errors
def run(ctx: typer.Context, name: str = typer.Argument(None, help="Sync to run (default: all).")) -> None:
    """Pull new rows; the cursor is stored with the data, so an interrupted run resumes cleanly.

    The event store must not be held by a running `segmint serve`: stop it first.
    """
    ws = open_workspace(ctx)
    url = running_server(ws)
    if url:
        raise WorkspaceError(
            f"a server is running on this workspace ({url}) and holds the event store; "
            "stop it, run the sync, then start it again",
            where=str(ws.path),
        )
    defs = [load_definition(ws.path, name)] if name else list_definitions(ws.path)
    if not defs:
        console.print("no syncs yet: `segmint sync add FILE.yaml`")
        return
    try:
        for d in defs:
            with Progress(
                SpinnerColumn(),
                TextColumn("{task.description}"),
                TextColumn("{task.completed:,} rows"),
                TimeElapsedColumn(),
                console=console,
            ) as bar:
                task = bar.add_task(f"sync {d.name}", total=None)
                res = SyncRunner(ws.store, d).run(progress=lambda n, t=task: bar.advance(t, n))
            console.print(
                f"sync {d.name}: {res.rows:,} rows read, {res.imported:,} imported, "
                f"{res.duplicates:,} duplicates skipped, {res.rejected:,} rejected; "
                f"cursor {res.cursor if res.cursor is not None else '-'}",
                highlight=False,
            )
    finally:
        ws.close()


def register(app: typer.Typer) -> None:
    """Add `sync` to the root app."""
    app.add_typer(sync_app, name="sync")
