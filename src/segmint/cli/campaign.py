"""`segmint campaign create|apply|list|show|preview|send|pause|resume|worker|ledger`.

Campaign definitions live in the app DB (safe to change from any process). Planning and previews need the
event store: with a server running they go through its REST API; otherwise the store is opened here.
`worker` needs only the app DB, so any number of worker processes can share a send next to the server.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import typer
import yaml
from rich.table import Table

from segmint.campaigns import repo
from segmint.campaigns.ledger import ledger_rows
from segmint.campaigns.model import Campaign, read_campaign_file
from segmint.cli.common import console, handle_errors, open_workspace, print_json, running_server, server_request
from segmint.errors import InvalidInput

group = typer.Typer(help="Campaigns: define, preview, send; guardrails and the delivery ledger.",
                    no_args_is_help=True)


_server = server_request  # the running server's admin API (cli/common.py)


def _kakao_checked(campaign: Campaign, where: str) -> Campaign:
    """The campaign, or an error at `where` for what the composer would refuse on KakaoTalk."""
    from segmint.errors import InvalidInput
    from segmint.web.kakao_fields import refuse_kakao_errors

    try:
        refuse_kakao_errors(campaign)
    except InvalidInput as exc:
        raise InvalidInput(exc.message, where=f"{where}: {exc.where}") from None
    return campaign


@group.command("create")
@handle_errors
def create(ctx: typer.Context, file: Path = typer.Argument(..., help="Campaign YAML (or JSON) file."),
           activate: bool = typer.Option(False, "--activate", help="Make it active (sends when due)."),
           as_json: bool = typer.Option(False, "--json")) -> None:
    """Create a campaign from a YAML file, or save a new version of it."""
    ws = open_workspace(ctx)
    campaign = _kakao_checked(read_campaign_file(file), str(file))
    sc, result = repo.save_campaign(ws.appdb, campaign, status="active" if activate else None, where=str(file))
    if as_json:
        print_json({**sc.to_dict(), "result": result})
    else:
        console.print(f"{result}: {sc.campaign.id} (version {sc.version}, {sc.status})", highlight=False)


@group.command("apply")
@handle_errors
def apply(ctx: typer.Context, folder: Path = typer.Argument(..., help="Folder of campaign *.yaml files."),
          dry_run: bool = typer.Option(False, "--dry-run")) -> None:
    """Sync campaigns from a folder (campaigns as code); new ones are drafts."""
    from segmint.campaigns.model import read_campaign_dir

    for c in read_campaign_dir(folder):
        _kakao_checked(c, f"{folder}/{c.id}")
    result = repo.apply_dir(open_workspace(ctx).appdb, folder, dry_run=dry_run)
    for cid, action in result.changes.items():
        console.print(f"{action}: {cid}", highlight=False)


@group.command("list")
@handle_errors
def list_cmd(ctx: typer.Context, as_json: bool = typer.Option(False, "--json")) -> None:
    """Campaigns with status, schedule and ledger counts."""
    from segmint.campaigns.runtime import status_counts

    ws = open_workspace(ctx)
    items = repo.list_campaigns(ws.appdb)
    if as_json:
        print_json([{**c.to_dict(), "ledger": status_counts(ws, c.campaign.id)} for c in items])
        return
    table = Table("id", "name", "status", "version", "schedule", "channels", "ledger")
    for c in items:
        counts = status_counts(ws, c.campaign.id)
        table.add_row(c.campaign.id, c.campaign.name, c.status, str(c.version), c.campaign.schedule.type,
                      ",".join(c.campaign.channels), " ".join(f"{k}={v}" for k, v in sorted(counts.items())))
    console.print(table)


@group.command("show")
@handle_errors
def show(ctx: typer.Context, campaign_id: str, as_json: bool = typer.Option(False, "--json")) -> None:
    """One campaign's definition (YAML) and ledger counts."""
    from segmint.campaigns.runtime import status_counts

    ws = open_workspace(ctx)
    sc = repo.get_campaign(ws.appdb, campaign_id)
    out = {**sc.to_dict(), "ledger": status_counts(ws, campaign_id)}
    if as_json:
        print_json(out)
        return
    console.print(f"{sc.campaign.id}: {sc.status}, version {sc.version}, ledger {out['ledger']}", highlight=False,
                  markup=False)
    console.print(yaml.safe_dump(sc.campaign.model_dump(mode="json", exclude_defaults=True), allow_unicode=True,
                                 sort_keys=False), highlight=False, markup=False)


