"""`segmint users create|list`: people who sign in to the web UI."""

from __future__ import annotations

import typer
from rich.table import Table

from segmint.appdb.users import ROLES, create_user, list_users
from segmint.cli.common import console, handle_errors, open_workspace
from segmint.errors import InvalidInput

users_app = typer.Typer(help="Manage web UI users.", no_args_is_help=True)


@users_app.command("create")
@handle_errors
def users_create(
    ctx: typer.Context,
    email: str = typer.Argument(..., help="Sign-in email."),
    password: str = typer.Option(None, help="Password (asked for when not given)."),
    role: str = typer.Option("marketer", help=f"One of: {', '.join(ROLES)}."),
    name: str = typer.Option("", help="Display name."),
) -> None:
    """Create a UI user."""
    if role not in ROLES:
        raise InvalidInput(f"role must be one of {', '.join(ROLES)}, not {role!r}", where="--role")
    if password is None:
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    user = create_user(open_workspace(ctx).appdb, email, password, role=role, display_name=name)
    console.print(f"created {user.role} {user.email}")


@users_app.command("list")
@handle_errors
def users_list(ctx: typer.Context) -> None:
    """List UI users."""
    table = Table("id", "email", "name", "role", "created", "last login")
    for u in list_users(open_workspace(ctx).appdb):
        table.add_row(str(u.id), u.email, u.display_name, u.role, str(u.created_at)[:19],
                      str(u.last_login_at)[:19] if u.last_login_at else "-")
    console.print(table)


def register(app: typer.Typer) -> None:
    """Add `users` to the root app."""
    app.add_typer(users_app, name="users")
