"""`segmint segment growth|backfill|overlap|profile|snapshot|upload|compare|static`: looking at segments and
static segments. With `segmint serve` running they go through its REST API (it holds the store); otherwise
they open the store directly (read-only, except `backfill`, which writes transitions)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from segmint.cli.common import console, handle_errors, open_workspace, print_json, running_server
from segmint.cli.segments_saved import _segment_group, _server
from segmint.errors import InvalidInput
from segmint.workspace import Workspace

ROUTE = "/api/segment-analysis"
JSON_OPT = typer.Option(False, "--json", help="JSON output.")
AS_OF_OPT = typer.Option(None, "--as-of", help="ISO time (naive = UTC; add +09:00 for Seoul time).")


def _as_of(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        raise InvalidInput(f"not an ISO 8601 time: {text!r}", where="--as-of") from None


def _local(ws: Workspace, fn: Callable[[Any], Any], *, write: bool = False) -> Any:
    """Run fn(store) on the workspace store opened here (read-only unless write)."""
    store = ws.store if write else ws.open_store_read_only()
    try:
        return fn(store)
    finally:
        if write:
            ws.close()
        else:
            store.close()


# ---------------------------------------------------------------- growth


def _run_backfill(ws: Workspace, url: str | None, name: str, days: int) -> dict[str, Any]:
    from segmint.analytics.segment_growth import backfill

    if url:
        with console.status(f"backfilling {name} (the server evaluates {days} day ends)"):
            return _server(ws, "POST", url, f"{ROUTE}/backfill", body={"segment": name, "days": days})
    cols = (TextColumn("backfill {task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*cols, console=console, transient=True) as bar:
        task = bar.add_task(name, total=days)

        def step(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        return _local(ws, lambda s: backfill(ws.appdb, s, name, zone=ws.config.zone, days=days, progress=step)
                      .to_dict(), write=True)


def _print_backfill(r: dict[str, Any]) -> None:
    if r.get("skipped"):
        console.print(f"backfill {r['segment']}: nothing to do ({r['skipped']})", highlight=False)
    else:
        console.print(f"backfill {r['segment']} v{r['version']}: {r['evaluated']} day ends evaluated, "
                      f"{r['entries']} entries, {r['exits']} exits recorded", highlight=False)


def backfill_cmd(ctx: typer.Context, name: str = typer.Argument(..., help="Saved dynamic segment."),
                 days: int = typer.Option(90, "--days", min=1, max=730), as_json: bool = JSON_OPT) -> None:
    """Fill a segment's membership history for the last N days by as-of evaluation at each day end."""
    ws = open_workspace(ctx)
    r = _run_backfill(ws, running_server(ws), name, days)
    if as_json:
        print_json(r)
    else:
        _print_backfill(r)


def growth_cmd(ctx: typer.Context, name: str = typer.Argument(..., help="Saved segment."),
               days: int = typer.Option(90, "--days", min=1, max=730),
               fill: bool = typer.Option(False, "--backfill", help="Backfill the window first (idempotent)."),
               as_json: bool = JSON_OPT) -> None:
    """Members at each day end, entries and exits per day (workspace time zone)."""
    from segmint.analytics.segment_growth import growth

    ws = open_workspace(ctx)
    url = running_server(ws)
    if fill:
        r = _run_backfill(ws, url, name, days)
        if not as_json:
            _print_backfill(r)
    if url:
        g = _server(ws, "GET", url, f"{ROUTE}/growth", segment=name, days=days)
    else:
        g = _local(ws, lambda s: growth(ws.appdb, s, name, zone=ws.config.zone, days=days).to_dict())
    if as_json:
        print_json(g)
        return
    peak = max([d["members"] for d in g["days"]] + [1])
    table = Table("day", "members", "entries", "exits", "", title=f"{name}: members per day ({g['timezone']})")
    for d in g["days"]:
        bar = "█" * round(30 * d["members"] / peak)
        table.add_row(str(d["day"]), f"{d['members']:,}", f"+{d['entries']:,}", f"-{d['exits']:,}", bar)
    console.print(table)
    if g["backfilled_until"] is None and g["live_since"] is None:
        console.print(f"no recorded history yet: run `segmint segment growth {name} --backfill`", highlight=False)


# ---------------------------------------------------------------- overlap and profile


def overlap_cmd(ctx: typer.Context, names: list[str] = typer.Argument(..., help="Two or more segments."),
                as_of: str = AS_OF_OPT, as_json: bool = JSON_OPT) -> None:
    """Shared members between segments (count and % of the row segment)."""
    from segmint.analytics.overlap import overlap

    ws = open_workspace(ctx)
    when = _as_of(as_of)
    url = running_server(ws)
    if url:
        o = _server(ws, "GET", url, f"{ROUTE}/overlap", segment=names, as_of=as_of)
    else:
        o = _local(ws, lambda s: overlap(ws.appdb, s, names, when).to_dict())
    if as_json:
        print_json(o)
        return
    table = Table("segment", "size", *o["segments"], title="shared members (% of the row's size)")
    for i, n in enumerate(o["segments"]):
        table.add_row(n, f"{o['sizes'][i]:,}",
                      *[f"{o['shared'][i][j]:,} ({o['percent'][i][j]:.1f}%)" for j in range(len(o["segments"]))])
    console.print(table)
    console.print(f"in at least one: {o['union']:,}", highlight=False)