@group.command("preview")
@handle_errors
def preview(ctx: typer.Context, campaign_id: str, user: str = typer.Option(..., "--user", "-u"),
            as_json: bool = typer.Option(False, "--json")) -> None:
    """Render each variant for a real user and show which guardrails would apply."""
    ws = open_workspace(ctx)
    url = running_server(ws)
    if url:
        out = _server(ws, "GET", url, f"/api/campaigns/{campaign_id}/preview", user_id=user)
    else:
        from segmint.campaigns.preview import preview_user

        store = ws.open_store_read_only()
        try:
            out = preview_user(ws, repo.get_campaign(ws.appdb, campaign_id).campaign, user, store=store)
        finally:
            store.close()
    if as_json:
        print_json(out)
        return
    console.print(f"user {user}: group {out['group']}, zone {out['timezone']}, in target: {out['in_target']}",
                  highlight=False, markup=False)
    for v in out["variants"]:
        verdict = v["outcome"] + (f" ({v['reason']}: {v['detail']})" if v["reason"] else "")
        console.print(f"\n[bold]variant {v['variant']}[/bold] via {v['channel']}: {verdict}", highlight=False)
        for c in v["checks"]:
            console.print(f"  {'ok  ' if c['ok'] else 'STOP'} {c['check']}"
                          f"{' - ' + str(c.get('reason')) if c.get('reason') else ''}", highlight=False, markup=False)
        if v["message"]:
            m = v["message"]
            console.print(f"  to: {m['to']}\n  subject: {m['subject']}\n  text:\n    " +
                          str(m["text"]).replace("\n", "\n    "), highlight=False, markup=False)


@group.command("send")
@handle_errors
def send(ctx: typer.Context, campaign_id: str,
         no_deliver: bool = typer.Option(False, "--plan-only", help="Plan the ledger rows; let workers send."),
         concurrency: int = typer.Option(8, "--concurrency", min=1, max=256),
         processes: int = typer.Option(1, "--processes", min=1, max=64, help="Plan in this many processes "
                                       "(without a server)."),
         as_json: bool = typer.Option(False, "--json")) -> None:
    """Activate a campaign and send its due occurrence now (one-off now, recurring's latest time)."""
    ws = open_workspace(ctx)
    url = running_server(ws)
    if url:
        out = _server(ws, "POST", url, f"/api/campaigns/{campaign_id}/send")
    else:
        from segmint.campaigns.events import store_sink
        from segmint.campaigns.runtime import send_now

        try:
            out = send_now(ws, campaign_id, sink=store_sink(ws.store), deliver=not no_deliver,
                           concurrency=concurrency, processes=processes)
        finally:
            ws.close()
    if as_json:
        print_json(out)
        return
    for p in out["plans"]:
        console.print(f"planned {p['occurrence']}: audience {p['audience']}, {p['statuses']}, reasons {p['reasons']}",
                      highlight=False, markup=False)
    console.print(f"ledger: {out['ledger']}", highlight=False, markup=False)


def _status(ctx: typer.Context, campaign_id: str, status: str) -> None:
    sc = repo.set_status(open_workspace(ctx).appdb, campaign_id, status)
    console.print(f"{sc.campaign.id}: {sc.status}", highlight=False)


@group.command("pause")
@handle_errors
def pause(ctx: typer.Context, campaign_id: str) -> None:
    """Pause: workers stop claiming its queued messages (in-flight ones finish)."""
    _status(ctx, campaign_id, "paused")


@group.command("resume")
@handle_errors
def resume(ctx: typer.Context, campaign_id: str) -> None:
    """Resume a paused campaign."""
    _status(ctx, campaign_id, "active")


