"""`segmint taxonomy show|check|infer|apply`: the declared event schema, its violations, and proposals."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import typer
from rich.table import Table

from segmint.cli.common import (
    console,
    from_server_or_store,
    handle_errors,
    open_workspace,
    print_json,
    running_server,
    server_request,
)
from segmint.errors import InvalidInput
from segmint.taxonomy.model import Taxonomy, dump_taxonomy, load_taxonomy
from segmint.workspace import Workspace

taxonomy_app = typer.Typer(help="Declare, check and infer the event taxonomy.", no_args_is_help=True)


def _flag(value: bool) -> str:
    return "yes" if value else ""


@taxonomy_app.command("show")
@handle_errors
def show(ctx: typer.Context, as_json: bool = typer.Option(False, "--json", help="JSON output.")) -> None:
    """Declared events and properties (display names, types, required) with counts seen per event."""
    from segmint.taxonomy.overview import taxonomy_overview
    from segmint.taxonomy.runtime import workspace_taxonomy

    ws = open_workspace(ctx)
    data = from_server_or_store(
        ws, "/api/taxonomy",
        lambda store: taxonomy_overview(workspace_taxonomy(ws), store.event_counts(), mode=ws.config.taxonomy.mode,
                                        file=str(ws.taxonomy_path)))
    if as_json:
        print_json(data)
        return
    if not data["declared"]:
        console.print(f"no taxonomy yet ({data['file']}); propose one with `segmint taxonomy infer --out FILE`")
    else:
        console.print(f"taxonomy [bold]{data['file']}[/bold]  mode: [bold]{data['mode']}[/bold]")
    events = Table("event", "display name", "seen", "properties", title="events")
    for ev in data["events"]:
        events.add_row(ev["name"], ev["display_name"] or "", f"{ev['count']:,}", str(len(ev["properties"])))
    if data["events"]:
        console.print(events)
    props = Table("event", "property", "display name", "type", "required", "column", "enum", title="properties")
    for ev in data["events"]:
        for p in ev["properties"]:
            props.add_row(ev["name"], p["name"], p["display_name"] or "", p["type"], _flag(p["required"]),
                          _flag(p["column"]), ", ".join(map(str, p["enum"] or ())))
    if props.row_count:
        console.print(props)
    traits = Table("trait", "display name", "type", "enum", title="traits")
    for t in data["traits"]:
        traits.add_row(t["name"], t["display_name"] or "", t["type"], ", ".join(map(str, t["enum"] or ())))
    if data["traits"]:
        console.print(traits)
    if data["undeclared_events"]:
        extra = Table("event", "seen", title="arrived but not declared")
        for ev in data["undeclared_events"]:
            extra.add_row(ev["name"], f"{ev['count']:,}")
        console.print(extra)


def _check_file(path: Path, tax: Taxonomy) -> list[dict[str, Any]]:
    """Violations of the messages in a JSONL file (one message or a {"batch": [...]} per line), grouped."""
    from datetime import UTC, datetime

    from segmint.ingest.messages import normalize, parse_message
    from segmint.taxonomy.validate import check_event

    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise InvalidInput(f"cannot read: {exc.strerror}", where=str(path)) from exc
    groups: dict[tuple[str, str, str], dict[str, Any]] = {}

    def add(event: str, field: str, kind: str, reason: str, example: dict[str, Any]) -> None:
        g = groups.setdefault((event, field, kind), {"event": event, "field": field, "kind": kind, "count": 0,
                                                      "reason": reason, "examples": []})
        g["count"] += 1
        if len(g["examples"]) < 5:
            g["examples"].append(example)

    now = datetime.now(UTC)
    for lineno, line in enumerate(lines, 1):
        if not line.strip():
            continue
        where = f"{path}:{lineno}"
        try:
            raw = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            add("", "message", "malformed_json", str(exc), {"line": lineno})
            continue
        batch = raw["batch"] if isinstance(raw, dict) and isinstance(raw.get("batch"), list) else [raw]
        for msg in batch:
            try:
                ev = normalize(parse_message(msg, where=where), now, source="file")
            except InvalidInput as exc:
                add("", "message", "invalid_message", exc.message, {"line": lineno})
                continue
            for v in check_event(tax, ev):
                add(ev["event"], v.field, v.kind, v.reason,
                    {"line": lineno, "message_id": msg.get("messageId"), "value": v.value})
    return sorted(groups.values(), key=lambda g: (-g["count"], g["event"], g["field"]))


@taxonomy_app.command("check")
@handle_errors
def check(
    ctx: typer.Context,
    file: Path = typer.Option(None, "--file", "-f", help="Check the messages of a JSONL file (nothing is stored)."),
    taxonomy_file: Path = typer.Option(None, "--taxonomy", help="Check against this file, not the workspace's."),
    as_json: bool = typer.Option(False, "--json", help="JSON output."),
) -> None:
    """Violations so far (or of a file's messages) per event and property; exit code 1 if there are any."""
    ws: Workspace | None = None
    if file is not None:
        if taxonomy_file is not None:
            tax = load_taxonomy(taxonomy_file)
        else:
            from segmint.taxonomy.runtime import workspace_taxonomy

            ws = open_workspace(ctx)
            found = workspace_taxonomy(ws)
            if found is None:
                raise InvalidInput("the workspace has no taxonomy; pass --taxonomy FILE", where=str(ws.taxonomy_path))
            tax = found
        rows = _check_file(file, tax)
    else:
        ws = open_workspace(ctx)
        rows = from_server_or_store(ws, "/api/taxonomy/violations", lambda store: store.violations())
    if as_json:
        print_json(rows)
    else:
        table = Table("event", "field", "kind", "count", "rejected", "reason", "examples", title="taxonomy violations")
        for r in rows:
            examples = "; ".join(
                ", ".join(f"{k}={v}" for k, v in ex.items() if v is not None and k != "rejected")
                for ex in r["examples"][:3])
            table.add_row(r["event"], r["field"], r["kind"], f"{r['count']:,}",
                          f"{r.get('rejected', 0):,}" if "rejected" in r else "", r["reason"], examples[:120])
        if rows:
            console.print(table)
            console.print(f"{sum(r['count'] for r in rows):,} violations")
        else:
            console.print("no violations")
        if file is None and ws.config.taxonomy.mode == "open":
            console.print("note: [taxonomy] mode is open, so nothing is checked; "
                          "`segmint taxonomy apply FILE --mode warn` turns checks on")
    if rows:
        raise typer.Exit(1)


@taxonomy_app.command("infer")
@handle_errors
def infer(
    ctx: typer.Context,
    out: Path = typer.Option(None, "--out", "-o", help="Write the proposed taxonomy YAML here."),
    sample: int = typer.Option(None, "--sample", min=1, help="Read at most N events per event name."),
    as_json: bool = typer.Option(False, "--json", help="JSON output (the figures, the YAML and the diff)."),
) -> None:
    """Propose a taxonomy from the arrived events and profiles; with a declared one, show what differs."""
    from segmint.taxonomy.infer import infer_taxonomy
    from segmint.taxonomy.runtime import workspace_taxonomy

    ws = open_workspace(ctx)
    url = running_server(ws)
    if url:
        data = server_request(ws, "POST", url, "/api/taxonomy/infer", sample=sample)
    else:
        base = workspace_taxonomy(ws)
        store = ws.open_store_read_only()
        try:
            inference = infer_taxonomy(store, sample)
        finally:
            store.close()
        data = {"inference": inference.to_dict(), "yaml": dump_taxonomy(inference.to_taxonomy(base)),
                "diff": inference.diff(base) if base is not None else None}
    if out is not None:
        out.write_text(data["yaml"], encoding="utf-8")
    if as_json:
        print_json(data)
        return
    inf = data["inference"]
    table = Table("event", "property", "type", "seen", "required", "distinct", "examples", "note",
                  title="inferred from " + (f"a sample of {sample:,} per event" if sample else "all events"))
    for ev in inf["events"]:
        table.add_row(f"[bold]{ev['name']}[/bold]", "", "", f"{ev['count']:,}", "", "", "", "")
        for p in ev["properties"]:
            note = "mixed: " + ", ".join(f"{k} {v:,}" for k, v in p["types"].items()) if p["mixed"] else ""
            if p["enum"]:
                note = (note + " " if note else "") + "enum?"
            table.add_row("", p["name"], p["type"], f"{p['ratio']:.1%}", _flag(p["required"]), f"{p['distinct']:,}",
                          ", ".join(map(str, p["examples"]))[:60], note)
    console.print(table)
    traits = Table("trait", "type", "seen", "distinct", "examples", title=f"traits ({inf['profiles']:,} profiles)")
    for t in inf["traits"]:
        traits.add_row(t["name"], t["type"] + (" (mixed)" if t["mixed"] else ""), f"{t['ratio']:.1%}",
                       f"{t['distinct']:,}", ", ".join(map(str, t["examples"]))[:60])
    if inf["traits"]:
        console.print(traits)
    if data["diff"] is not None:
        diff = Table("change", "where", "detail", title="compared with the declared taxonomy")
        for d in data["diff"]:
            detail = ", ".join(f"{k}={v}" for k, v in d.items() if k not in ("change", "where"))
            diff.add_row(d["change"], d["where"], detail)
        console.print(diff if data["diff"] else "the data matches the declared taxonomy")
    if out is not None:
        console.print(f"proposal written to [bold]{out}[/bold]; review it, then `segmint taxonomy apply {out}`")


@taxonomy_app.command("apply")
@handle_errors
def apply(
    ctx: typer.Context,
    file: Path = typer.Argument(..., help="Taxonomy YAML file."),
    mode: str = typer.Option(None, "--mode", help="Also set the check mode: strict, warn or open."),
    as_json: bool = typer.Option(False, "--json", help="JSON output."),
) -> None:
    """Validate a taxonomy file and install it: typed columns are created and backfilled, checks switch over."""
    from segmint.taxonomy.runtime import apply_taxonomy

    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise InvalidInput(f"cannot read: {exc.strerror}", where=str(file)) from exc
    except UnicodeDecodeError as exc:
        raise InvalidInput("not UTF-8 text", where=str(file)) from exc
    ws = open_workspace(ctx)
    url = running_server(ws)
    if url:
        result = server_request(ws, "PUT", url, "/api/taxonomy", content=text.encode(), mode=mode, source=str(file))
    else:
        try:
            result = apply_taxonomy(ws, text, str(file), mode=mode)
        finally:
            ws.close()
    if as_json:
        print_json(result)
        return
    console.print(f"installed {result['events']} events and {result['traits']} traits into {result['file']} "
                  f"(mode: {result['mode']})")
    if result["columns_added"]:
        console.print("typed columns added and backfilled: " + ", ".join(f"p_{c}" for c in result["columns_added"]))


def register(app: typer.Typer) -> None:
    """Add `taxonomy` to the root app."""
    app.add_typer(taxonomy_app, name="taxonomy")