def profile_cmd(ctx: typer.Context, name: str = typer.Argument(..., help="Saved segment."),
                traits: str = typer.Option("", "--traits", help="Comma-separated traits (default: all)."),
                as_of: str = AS_OF_OPT, top: int = typer.Option(10, "--top", min=1, max=100),
                flag: float = typer.Option(0.2, "--flag", help="Divergence that flags a trait (0-1)."),
                as_json: bool = JSON_OPT) -> None:
    """Trait distributions of members against everyone; the traits where members diverge most first."""
    from segmint.analytics.segment_profile import profile

    ws = open_workspace(ctx)
    names = [t.strip() for t in traits.split(",") if t.strip()]
    url = running_server(ws)
    if url:
        p = _server(ws, "GET", url, f"{ROUTE}/profile", segment=name, traits=",".join(names), as_of=as_of,
                    top=top, flag=flag)
    else:
        p = _local(ws, lambda s: profile(ws.appdb, s, name, traits=names, as_of=_as_of(as_of), top=top,
                                         flag=flag).to_dict())
    if as_json:
        print_json(p)
        return
    console.print(f"{name}: {p['members']:,} members of {p['population']:,} profiles"
                  + (f" ({p['members_without_profile']:,} members have no profile)"
                     if p["members_without_profile"] else ""), highlight=False)
    for t in p["traits"]:
        score = "-" if t["divergence"] is None else f"{t['divergence']:.2f}"
        mark = "[bold red]diverges[/bold red] " if t["flagged"] else ""
        console.print(f"\n{mark}[bold]{t['name']}[/bold] ({t['source']}, {t['kind']}, divergence {score})",
                      highlight=False)
        if t["kind"] == "categorical":
            table = Table("value", "members", "member %", "everyone %", "lift")
            for v in t["values"]:
                table.add_row(v["value"], f"{v['members']:,}", f"{100 * v['member_share']:.1f}",
                              f"{100 * v['population_share']:.1f}", "-" if v["lift"] is None else f"{v['lift']:.2f}")
            console.print(table)
        elif t["kind"] == "numeric":
            table = Table("group", "count", "missing", "mean", *[f"p{round(float(q) * 100)}"
                                                                 for q in t["population"]["quantiles"]])
            for label in ("members", "population"):
                s = t[label]
                table.add_row(label, f"{s['count']:,}", f"{s['missing']:,}", str(s["mean"]),
                              *[str(v) for v in s["quantiles"].values()])
            console.print(table)
        else:
            console.print(f"  {t['distinct']:,} distinct values: identifier-like, not compared", highlight=False)
    if p["flagged"]:
        console.print(f"\nmembers diverge on: {', '.join(p['flagged'])}", highlight=False)


# ---------------------------------------------------------------- static segments


def _print_static(s: dict[str, Any]) -> None:
    where = f" of {s['source']} v{s['source_version']}" if s.get("source") else ""
    when = f" as of {str(s['as_of'])[:19]} UTC" if s.get("as_of") else ""
    console.print(f"{s['name']}: static, {s['count']:,} members ({s['origin']}{where}{when})", highlight=False,
                  markup=False)
    d = s.get("detail") or {}
    if s["origin"] == "upload":
        console.print(f"{d['rows']:,} rows, {d['duplicates']:,} repeated ids, {d['unknown']:,} unknown to the "
                      f"store ({'kept' if d['unknown_policy'] == 'keep' else 'dropped'})", highlight=False)
        if d["unknown"]:
            console.print("unknown ids: " + ", ".join(d["unknown_sample"])
                          + (" ..." if d["unknown"] > len(d["unknown_sample"]) else ""), highlight=False,
                          markup=False)


def snapshot_cmd(ctx: typer.Context, name: str = typer.Argument(..., help="Name of the new static segment."),
                 source: str = typer.Option(None, "--from", help="Saved segment to snapshot."),
                 text: str = typer.Option(None, "--text", "-t", help="Or a definition in the segment language."),
                 as_of: str = AS_OF_OPT, description: str = typer.Option("", "--description", "-d"),
                 label: list[str] = typer.Option([], "--label", "-l", help="A label (repeatable)."),
                 as_json: bool = JSON_OPT) -> None:
    """Freeze a segment's members at a time into a named static segment."""
    from segmint.segments import saved
    from segmint.segments.static import snapshot

    ws = open_workspace(ctx)
    url = running_server(ws)
    if url:
        s = _server(ws, "POST", url, f"{ROUTE}/snapshots", body={
            "name": name, "source": source, "definition": text, "as_of": as_of, "description": description,
            "labels": label})
    else:
        when = _as_of(as_of)

        def run(store: Any) -> dict[str, Any]:
            catalog = saved.workspace_catalog(ws, store) if text is not None else None
            return snapshot(ws.appdb, store, name, source=source, definition=text, as_of=when,
                            description=description, labels=label, catalog=catalog).to_dict()

        s = _local(ws, run)
    if as_json:
        print_json(s)
    else:
        _print_static(s)


