"""`segmint serve`: run the HTTP API (ingestion, admin API, UI) on one workspace."""

from __future__ import annotations

import gc
import json
import os

import typer

from segmint.cli.common import SERVER_FILE, console, handle_errors, open_workspace
from segmint.workspace import Workspace


def tune_gc() -> None:
    """Freeze what startup allocated and collect less often: ingestion allocates many short-lived
    dicts, and full collections over the imported modules were the main source of latency spikes
    (measured: ~1.6x events/s and p99 248 -> 83 ms on /v1/batch, see docs/benchmarks.md)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(20_000, 20, 20)


def run_server(ws: Workspace, host: str, port: int) -> None:
    """Serve the workspace until interrupted; records server.json so the CLI can find it."""
    import uvicorn

    from segmint.api.app import create_app

    info = ws.path / SERVER_FILE
    info.write_text(json.dumps({"pid": os.getpid(), "url": f"http://{host}:{port}"}))
    app = create_app(ws)
    tune_gc()
    try:
        uvicorn.run(app, host=host, port=port, log_level="warning")
    finally:
        info.unlink(missing_ok=True)


@handle_errors
def serve(
    ctx: typer.Context,
    host: str = typer.Option(None, help="Interface to listen on (default from segmint.toml: 127.0.0.1)."),
    port: int = typer.Option(None, help="Port (default from segmint.toml: 8000)."),
) -> None:
    """Run the HTTP API and UI."""
    ws = open_workspace(ctx)
    host = host or ws.config.server.host
    port = port or ws.config.server.port
    console.print(f"segmint serving [bold]{ws.path}[/bold] on http://{host}:{port}  (Ctrl-C stops)")
    run_server(ws, host, port)


def register(app: typer.Typer) -> None:
    """Add `serve` to the root app."""
    app.command("serve")(serve)
