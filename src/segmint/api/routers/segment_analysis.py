"""Admin API for looking at segments: growth (with the 90-day backfill), overlap, profile, and static
segments (snapshots, CSV uploads, snapshot-vs-now comparison). Under /api/segment-analysis so segment names
travel as query parameters and never collide with /api/segments/{name:path}."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from segmint.analytics import overlap as ov
from segmint.analytics import segment_growth as sg
from segmint.analytics import segment_profile as sp
from segmint.api.deps import AppState, get_state, require_admin
from segmint.errors import InvalidInput, PayloadTooLarge
from segmint.segments import saved
from segmint.segments import static as st

router = APIRouter(prefix="/api/segment-analysis", tags=["segment analysis"], dependencies=[Depends(require_admin)])


def _name(description: str = "Segment name.") -> Any:
    """A required segment-name query parameter (a new Query each time: FastAPI binds one to one parameter)."""
    return Query(..., min_length=1, max_length=128, description=description)


class GrowthDayOut(BaseModel):
    """One local calendar day: members at its end, entries and exits during it."""

    day: date
    members: int
    entries: int
    exits: int


class GrowthOut(BaseModel):
    """Members, entries and exits per day (workspace time zone)."""

    segment: str
    timezone: str
    days: list[GrowthDayOut]
    backfilled_until: datetime | None
    live_since: datetime | None


class BackfillIn(BaseModel):
    """Which segment to backfill and how many days back."""

    segment: str = Field(min_length=1, max_length=128)
    days: int = Field(sg.DEFAULT_DAYS, ge=1, le=sg.MAX_DAYS)


class BackfillOut(BaseModel):
    """What a backfill run recorded."""

    segment: str
    version: int
    days: int
    evaluated: int
    entries: int
    exits: int
    first: datetime | None
    last: datetime | None
    live_since: datetime | None
    skipped: str | None


class OverlapOut(BaseModel):
    """Shared members between every pair of chosen segments (percent of the row segment's size)."""

    segments: list[str]
    as_of: datetime | None
    sizes: list[int]
    shared: list[list[int]]
    percent: list[list[float]]
    jaccard: list[list[float]]
    union: int


class ValueShareOut(BaseModel):
    """One value of a categorical trait."""

    value: str
    members: int
    population: int
    member_share: float
    population_share: float
    lift: float | None


class NumericOut(BaseModel):
    """Count, missing, mean and quantiles of a numeric trait in one group."""

    count: int
    missing: int
    mean: float | None
    quantiles: dict[str, float | None]


class TraitProfileOut(BaseModel):
    """One trait: members against everyone, with a divergence score (total variation distance)."""

    name: str
    source: Literal["computed", "trait"]
    kind: Literal["categorical", "numeric", "identifier"]
    divergence: float | None
    flagged: bool
    values: list[ValueShareOut]
    members: NumericOut | None
    population: NumericOut | None
    distinct: int


class ProfileOut(BaseModel):
    """A segment's members against the whole population, most divergent traits first."""

    segment: str
    as_of: datetime | None
    members: int
    members_without_profile: int
    population: int
    flag_threshold: float
    traits: list[TraitProfileOut]
    flagged: list[str]


class SnapshotIn(BaseModel):
    """Freeze a saved segment (`source`) or a definition into a new static segment, as of a time."""

    name: str = Field(min_length=1, max_length=128)
    source: str | None = Field(None, min_length=1, max_length=128)
    definition: str | dict[str, Any] | None = None
    as_of: datetime | None = None
    description: str = Field("", max_length=5000)
    labels: list[str] = Field(default_factory=list, max_length=saved.MAX_LABELS)


class StaticOut(BaseModel):
    """A static segment, its size, and where it came from."""

    name: str
    description: str
    labels: list[str]
    version: int
    count: int
    origin: Literal["snapshot", "upload", "saved"]
    source: str | None
    source_version: int | None
    as_of: datetime | None
    created_at: datetime | None
    detail: dict[str, Any]


class CompareOut(BaseModel):
    """A snapshot against a segment's membership now (or as of a time)."""

    snapshot: str
    against: str
    as_of: datetime
    snapshot_count: int
    current_count: int
    both: int
    only_in_snapshot: int
    only_now: int
    jaccard: float
    only_in_snapshot_sample: list[str]
    only_now_sample: list[str]


@router.get("/growth")
def growth(state: AppState = Depends(get_state), segment: str = _name(),
           days: int = Query(sg.DEFAULT_DAYS, ge=1, le=sg.MAX_DAYS)) -> GrowthOut:
    """Members at each day end, entries and exits per day, for the last `days` days (today included)."""
    ws = state.workspace
    g = sg.growth(ws.appdb, ws.store, segment, zone=ws.config.zone, days=days)
    return GrowthOut.model_validate(g.to_dict())


@router.post("/backfill")
def backfill(body: BackfillIn, state: AppState = Depends(get_state)) -> BackfillOut:
    """Fill a segment's history for the last `days` days by as-of evaluation at each day end (idempotent)."""
    ws = state.workspace
    r = sg.backfill(ws.appdb, ws.store, body.segment, zone=ws.config.zone, days=body.days)
    return BackfillOut.model_validate(r.to_dict())


@router.get("/overlap")
def overlap(state: AppState = Depends(get_state),
            segment: list[str] = Query(..., description="Two or more segment names (repeat the parameter)."),
            as_of: datetime | None = None) -> OverlapOut:
    """Shared members between the chosen segments, now or as of a time."""
    ws = state.workspace
    return OverlapOut.model_validate(ov.overlap(ws.appdb, ws.store, segment, as_of).to_dict())


@router.get("/profile")
def profile(state: AppState = Depends(get_state), segment: str = _name(),
            traits: str = Query("", max_length=5000, description="Comma-separated trait names (default: all)."),
            as_of: datetime | None = None, top: int = Query(10, ge=1, le=100),
            flag: float = Query(sp.DEFAULT_FLAG, gt=0, le=1)) -> ProfileOut:
    """Trait distributions of the members against everyone; traits where members diverge are flagged."""
    ws = state.workspace
    names = [t.strip() for t in traits.split(",") if t.strip()]
    p = sp.profile(ws.appdb, ws.store, segment, traits=names, as_of=as_of, top=top, flag=flag)
    return ProfileOut.model_validate(p.to_dict())


@router.get("/static")
def list_static(state: AppState = Depends(get_state)) -> list[StaticOut]:
    """Every static segment (snapshots, uploads, frozen saves) with its origin."""
    return [StaticOut.model_validate(s.to_dict()) for s in st.list_static(state.workspace.appdb)]


@router.post("/snapshots", status_code=201)
def snapshot(body: SnapshotIn, state: AppState = Depends(get_state)) -> StaticOut:
    """Snapshot a saved segment or a definition at an as-of time (default now) into a static segment."""
    ws = state.workspace
    catalog = saved.workspace_catalog(ws) if body.definition is not None else None
    s = st.snapshot(ws.appdb, ws.store, body.name, source=body.source, definition=body.definition,
                    as_of=body.as_of, description=body.description, labels=body.labels, catalog=catalog)
    return StaticOut.model_validate(s.to_dict())


async def _body(request: Request) -> bytes:
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > st.MAX_UPLOAD_BYTES:
            raise PayloadTooLarge(f"upload is over {st.MAX_UPLOAD_BYTES:,} bytes", where="body")
        chunks.append(chunk)
    return b"".join(chunks)


@router.post("/uploads", status_code=201)
async def upload(request: Request, state: AppState = Depends(get_state),
                 name: str = _name("Name of the new static segment."),
                 unknown: Literal["keep", "drop"] = Query("keep", description="Ids the store does not know."),
                 column: str | None = Query(None, max_length=128, description="Header of the user id column."),
                 file_name: str | None = Query(None, max_length=256),
                 description: str = Query("", max_length=5000),
                 label: list[str] = Query([], description="Labels (repeat the parameter).")) -> StaticOut:
    """Create a static segment from a CSV body of user ids (text/csv); bad rows -> 400 with line numbers."""
    data = await _body(request)
    if not data:
        raise InvalidInput("the request body is empty: send the CSV file as the body", where="body")
    ws = state.workspace
    s = await run_in_threadpool(st.upload, ws.appdb, ws.store, name, data, unknown=unknown, column=column,
                                file_name=file_name, description=description, labels=label)
    return StaticOut.model_validate(s.to_dict())


@router.get("/compare")
def compare(state: AppState = Depends(get_state), snapshot: str = _name("Static segment."),
            against: str | None = Query(None, min_length=1, max_length=128,
                                        description="Segment to compare with (default: the snapshot's source)."),
            as_of: datetime | None = None, sample: int = Query(st.SAMPLE, ge=0, le=1000)) -> CompareOut:
    """Who is only in the snapshot, only in the segment now, in both; and the Jaccard index."""
    ws = state.workspace
    c = st.compare(ws.appdb, ws.store, snapshot, against=against, as_of=as_of, sample=sample)
    return CompareOut.model_validate(c.to_dict())
