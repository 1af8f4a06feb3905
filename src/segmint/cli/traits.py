"""`segmint traits list|compute|show`: computed traits (RFM, lifecycle, churn, CLV ...) per user."""

from __future__ import annotations

from datetime import datetime
from urllib.parse import quote

import typer
from rich.table import Table

from segmint.cli.common import console, handle_errors, open_workspace, print_json, running_server, server_get
from segmint.errors import Conflict, InvalidInput
from segmint.traits import TRAITS, compute_traits, load_trait_config, user_traits

traits_app = typer.Typer(help="Computed traits: RFM, lifecycle, purchase cycle, churn, CLV, affinity, sentiment.",
                         no_args_is_help=True)


def _parse_as_of(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        raise InvalidInput(f"not an ISO date or time: {value!r} (e.g. 2026-06-01 or 2026-06-01T09:00)",
                           where="--as-of") from None


@traits_app.command("list")
@handle_errors
def list_traits(as_json: bool = typer.Option(False, "--json", help="JSON output.")) -> None:
    """Every computed trait with its family and definition."""
    rows = [{"name": n, "family": f, "definition": d} for n, (f, d) in TRAITS.items()]
    if as_json:
        print_json(rows)
        return
    table = Table("trait", "family", "definition", title="computed traits")
    for r in rows:
        table.add_row(r["name"], r["family"], r["definition"])
    console.print(table)


@traits_app.command("compute")
@handle_errors
def compute(
    ctx: typer.Context,
    names: list[str] = typer.Argument(None, help="Trait or family names (default: all families)."),
    as_of: str = typer.Option(None, "--as-of", help="Compute as of this UTC time (default now)."),
    publish: bool = typer.Option(None, "--publish/--no-publish",
                                 help="Merge into profiles.traits (default: only when computing as of now)."),
) -> None:
    """Compute traits in bulk, record the run, and merge values into profiles for segments."""
    when = _parse_as_of(as_of)
    ws = open_workspace(ctx)
    if running_server(ws):
        raise Conflict("a server holds the store: use POST /api/traits/compute", where=str(ws.path))
    cfg = load_trait_config(ws.path)
    with console.status("computing traits"):
        run = compute_traits(ws.store, cfg, as_of=when, names=names, publish=publish)
    ws.close()
    console.print(f"run {run.run_id}: {', '.join(run.families)} as of {run.as_of:%Y-%m-%d %H:%M:%S} UTC: "
                  f"{run.users:,} users, {run.rows:,} values in {run.seconds:.1f}s"
                  f"{' (published to profiles)' if run.published else ' (history only)'}")
    for family, note in run.notes.items():
        if note.get("note"):
            console.print(f"{family}: {note['note']}")
        elif note.get("bgnbd"):
            console.print(f"{family}: BG/NBD {note['bgnbd']}")


@traits_app.command("show")
@handle_errors
def show(ctx: typer.Context, user_id: str = typer.Argument(..., help="User id."),
         as_json: bool = typer.Option(False, "--json", help="JSON output.")) -> None:
    """A user's current computed traits (as segments see them)."""
    ws = open_workspace(ctx)
    url = running_server(ws)
    if url:
        info = server_get(ws, url, f"/api/users/{quote(user_id, safe='')}/traits")
    else:
        store = ws.open_store_read_only()
        try:
            info = user_traits(store, user_id)
        finally:
            store.close()
    if as_json:
        print_json(info)
        return
    table = Table("trait", "value", title=f"computed traits of {user_id}")
    for k, v in info["traits"].items():
        table.add_row(k, str(v))
    console.print(table)


def register(app: typer.Typer) -> None:
    """Add `traits` to the root app."""
    app.add_typer(traits_app, name="traits")