def upload_cmd(ctx: typer.Context, file: Path = typer.Argument(..., help="CSV of user ids."),
               name: str = typer.Option(..., "--name", "-n", help="Name of the new static segment."),
               unknown: str = typer.Option("keep", "--unknown", help="Ids the store does not know: keep or drop."),
               column: str = typer.Option(None, "--column", help="Header of the user id column."),
               description: str = typer.Option("", "--description", "-d"),
               label: list[str] = typer.Option([], "--label", "-l", help="A label (repeatable)."),
               as_json: bool = JSON_OPT) -> None:
    """Create a static segment from a CSV file of user ids."""
    import httpx

    from segmint.errors import SegmintError
    from segmint.segments.static import upload

    try:
        data = file.read_bytes()
    except OSError as exc:
        raise InvalidInput(f"cannot read: {exc.strerror}", where=str(file)) from None
    ws = open_workspace(ctx)
    url = running_server(ws)
    if url:
        params = {"name": name, "unknown": unknown, "column": column, "file_name": file.name,
                  "description": description, "label": label}
        resp = httpx.post(url + f"{ROUTE}/uploads", content=data, timeout=600,
                          params={k: v for k, v in params.items() if v is not None},
                          headers={"Authorization": f"Bearer {ws.config.admin_token}", "Content-Type": "text/csv"})
        if resp.status_code >= 400:
            body = resp.json() if resp.headers.get("content-type", "").startswith("application/json") else {}
            raise SegmintError(str(body.get("message", resp.text[:500])), where=str(body.get("where") or url))
        s = resp.json()
    else:
        s = _local(ws, lambda store: upload(ws.appdb, store, name, data, unknown=unknown, column=column,
                                            file_name=file.name, description=description, labels=label).to_dict())
    if as_json:
        print_json(s)
    else:
        _print_static(s)


def compare_cmd(ctx: typer.Context, snapshot: str = typer.Argument(..., help="Static segment."),
                against: str = typer.Option(None, "--with", help="Segment to compare with (default: the source)."),
                as_of: str = AS_OF_OPT, sample: int = typer.Option(20, "--sample", min=0, max=1000),
                as_json: bool = JSON_OPT) -> None:
    """Compare a snapshot with a segment's membership now: only in the snapshot, only now, both."""
    from segmint.segments.static import compare

    ws = open_workspace(ctx)
    url = running_server(ws)
    if url:
        c = _server(ws, "GET", url, f"{ROUTE}/compare", snapshot=snapshot, against=against, as_of=as_of,
                    sample=sample)
    else:
        c = _local(ws, lambda s: compare(ws.appdb, s, snapshot, against=against, as_of=_as_of(as_of),
                                         sample=sample).to_dict())
    if as_json:
        print_json(c)
        return
    when = f"as of {str(c['as_of'])[:19]} UTC" if as_of else "now"
    console.print(f"{c['snapshot']} ({c['snapshot_count']:,}) vs {c['against']} {when} ({c['current_count']:,}):",
                  highlight=False, markup=False)
    console.print(f"  both {c['both']:,}, only in snapshot {c['only_in_snapshot']:,}, only now {c['only_now']:,}, "
                  f"Jaccard {c['jaccard']:.3f}", highlight=False)
    for label, key in (("only in snapshot", "only_in_snapshot_sample"), ("only now", "only_now_sample")):
        if c[key]:
            console.print(f"  {label}: {', '.join(c[key])}", highlight=False, markup=False)


def static_cmd(ctx: typer.Context, as_json: bool = JSON_OPT) -> None:
    """Static segments (snapshots and uploads) with their size and origin."""
    from segmint.segments.static import list_static

    rows = [s.to_dict() for s in list_static(open_workspace(ctx).appdb)]
    if as_json:
        print_json(rows)
        return
    table = Table("name", "members", "origin", "source", "as of (UTC)", "labels", "description")
    for s in rows:
        table.add_row(s["name"], f"{s['count']:,}", s["origin"], s["source"] or "", str(s["as_of"] or "")[:19],
                      ", ".join(s["labels"]), s["description"][:60])
    console.print(table)


def register(app: typer.Typer) -> None:
    """Add the analysis and static-segment commands to the `segment` group."""
    group = _segment_group(app)
    for name, fn in (("growth", growth_cmd), ("backfill", backfill_cmd), ("overlap", overlap_cmd),
                     ("profile", profile_cmd), ("snapshot", snapshot_cmd), ("upload", upload_cmd),
                     ("compare", compare_cmd), ("static", static_cmd)):
        group.command(name)(handle_errors(fn))
