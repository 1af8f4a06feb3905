"""`segmint demo`: build the demo shop (데모몰) workspace, show what is in it, and serve it."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import typer
from rich.table import Table

from segmint.cli.common import console, handle_errors, running_server, workspace_path
from segmint.errors import InvalidInput, WorkspaceError
from segmint.workspace import Workspace

demo_app = typer.Typer(
    help="The demo shop (데모몰): a realistic Korean e-commerce workspace.", invoke_without_command=True
)


def parse_now(value: str | None) -> datetime:
    """--now as naive UTC (ISO 8601; a value without offset is UTC); default: this hour."""
    from segmint.demo.generate import default_now

    if not value:
        return default_now()
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise InvalidInput(
            f"not an ISO 8601 time: {value!r} (e.g. 2026-11-25T09:00:00+09:00)", where="--now"
        ) from None
    return parsed.astimezone(UTC).replace(tzinfo=None) if parsed.tzinfo else parsed


def _check_sizes(users: int, days: int) -> None:
    if users < 1:
        raise InvalidInput("must be at least 1", where="--users")
    if days < 1:
        raise InvalidInput("must be at least 1", where="--days")


@demo_app.callback()
@handle_errors
def demo(
    ctx: typer.Context,
    users: int = typer.Option(5_000, help="How many users."),
    days: int = typer.Option(180, help="How many days of history up to --now."),
    seed: int = typer.Option(42, help="Random seed: the same seed gives the same data."),
    now: str = typer.Option(None, help="The demo's 'now' (ISO 8601; default: the current hour)."),
    no_serve: bool = typer.Option(
        False, "--no-serve", help="Build and summarise only; do not start the server."
    ),
    port: int = typer.Option(8000, help="Port of the server."),
    fresh: bool = typer.Option(False, "--fresh", help="Rebuild an existing demo workspace from scratch."),
) -> None:
    """Build (or reuse) the demo workspace, print a summary, then serve it on 127.0.0.1."""
    if ctx.invoked_subcommand is not None:
        return
    from segmint.demo.generate import DemoSpec
    from segmint.demo.load import build_demo, prepare_workspace

    _check_sizes(users, days)
    path = workspace_path(ctx)
    spec = DemoSpec(users=users, days=days, seed=seed, now=parse_now(now))
    if Workspace.exists(path) and (url := running_server(Workspace(path))):
        raise WorkspaceError(f"a server is running on this workspace ({url}); stop it first", where=str(path))
    ws, info = prepare_workspace(path, fresh=fresh)
    if ws is None:
        console.print(
            f"데모몰 만드는 중: {users:,} users x {days} days, seed {seed}, now {spec.now:%Y-%m-%d %H:%M} UTC"
        )
        ws, info = build_demo(path, spec)
        _compute_traits(ws, spec.now)
    else:
        s = info.spec
        console.print(
            f"reusing the demo workspace in {ws.path} ({s.users:,} users x {s.days} days, seed {s.seed}, "
            f"now {s.now:%Y-%m-%d %H:%M} UTC); --fresh rebuilds it"
        )
    _apply_example_segments(ws)
    print_summary(ws, info.spec.now)
    host = "127.0.0.1"
    console.print(f"\nwrite key: [bold]{info.write_key}[/bold]")
    from segmint.appdb.users import ensure_user

    ui_user, ui_password = ensure_user(ws.appdb, "demo@localhost")
    console.print(f"web UI sign-in: [bold]{ui_user.email}[/bold]  password: [bold]{ui_password}[/bold] "
                  "(new on every `segmint demo`)")
    if no_serve:
        ws.close()
        console.print(f"start the server with: segmint --workspace {ws.path} serve")
        return
    from segmint.cli.serve import run_server

    console.print(
        f"landing page: [bold]http://{host}:{port}/[/bold]   API docs: http://{host}:{port}/docs   "
        "(Ctrl-C stops)"
    )
    run_server(ws, host, port)


EXAMPLE_SEGMENTS = Path(__file__).resolve().parents[3] / "examples" / "segments"


def _compute_traits(ws: Workspace, now: datetime) -> None:
    """Computed traits (RFM, lifecycle, CLV, ...) as of the demo's now, so the seed segments that use them work."""
    from segmint.traits import compute_traits, load_trait_config

    with console.status("computed traits (RFM, lifecycle, purchase cycle, churn, CLV, ...)"):
        run = compute_traits(ws.store, load_trait_config(ws.path), as_of=now, publish=True)
    console.print(f"computed traits: {run.users:,} users, {run.rows:,} values in {run.seconds:.1f} s")
    from segmint.traits.runner import train

    try:
        with console.status("predictive models (churn, purchase): training on the shop's own history"):
            _run, reports, _scored = train(ws.store, load_trait_config(ws.path), ws.path, trigger="demo")
    except InvalidInput as exc:  # a short demo: too little history for the horizon
        console.print(f"predictive models skipped: {exc.message}")
        return
    for r in reports:
        m = r.metadata
        console.print(f"model {m['name']}: holdout AUC {m['metrics']['auc']:.3f}, recency-only baseline "
                      f"{m['metrics']['baseline_auc']:.3f}" + "".join(f"\n  warning: {w}" for w in m["warnings"]))


