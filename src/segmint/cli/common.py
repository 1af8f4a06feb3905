"""Shared CLI plumbing: the root Typer app, the --workspace option, and turning errors into exit codes."""

from __future__ import annotations

import functools
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import httpx
import typer
from rich.console import Console

from segmint.errors import SegmintError
from segmint.workspace import ENV_VAR, Workspace, default_path

app = typer.Typer(name="segmint", help="CRM segmentation and targeting.", no_args_is_help=True,
                  pretty_exceptions_enable=False)
# Piped output (scripts, tests, CI logs) gets wide tables and unwrapped lines instead of 80 columns.
_WIDTH = None if sys.stdout.isatty() else 200
console = Console(width=_WIDTH, soft_wrap=_WIDTH is not None)
err_console = Console(stderr=True, width=_WIDTH, soft_wrap=True)
F = TypeVar("F", bound=Callable[..., Any])
T = TypeVar("T")

SERVER_FILE = "server.json"


@app.callback()
def _root(
    ctx: typer.Context,
    workspace: Path = typer.Option(None, "--workspace", "-w", envvar=ENV_VAR,
                                   help="Workspace folder (default ./segmint-data)."),
) -> None:
    ctx.obj = {"workspace": workspace or default_path()}


def workspace_path(ctx: typer.Context) -> Path:
    """The workspace folder chosen by --workspace / SEGMINT_WORKSPACE / default."""
    obj = ctx.find_root().obj or {}
    return Path(obj.get("workspace") or default_path())


def open_workspace(ctx: typer.Context) -> Workspace:
    """Open the chosen workspace (errors if there is none)."""
    return Workspace(workspace_path(ctx))


def handle_errors(fn: F) -> F:
    """Print a SegmintError as `error: where: message` and exit 2 instead of a traceback."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except SegmintError as exc:
            err_console.print(f"[red]error:[/red] {exc}", highlight=False, markup=True)
            raise typer.Exit(2) from None

    return wrapper  # type: ignore[return-value]


def running_server(ws: Workspace) -> str | None:
    """Base URL of a live `segmint serve` on this workspace, or None."""
    path = ws.path / SERVER_FILE
    if not path.exists():
        return None
    try:
        info = json.loads(path.read_text())
        os.kill(int(info["pid"]), 0)
    except (OSError, ValueError, KeyError):
        return None
    return str(info["url"])


def server_request(ws: Workspace, method: str, url: str, route: str, *, content: bytes | None = None,
                   body: Any = None, raw: bool = False, timeout: float = 600, **params: Any) -> Any:
    """Call an admin API route of the running server with the workspace's admin token (`body` as JSON, or raw
    `content`); a 4xx/5xx becomes a SegmintError keeping the server's `where`; `raw` returns the bytes."""
    resp = httpx.request(method, url + route, params={k: v for k, v in params.items() if v is not None},
                         content=content, json=body, timeout=timeout,
                         headers={"Authorization": f"Bearer {ws.config.admin_token}"})
    if resp.status_code >= 400:
        try:
            data = resp.json()
        except ValueError:
            raise SegmintError(f"server answered {resp.status_code}: {resp.text[:500]}", where=url + route) from None
        raise SegmintError(str(data.get("message") or data.get("detail") or resp.text[:500]),
                           where=str(data.get("where") or url + route))
    return resp.content if raw else resp.json()


def server_get(ws: Workspace, url: str, route: str, **params: Any) -> Any:
    """GET an admin API route of the running server with the workspace's admin token."""
    return server_request(ws, "GET", url, route, **params)


def from_server_or_store(ws: Workspace, route: str, local: Callable[[Any], T], **params: Any) -> T | Any:
    """Read through the running server's API when one holds the store, else run `local` on a read-only store.

    DuckDB lets only one process open the file while it writes, so CLI reads must go through the server.
    """
    url = running_server(ws)
    if url:
        return server_get(ws, url, route, **params)
    store = ws.open_store_read_only()
    try:
        return local(store)
    finally:
        store.close()


def print_json(value: Any) -> None:
    """Print JSON to stdout (machine-readable output)."""
    sys.stdout.write(json.dumps(value, ensure_ascii=False, default=str, indent=2) + "\n")
