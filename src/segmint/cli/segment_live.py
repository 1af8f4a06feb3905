"""`segmint segment history|evaluations|health|sweep`: live segment membership, its record and health.

With a server running, history and sweeps go through its API (it owns the event store); evaluations and
health read the app database, which both can open.
"""

from __future__ import annotations

from typing import Any

import typer
from rich.table import Table

from segmint.cli.common import console, handle_errors, open_workspace, print_json, running_server
from segmint.cli.segments_saved import _segment_group, _server
from segmint.segments import live_log, saved


def _cell(v: Any) -> str:
    if v is None:
        return ""
    if hasattr(v, "isoformat"):
        return v.isoformat(sep=" ", timespec="seconds")
    return str(v)


def _table(title: str, rows: list[dict[str, Any]], cols: list[str]) -> None:
    t = Table(title=title)
    for c in cols:
        t.add_column(c)
    for r in rows:
        t.add_row(*(_cell(r.get(c)) for c in cols))
    console.print(t)


def history_cmd(ctx: typer.Context, name: str = typer.Argument(..., help="Saved segment name."),
                user: str = typer.Option(None, "--user", "-u", help="Only this user's spells."),
                limit: int = typer.Option(100, "--limit", "-n", min=1),
                as_json: bool = typer.Option(False, "--json", help="JSON output.")) -> None:
    """Membership spells of a segment (entered_at, exited_at, causes), newest first."""
    ws = open_workspace(ctx)
    saved.get_segment(ws.appdb, name)
    url = running_server(ws)
    if url:
        rows = _server(ws, "GET", url, f"/api/live/segments/{name}/history", user=user, limit=limit)["history"]
    else:
        from segmint.segments.live import history

        store = ws.open_store_read_only()
        try:
            rows = history(store, name, user, limit)
        finally:
            store.close()
    if as_json:
        print_json(rows)
        return
    _table(f"history of {name}" + (f" for {user}" if user else ""), rows,
           ["user_id", "version", "entered_at", "cause", "exited_at", "exit_cause"])


def evaluations_cmd(ctx: typer.Context, name: str = typer.Argument(None, help="Only this segment."),
                    kind: str = typer.Option(None, "--kind", help="sweep, event or edit."),
                    limit: int = typer.Option(30, "--limit", "-n", min=1),
                    as_json: bool = typer.Option(False, "--json", help="JSON output.")) -> None:
    """Recorded evaluations of live segments, newest first (failed ones with their error)."""
    ws = open_workspace(ctx)
    if kind is not None and kind not in live_log.KINDS:
        from segmint.errors import InvalidInput

        raise InvalidInput(f"kind is {kind!r}; expected sweep, event or edit", where="--kind")
    live_log.ensure_table(ws.appdb)
    rows = live_log.list_evaluations(ws.appdb, name, limit, kind)
    if as_json:
        print_json(rows)
        return
    _table("live segment evaluations", rows, ["segment", "version", "kind", "started_at", "elapsed_ms", "status",
                                              "users", "members", "entered", "exited", "error"])


def health_cmd(ctx: typer.Context, as_json: bool = typer.Option(False, "--json", help="JSON output.")) -> None:
    """Health of every dynamic segment: empty, exploding/collapsing, stale, failing, churn, slow."""
    from segmint.segments.live import health

    ws = open_workspace(ctx)
    rows = [h.to_dict() for h in health(ws.appdb, ws.config.live)]
    if as_json:
        print_json(rows)
        return
    for r in rows:
        r["flags"] = ", ".join(r["flags"]) or "ok"
    _table("live segment health", rows, ["segment", "version", "members", "previous", "last_ok_at", "churn_24h",
                                         "flags", "last_error"])


def sweep_cmd(ctx: typer.Context, name: str = typer.Argument(None, help="Only this segment."),
              as_json: bool = typer.Option(False, "--json", help="JSON output.")) -> None:
    """Evaluate dynamic segments in bulk now and record what changed (through the server when running)."""
    ws = open_workspace(ctx)
    if name is not None:
        saved.get_segment(ws.appdb, name)
    url = running_server(ws)
    if url:
        route = "/api/live/sweep" if name is None else f"/api/live/segments/{name}/evaluate"
        out = _server(ws, "POST", url, route)
    else:
        from segmint.segments.live import LiveSegments, wall_now

        live = LiveSegments(ws.store, ws.appdb, config=ws.config.live, workspace_tz=ws.config.timezone)
        try:
            live.start(thread=False)
            now = wall_now()
            res = live.step(now, sweep=name is None)
            if name is not None:
                res.changes += live.evaluate_bulk(name, now)
            live.flush_summary(now)
        finally:
            ws.close()
        out = {"segments": res.swept if name is None else [name],
               "entered": sum(c.kind == "enter" for c in res.changes),
               "exited": sum(c.kind == "exit" for c in res.changes)}
    if as_json:
        print_json(out)
    else:
        console.print(f"entered {out['entered']}, exited {out['exited']}", highlight=False)


def register(app: typer.Typer) -> None:
    """Add history, evaluations, health and sweep to the `segment` group."""
    group = _segment_group(app)
    group.command("history")(handle_errors(history_cmd))
    group.command("evaluations")(handle_errors(evaluations_cmd))
    group.command("health")(handle_errors(health_cmd))
    group.command("sweep")(handle_errors(sweep_cmd))
