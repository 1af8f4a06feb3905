"""The `segmint` command line (Typer): one module per command group, registered here."""

from __future__ import annotations

from segmint.cli import demo, events, importer, serve, sync, taxonomy, users, workspace_cmds
from segmint.cli.common import app

workspace_cmds.register(app)
serve.register(app)
events.register(app)
importer.register(app)
sync.register(app)
taxonomy.register(app)
demo.register(app)
users.register(app)


def main() -> None:
    """Console-script entry point."""
    app()


__all__ = ["app", "main"]
