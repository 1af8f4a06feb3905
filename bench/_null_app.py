"""Baseline for the ingestion benchmark: a FastAPI endpoint that reads the body and does nothing else."""

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

app = FastAPI()


@app.get("/health")
async def health() -> dict[str, str]:
    """Liveness."""
    return {"status": "ok"}


@app.post("/v1/batch")
async def batch(request: Request) -> JSONResponse:
    """Read the body, answer like Segment; no parsing, no journal."""
    await request.body()
    return JSONResponse({"success": True})
