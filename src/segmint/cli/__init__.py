"""The `segmint` command line (Typer): one module per command group, registered here."""

from __future__ import annotations

from segmint.cli import (
    campaign,
    campaign_report,
    demo,
    events,
    importer,
    segment,
    segment_analysis,
    segment_live,
    segments_saved,
    serve,
    sync,
    taxonomy,
    traits,
    users,
    workspace_cmds,
)
from segmint.cli.common import app

workspace_cmds.register(app)
serve.register(app)
events.register(app)
importer.register(app)
sync.register(app)
taxonomy.register(app)
demo.register(app)
segment.register(app)
segments_saved.register(app)  # after `segment`: adds save/list/show/... to its group
segment_analysis.register(app)  # growth/overlap/profile/snapshot/upload/compare on the same group
segment_live.register(app)  # history/evaluations/health/sweep in the same group
traits.register(app)
users.register(app)
campaign.register(app)
campaign_report.register(app)  # `report campaign`, `demo compare`


def main() -> None:
    """Console-script entry point."""
    app()


__all__ = ["app", "main"]