def _apply_example_segments(ws: Workspace) -> None:
    """Save the seed segments of examples/segments/ (segments as code) into the demo workspace, idempotently."""
    from segmint.segments.saved import apply_dir

    for folder in (EXAMPLE_SEGMENTS, EXAMPLE_SEGMENTS / "traits"):
        if not folder.is_dir():  # an installed package without the repository's examples
            continue
        result = apply_dir(ws, folder)
        counts = ", ".join(f"{v} {k}" for k, v in result.counts().items() if v)
        console.print(f"seed segments from {folder}: {counts or 'nothing to do'}")


def print_summary(ws: Workspace, now: datetime) -> None:
    """Users, events by name, date range and the sizes of the seed segments."""
    from segmint.demo.checks import SEGMENTS, seed_segments
    from segmint.taxonomy.runtime import workspace_taxonomy

    store = ws.store
    s = store.summary()
    tax = workspace_taxonomy(ws)
    console.print(
        f"[bold]{s['users']:,}[/bold] users, [bold]{s['events']:,}[/bold] events, "
        f"{s['profiles']:,} profiles, from {str(s['first_event'])[:16]} to {str(s['last_event'])[:16]} UTC"
    )
    table = Table("event", "이름", "count", "users", title="events by name")
    for c in store.event_counts():
        spec = tax.events.get(c.event) if tax else None
        table.add_row(c.event, (spec.display_name or "") if spec else "", f"{c.count:,}", f"{c.users:,}")
    console.print(table)
    seg = Table("segment", "설명", "users", "share", title=f"seed segments as of {now:%Y-%m-%d %H:%M} UTC")
    total = max(s["profiles"], 1)
    for name, members in seed_segments(store, now).items():
        seg.add_row(name, SEGMENTS[name][0], f"{len(members):,}", f"{100 * len(members) / total:.1f}%")
    console.print(seg)


@demo_app.command("generate")
@handle_errors
def generate(
    out: Path = typer.Option(
        ..., "--out", help="Output file: .parquet (flat events) or .jsonl (Segment spec)."
    ),
    users: int = typer.Option(5_000, help="How many users."),
    days: int = typer.Option(90, help="How many days of history up to --now."),
    seed: int = typer.Option(42, help="Random seed."),
    now: str = typer.Option(None, help="The demo's 'now' (ISO 8601; default: the current hour)."),
) -> None:
    """Write the demo events to a file (for import benchmarks) instead of a workspace."""
    from segmint.demo.export import write_file
    from segmint.demo.generate import DemoSpec

    _check_sizes(users, days)
    n = write_file(DemoSpec(users=users, days=days, seed=seed, now=parse_now(now)), out)
    console.print(f"wrote {n:,} events to {out}")


def register(app: typer.Typer) -> None:
    """Add `demo` to the root app."""
    app.add_typer(demo_app, name="demo")
