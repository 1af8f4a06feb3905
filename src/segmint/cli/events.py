"""`segmint events stats|rejected`: what has arrived and what was refused, with reasons."""

from __future__ import annotations

import typer
from rich.table import Table

from segmint.cli.common import console, from_server_or_store, handle_errors, open_workspace, print_json

events_app = typer.Typer(help="Inspect ingested events.", no_args_is_help=True)


@events_app.command("stats")
@handle_errors
def stats(ctx: typer.Context, as_json: bool = typer.Option(False, "--json", help="JSON output.")) -> None:
    """Counts per event name (through the running server if there is one)."""
    ws = open_workspace(ctx)
    rows = from_server_or_store(ws, "/api/events/stats", lambda store: [vars(c) for c in store.event_counts()])
    if as_json:
        print_json(rows)
        return
    table = Table("event", "type", "count", "users", "first", "last", title="events")
    for r in rows:
        table.add_row(r["event"], r["type"], f"{r['count']:,}", f"{r['users']:,}", str(r["first"])[:19],
                      str(r["last"])[:19])
    console.print(table)
    console.print(f"total: {sum(r['count'] for r in rows):,} events")


@events_app.command("rejected")
@handle_errors
def rejected(
    ctx: typer.Context,
    limit: int = typer.Option(50, help="How many, newest first."),
    as_json: bool = typer.Option(False, "--json", help="JSON output."),
) -> None:
    """Rejected messages with the reason and the field at fault."""
    ws = open_workspace(ctx)
    rows = from_server_or_store(ws, "/api/events/rejected", lambda store: store.rejected(limit), limit=limit)
    if as_json:
        print_json(rows)
        return
    table = Table("received", "source", "field", "reason", "payload", title="rejected messages")
    for r in rows:
        table.add_row(str(r["received_at"])[:19], r["source"], r["field"], r["reason"], r["payload"][:80])
    console.print(table)
    if not rows:
        console.print("no rejected messages")


def register(app: typer.Typer) -> None:
    """Add `events` to the root app."""
    app.add_typer(events_app, name="events")
