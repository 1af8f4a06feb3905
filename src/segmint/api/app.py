"""The FastAPI application: one workspace, its ingest pipeline started and stopped with the app."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from segmint import __version__
from segmint.api.deps import AppState
from segmint.errors import SegmintError
from segmint.ingest.journal import Journal
from segmint.ingest.pipeline import Ingestor
from segmint.workspace import Workspace


def build_ingestor(ws: Workspace) -> Ingestor:
    """The workspace's ingest pipeline (journal + writer), configured from segmint.toml."""
    cfg = ws.config.ingest
    ingestor = Ingestor(
        ws.store,
        Journal(ws.journal_dir),
        flush_interval=cfg.flush_interval_ms / 1000,
        flush_max_rows=cfg.flush_max_rows,
        dedupe_window=timedelta(hours=cfg.dedupe_window_hours),
    )
    from segmint.taxonomy.runtime import attach_taxonomy

    attach_taxonomy(ws, ingestor)
    return ingestor


def create_app(ws: Workspace) -> FastAPI:
    """Build the app for a workspace; the ingest writer runs for the app's lifetime."""
    from segmint.web.session import ensure_session_secret

    ensure_session_secret(ws)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        from segmint.traits.schedule import TraitScheduler

        ingestor = build_ingestor(ws)
        from segmint.segments.live import start_live

        live = start_live(ws, ingestor)  # dynamic segment membership (docs/live-segments.md)
        ingestor.start()
        app.state.segmint = AppState(ws, ingestor, extras={"live": live})
        from segmint.campaigns.runtime import start_runtime

        campaigns = start_runtime(ws, ingestor)
        scheduler = app.state.segmint.extras["trait_scheduler"] = TraitScheduler(ws)  # due trait refreshes
        scheduler.start()
        try:
            yield
        finally:
            scheduler.stop()
            campaigns.stop()
            ingestor.stop()
            if live is not None:
                live.stop()
            ws.close()

    app = FastAPI(title="segmint", version=__version__, lifespan=lifespan,
                  description="CRM segmentation and targeting: ingestion, segments, campaigns.")

    @app.exception_handler(SegmintError)
    async def _segmint_error(_request: Request, exc: SegmintError) -> JSONResponse:
        return JSONResponse(exc.to_dict(), status_code=exc.status_code)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_request: Request, exc: RequestValidationError) -> JSONResponse:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"])
        return JSONResponse({"error": "invalid_input", "message": err["msg"], "where": where}, status_code=400)

    from segmint.web.render import CsrfRejected, csrf_rejected_page

    app.add_exception_handler(CsrfRejected, csrf_rejected_page)
    from segmint.api.routers import ROUTERS

    for router in ROUTERS:
        app.include_router(router)
    from fastapi.staticfiles import StaticFiles

    from segmint.web import STATIC_DIR

    app.mount("/static", StaticFiles(directory=str(STATIC_DIR)), name="static")
    return app
