"""Wire a workspace's taxonomy into its ingest pipeline and event store."""

from __future__ import annotations

from typing import TYPE_CHECKING

from segmint.taxonomy.model import Taxonomy, load_taxonomy
from segmint.taxonomy.validate import check_event

if TYPE_CHECKING:
    from segmint.ingest.pipeline import Ingestor
    from segmint.workspace import Workspace


def workspace_taxonomy(ws: Workspace) -> Taxonomy | None:
    """The workspace's taxonomy, or None when it has no taxonomy file."""
    return load_taxonomy(ws.taxonomy_path) if ws.taxonomy_path.exists() else None


def attach_taxonomy(ws: Workspace, ingestor: Ingestor) -> None:
    """Create typed columns for declared properties and install the checker for the configured mode."""
    tax = workspace_taxonomy(ws)
    if tax is None:
        return
    ws.store.ensure_property_columns(tax.typed_columns())
    mode = ws.config.taxonomy.mode
    if mode == "open":
        return
    ingestor.checker = lambda ev: check_event(tax, ev)
    ingestor.strict = mode == "strict"