@group.command("worker")
@handle_errors
def worker(ctx: typer.Context, campaign_id: str = typer.Option(None, "--campaign", "-c"),
           batch: int = typer.Option(200, "--batch", min=1, max=10_000),
           concurrency: int = typer.Option(8, "--concurrency", min=1, max=256),
           lease: float = typer.Option(60.0, "--lease", min=0.1, help="Seconds before a dead worker's claims "
                                       "are taken over."),
           uncertain: str = typer.Option("resend", "--uncertain", help="resend | fail: what to do with a dead "
                                         "worker's non-idempotent in-flight messages."),
           forever: bool = typer.Option(False, "--forever", help="Keep polling instead of exiting when idle."),
           poll: float = typer.Option(0.5, "--poll", min=0.01, max=60.0, help="Seconds between polls when idle.")) \
        -> None:
    """Send due messages (claims are exclusive: run as many workers as you like)."""
    import threading

    from segmint.campaigns.deliver import Worker
    from segmint.campaigns.sendcheck import SendTimeCheck
    from segmint.channels.registry import build_channels

    if uncertain not in ("resend", "fail"):
        raise InvalidInput("--uncertain is resend or fail", where="--uncertain")
    ws = open_workspace(ctx)
    w = Worker(ws.appdb, build_channels(ws), batch=batch, concurrency=concurrency, campaign_id=campaign_id,
               lease=timedelta(seconds=lease), uncertain=uncertain, default_zone=ws.config.zone.key,
               checker=SendTimeCheck(ws, read_only=True))
    try:
        stats = w.run(until_idle=not forever, stop=threading.Event() if forever else None, idle_sleep=poll)
    finally:
        w.close()
    print_json(stats.__dict__)


@group.command("receipts")
@handle_errors
def receipts(ctx: typer.Context, min_age: float = typer.Option(10.0, "--min-age", min=0, help="Seconds after the "
                                                               "send before asking the provider."),
             limit: int = typer.Option(500, "--limit", min=1, max=100_000)) -> None:
    """Ask providers with a delivery lookup (NHN SMS, AlimTalk) about sent messages; record delivered/bounced."""
    from segmint.campaigns.receipts import poll_receipts
    from segmint.channels.registry import build_channels

    ws = open_workspace(ctx)
    print_json(poll_receipts(ws.appdb, build_channels(ws), min_age=timedelta(seconds=min_age), limit=limit))


@group.command("bounces")
@handle_errors
def bounces(ctx: typer.Context, files: list[Path] = typer.Argument(..., help="Bounce mails (DSN, .eml) to read.")) \
        -> None:
    """Record SMTP delivery status notifications (RFC 3464 bounces) in the ledger."""
    from segmint.campaigns.bounces import record_dsn

    ws = open_workspace(ctx)
    found = []
    for f in files:
        if not f.is_file():
            raise InvalidInput(f"no such file: {f}", where=str(f))
        found += [{"file": str(f), **r} for r in record_dsn(ws.appdb, f.read_bytes())]
    print_json(found)


@group.command("ledger")
@handle_errors
def ledger(ctx: typer.Context, campaign_id: str, status: str = typer.Option(None, "--status"),
           limit: int = typer.Option(20, "--limit"), as_json: bool = typer.Option(False, "--json")) -> None:
    """Ledger rows of a campaign."""
    rows = ledger_rows(open_workspace(ctx).appdb, campaign_id)
    rows = [r for r in rows if status is None or r["status"] == status][:limit]
    if as_json:
        print_json(rows)
        return
    table = Table("user", "variant", "channel", "status", "reason", "attempts", "due", "sent")
    for r in rows:
        table.add_row(r["user_id"], r["variant"], r["channel"], r["status"], r["reason"] or "", str(r["attempts"]),
                      str(r["due_at"])[:19], str(r["sent_at"] or "")[:19])
    console.print(table)


def register(app: typer.Typer) -> None:
    """Add the `campaign` command group."""
    app.add_typer(group, name="campaign")
