"""`segmint import FILE...`: load JSONL messages, or CSV / Parquet rows through a column mapping."""

from __future__ import annotations

import functools
from pathlib import Path

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from segmint.cli.common import console, handle_errors, open_workspace, running_server
from segmint.errors import WorkspaceError
from segmint.ingest.files import (
    ImportResult,
    check_file,
    count_rows,
    detect_format,
    import_jsonl_file,
    import_table_file,
)
from segmint.ingest.tabular import load_mapping
from segmint.taxonomy.runtime import workspace_taxonomy
from segmint.taxonomy.validate import check_event


def _progress() -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    )


def _report(res: ImportResult) -> None:
    console.print(
        f"{res.file}: {res.imported:,} imported, {res.duplicates:,} duplicates skipped, {res.rejected:,} rejected",
        highlight=False,
        soft_wrap=True,
    )
    for reason, n in sorted(res.reasons.items(), key=lambda kv: -kv[1]):
        console.print(f"  rejected {n:,}: {reason}", highlight=False)


@handle_errors
def import_files(
    ctx: typer.Context,
    files: list[Path] = typer.Argument(..., help="Files to import (.jsonl, .csv, .parquet)."),
    fmt: str = typer.Option(None, "--format", help="jsonl | csv | parquet (default: from the extension)."),
    maps: list[str] = typer.Option(
        [],
        "--map",
        help="COLUMN=FIELD: user_id, anonymous_id, event, timestamp, "
        "message_id, properties.NAME, traits.NAME, or - to ignore.",
    ),
    mapping_file: Path = typer.Option(None, "--mapping", help="YAML mapping: type, event, columns, properties."),
    type_: str = typer.Option(None, "--type", help="track (events) or identify (profile traits)."),
    event: str = typer.Option(None, "--event", help="Event name for every row (instead of an event column)."),
    source: str = typer.Option("import", "--source", help="Value of the events' source column."),
) -> None:
    """Import events or profiles from files; re-importing a file adds nothing.

    The event store must not be held by a running `segmint serve`: stop it first.
    """
    ws = open_workspace(ctx)
    url = running_server(ws)
    if url:
        raise WorkspaceError(
            f"a server is running on this workspace ({url}) and holds the event store; "
            "stop it, run the import, then start it again",
            where=str(ws.path),
        )
    plans = []
    for path in files:
        check_file(path)
        plans.append((path, detect_format(path, fmt)))
    tabular = any(f != "jsonl" for _, f in plans)
    mapping = load_mapping(mapping_file, pairs=maps, type_=type_, event=event) if tabular else None
    totals = ImportResult("total")
    results: list[ImportResult] = []
    tax = workspace_taxonomy(ws)
    checker = None
    try:
        store = ws.store
        if tax is not None:  # typed property columns exist before the rows arrive
            store.ensure_property_columns(tax.typed_columns())
            if ws.config.taxonomy.mode != "open":
                checker = functools.partial(check_event, tax)
        with _progress() as bar:
            for path, kind in plans:
                task = bar.add_task(path.name, total=count_rows(path, kind))

                def advance(n: int, task: int = task) -> None:
                    bar.advance(task, n)

                if kind == "jsonl":
                    res = import_jsonl_file(
                        store,
                        path,
                        source=source,
                        progress=advance,
                        checker=checker,
                        strict=ws.config.taxonomy.mode == "strict",
                    )
                else:
                    res = import_table_file(store, path, kind, mapping, source=source, progress=advance)
                bar.update(task, completed=res.rows, total=res.rows)
                results.append(res)
    finally:
        ws.close()
    for res in results:
        _report(res)
        totals.add(res.rows, res.imported, res.rejected)
    if len(plans) > 1:
        _report(totals)
    if totals.rejected:
        console.print("see `segmint events rejected` for the refused rows and reasons")


def register(app: typer.Typer) -> None:
    """Add `import` to the root app."""
    app.command("import")(import_files)
