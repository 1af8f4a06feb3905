"""`segmint traits list|compute|show|train|models|runs`: computed traits (RFM, lifecycle, churn, CLV, predictive
scores ...) per user, the predictive models, and the record of every run."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from urllib.parse import quote

import typer
from rich.table import Table

from segmint.cli.common import (
    console,
    handle_errors,
    open_workspace,
    print_json,
    running_server,
    server_get,
    server_request,
)
from segmint.errors import Conflict, InvalidInput
from segmint.traits import TRAITS, compute_traits, load_trait_config, user_traits
from segmint.workspace import Workspace

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
    try:
        with console.status("computing traits"):
            run = compute_traits(ws.store, cfg, as_of=when, names=names, publish=publish, workspace_path=ws.path,
                                 trigger="cli")
    finally:
        ws.close()
    console.print(f"run {run.run_id}: {', '.join(run.families)} as of {run.as_of:%Y-%m-%d %H:%M:%S} UTC: "
                  f"{run.users:,} users, {run.rows:,} values in {run.seconds:.1f}s"
                  f"{' (published to profiles)' if run.published else ' (history only)'}")
    for family, note in run.notes.items():
        if note.get("note"):
            console.print(f"{family}: {note['note']}")
        elif note.get("bgnbd"):
            console.print(f"{family}: BG/NBD {note['bgnbd']}")
        elif note.get("models"):
            console.print(f"{family}: " + ", ".join(f"{t} <- {m['model']} v{m['version']}"
                                                    for t, m in note["models"].items()))


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


def _server_post(ws: Workspace, url: str, route: str, **params: Any) -> Any:
    """POST an admin API route of the running server (long timeout: training takes a while)."""
    return server_request(ws, "POST", url, route, timeout=3600, **params)


def _print_model(meta: dict[str, Any], top: int) -> None:
    m = meta["metrics"]
    console.print(f"[bold]{meta['name']}[/bold] v{meta['version']} ({meta['trait']}): holdout AUC {m['auc']:.4f} "
                  f"vs recency-only baseline {m['baseline_auc']:.4f} ({m['baseline_feature']}); Brier {m['brier']:.4f} "
                  f"(baseline {m['baseline_brier']:.4f}, base rate {m['prevalence_brier']:.4f}); "
                  f"{meta['rows']['train']:,} training rows, {meta['rows']['holdout']:,} holdout rows, "
                  f"positive rate {meta['positive_rate']['holdout']:.1%}")
    for w in meta.get("warnings", []):
        console.print(f"[yellow]warning:[/yellow] {w}")
    rel = Table("decile", "n", "mean predicted", "observed", title="calibration on the holdout")
    for r in m["reliability"]:
        rel.add_row(str(r["decile"]), f"{r['n']:,}", f"{r['mean_predicted']:.3f}", f"{r['observed_rate']:.3f}")
    console.print(rel)
    imp = Table("feature", "gain share", title=f"top {top} features")
    for r in meta["feature_importance"][:top]:
        imp.add_row(r["feature"], f"{r['gain_share']:.1%}")
    console.print(imp)


@traits_app.command("train")
@handle_errors
def train_cmd(
    ctx: typer.Context,
    horizon: int = typer.Option(None, "--horizon", help="Predict the next N days (default predict.horizon_days)."),
    top: int = typer.Option(10, "--top", help="How many feature importances to print."),
    as_json: bool = typer.Option(False, "--json", help="JSON output (full metadata)."),
) -> None:
    """Train churn and purchase models on the workspace's history, report holdout AUC / calibration against a
    recency-only baseline, store the new versions, and score every user as of now."""
    ws = open_workspace(ctx)
    url = running_server(ws)
    if url:
        params = {"horizon": horizon} if horizon else {}
        out = _server_post(ws, url, "/api/traits/train", **params)
    else:
        from dataclasses import asdict

        from segmint.traits.runner import train

        cfg = load_trait_config(ws.path)
        try:
            with console.status("training predictive models"):
                run, reports, scored = train(ws.store, cfg, ws.path, horizon=horizon, trigger="cli")
        finally:
            ws.close()
        out = {"run": asdict(run), "models": [r.metadata for r in reports], "scoring": asdict(scored)}
    if as_json:
        print_json(out)
        return
    run = out["run"]
    console.print(f"training run {run['run_id']} in {run['seconds']:.1f}s")
    for meta in out["models"]:
        _print_model(meta, top)
    sc = out["scoring"]
    console.print(f"scored {sc['users']:,} users as of {str(sc['as_of'])[:19]} UTC (run {sc['run_id']}), "
                  "published to profiles")


@traits_app.command("models")
@handle_errors
def models_cmd(
    ctx: typer.Context,
    name: str = typer.Argument(None, help="A model (e.g. churn_30d): show its latest or --version in full."),
    version: int = typer.Option(None, "--version", "-v", help="With NAME: this version."),
    as_json: bool = typer.Option(False, "--json", help="JSON output."),
) -> None:
    """Stored model versions with their holdout metrics (models/<name>/<version>/ in the workspace)."""
    from segmint.traits.predict import get_model, list_models

    ws = open_workspace(ctx)
    if name:
        meta = get_model(ws.path, name, version)
        if as_json:
            print_json(meta)
        else:
            _print_model(meta, 15)
        return
    rows = list_models(ws.path)
    if as_json:
        print_json(rows)
        return
    table = Table("model", "version", "trained", "horizon", "AUC", "baseline AUC", "Brier", "train rows",
                  title=f"models in {ws.path / 'models'}")
    for m in rows:
        table.add_row(m["name"], str(m["version"]), m["trained_at"][:19], f"{m['horizon_days']}d",
                      f"{m['metrics']['auc']:.4f}", f"{m['metrics']['baseline_auc']:.4f}",
                      f"{m['metrics']['brier']:.4f}", f"{m['rows']['train']:,}")
    console.print(table if rows else "no models yet: segmint traits train")


@traits_app.command("runs")
@handle_errors
def runs_cmd(
    ctx: typer.Context,
    limit: int = typer.Option(20, "--limit", "-n", min=1, help="How many runs."),
    as_json: bool = typer.Option(False, "--json", help="JSON output."),
) -> None:
    """Recent trait runs (computes, trainings, scheduled refreshes) and when each family is next due."""
    ws = open_workspace(ctx)
    url = running_server(ws)
    if url:
        out = server_get(ws, url, "/api/traits/runs", limit=limit)
    else:
        from segmint.traits.runner import runs
        from segmint.traits.schedule import schedule_status

        store = ws.open_store_read_only()
        try:
            out = {"runs": runs(store, limit), "schedule": schedule_status(ws, store, None)}
        finally:
            store.close()
    if as_json:
        print_json(out)
        return
    table = Table("run", "kind", "trigger", "families", "started (UTC)", "seconds", "users", "status", "error",
                  title="trait runs")
    for r in out["runs"]:
        started, finished = r["started_at"], r["finished_at"]
        secs = ""
        if finished:
            took = datetime.fromisoformat(str(finished)) - datetime.fromisoformat(str(started))
            secs = f"{took.total_seconds():.1f}"
        table.add_row(str(r["run_id"]), r.get("kind") or "compute", r.get("trigger") or "", ", ".join(r["families"]),
                      str(started)[:19], secs, f"{r['users'] or 0:,}",
                      {"ok": "[green]ok[/green]", "failed": "[red]failed[/red]"}.get(r["status"], r["status"]),
                      (r.get("error") or "")[:80])
    console.print(table)
    sched = out["schedule"]
    note = "" if sched["server"] else " (refreshes run while `segmint serve` runs)"
    due = Table("family", "schedule", "next due (UTC)", title=f"refresh schedule{note}")
    for r in sched["families"]:
        due.add_row(r["name"], r["schedule"] or "never", str(r["next_due"])[:19] if r["next_due"] else "-")
    console.print(due)


def register(app: typer.Typer) -> None:
    """Add `traits` to the root app."""
    app.add_typer(traits_app, name="traits")
