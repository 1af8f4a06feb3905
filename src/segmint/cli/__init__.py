"""The `segmint` command line (Typer): one module per command group, registered here."""

from __future__ import annotations

from segmint.cli import events, segment, serve, workspace_cmds
from segmint.cli.common import app

workspace_cmds.register(app)
serve.register(app)
events.register(app)
segment.register(app)


def main() -> None:
    """Console-script entry point."""
    app()


__all__ = ["app", "main"]
