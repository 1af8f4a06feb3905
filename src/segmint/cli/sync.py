"""`segmint sync add|list|run`: pull rows from the team's own database (placeholder until wired)."""

from __future__ import annotations

import typer

sync_app = typer.Typer(help="Pull events and traits from your own database.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    """Add `sync` to the root app."""
    app.add_typer(sync_app, name="sync")
