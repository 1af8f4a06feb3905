"""Wire a workspace's taxonomy into its ingest pipeline and event store, and install new taxonomy files."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from segmint.errors import InvalidInput
from segmint.taxonomy.model import Taxonomy, load_taxonomy, parse_taxonomy
from segmint.taxonomy.validate import check_event

if TYPE_CHECKING:
    from segmint.ingest.pipeline import Ingestor
    from segmint.workspace import Workspace

MODES = ("strict", "warn", "open")


def workspace_taxonomy(ws: Workspace) -> Taxonomy | None:
    """The workspace's taxonomy, or None when it has no taxonomy file."""
    return load_taxonomy(ws.taxonomy_path) if ws.taxonomy_path.exists() else None


def install_checker(ws: Workspace, ingestor: Ingestor, tax: Taxonomy | None) -> None:
    """Set the ingestor's checker for the configured mode (open mode, or no taxonomy: no checks)."""
    mode = ws.config.taxonomy.mode
    if tax is None or mode == "open":
        ingestor.checker = None
        ingestor.strict = False
        return
    ingestor.checker = lambda ev: check_event(tax, ev)
    ingestor.strict = mode == "strict"


def attach_taxonomy(ws: Workspace, ingestor: Ingestor) -> None:
    """Create typed columns for declared properties and install the checker for the configured mode."""
    tax = workspace_taxonomy(ws)
    if tax is None:
        return
    ws.store.ensure_property_columns(tax.typed_columns())
    install_checker(ws, ingestor, tax)


def apply_taxonomy(ws: Workspace, text: str, source: str, *, mode: str | None = None,
                   ingestor: Ingestor | None = None) -> dict[str, Any]:
    """Validate taxonomy YAML, create (and backfill) its typed columns, install it as the workspace's file."""
    tax = parse_taxonomy(text, source)
    if mode is not None and mode not in MODES:
        raise InvalidInput(f"unknown mode {mode!r}; use one of {', '.join(MODES)}", where="mode")
    wanted = tax.typed_columns()
    existing = ws.store.property_columns()
    for name, typ in wanted.items():
        if name in existing and existing[name] != typ:
            raise InvalidInput(f"typed column for {name!r} already exists as {existing[name]}, the file says {typ}; "
                               "a column keeps its type (declare a new property name instead)", where=source)
    added = ws.store.ensure_property_columns(wanted)
    tmp = ws.taxonomy_path.with_suffix(".yaml.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(ws.taxonomy_path)
    if mode is not None and mode != ws.config.taxonomy.mode:
        ws.config.taxonomy.mode = mode  # type: ignore[assignment]
        ws.save()
    if ingestor is not None:
        install_checker(ws, ingestor, tax)
    return {"events": len(tax.events), "traits": len(tax.traits), "columns_added": added,
            "columns": sorted(wanted), "mode": ws.config.taxonomy.mode, "file": str(ws.taxonomy_path)}
