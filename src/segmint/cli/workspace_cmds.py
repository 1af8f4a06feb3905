"""`segmint init` and `segmint keys list|create|revoke`."""

from __future__ import annotations

import secrets

import typer
from rich.table import Table

from segmint.appdb.keys import create_key, list_keys, revoke_key
from segmint.appdb.users import MIN_PASSWORD, create_user
from segmint.cli.common import console, handle_errors, open_workspace, workspace_path
from segmint.workspace import Workspace

keys_app = typer.Typer(help="Manage ingestion write keys.", no_args_is_help=True)


@handle_errors
def init(
    ctx: typer.Context,
    name: str = typer.Option("segmint", help="Workspace name."),
    timezone: str = typer.Option("Asia/Seoul", help="Workspace time zone (IANA)."),
    admin_email: str = typer.Option("admin@localhost", help="Email of the first web UI admin."),
    admin_password: str = typer.Option(None, help="Its password (default: a random one, printed once)."),
) -> None:
    """Create a workspace and print its first write key."""
    from segmint.errors import InvalidInput

    if admin_password is not None and len(admin_password) < MIN_PASSWORD:
        raise InvalidInput(f"needs at least {MIN_PASSWORD} characters", where="--admin-password")
    try:
        ws = Workspace.init(workspace_path(ctx), name=name, timezone=timezone)
    except ValueError as exc:
        raise InvalidInput(str(exc), where="--timezone") from None
    key = create_key(ws.appdb, label="default")
    password = admin_password or secrets.token_urlsafe(12)
    create_user(ws.appdb, admin_email, password, role="admin")
    console.print(f"Created workspace [bold]{ws.path}[/bold]")
    console.print(f"Write key (shown once): [bold green]{key.secret}[/bold green]")
    console.print("Send events:  curl -u KEY: -H 'content-type: application/json' "
                  "-d '{\"userId\":\"u1\",\"event\":\"Signed Up\"}' http://127.0.0.1:8000/v1/track")
    shown = "(as given)" if admin_password else f"[bold green]{password}[/bold green] (shown once)"
    console.print(f"Web UI admin: [bold]{admin_email}[/bold]  password: {shown}")


@keys_app.command("list")
@handle_errors
def keys_list(ctx: typer.Context) -> None:
    """List write keys (secrets are never shown again)."""
    ws = open_workspace(ctx)
    table = Table("id", "prefix", "label", "created", "status")
    for k in list_keys(ws.appdb):
        table.add_row(str(k.id), k.prefix + "…", k.label, str(k.created_at)[:19],
                      "revoked" if k.revoked_at else "active")
    console.print(table)


@keys_app.command("create")
@handle_errors
def keys_create(ctx: typer.Context, label: str = typer.Option("", help="What the key is for.")) -> None:
    """Create a write key and print it once."""
    key = create_key(open_workspace(ctx).appdb, label=label)
    console.print(key.secret, highlight=False)


@keys_app.command("revoke")
@handle_errors
def keys_revoke(ctx: typer.Context, key: str = typer.Argument(..., help="Key id or prefix.")) -> None:
    """Revoke a write key; SDKs using it get 401 from now on."""
    k = revoke_key(open_workspace(ctx).appdb, key)
    console.print(f"revoked key {k.id} ({k.prefix}…)")


def register(app: typer.Typer) -> None:
    """Add these commands to the root app."""
    app.command("init")(init)
    app.add_typer(keys_app, name="keys")
