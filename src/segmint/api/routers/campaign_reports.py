"""Admin API for campaign reports: metrics per campaign x variant x segment and uplift vs control."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from segmint.analytics.campaign_report import workspace_report
from segmint.api.deps import AppState, get_state, require_admin

router = APIRouter(tags=["campaign reports"], dependencies=[Depends(require_admin)])
MAX_ROWS = 1_000_000


class ReportRequest(BaseModel):
    """A report over given ledger rows (or the campaign's own ledger when `recipients` is absent)."""

    campaign_id: str | None = Field(None, description="Campaign id; filters `recipients` when both are given.")
    recipients: list[dict[str, Any]] | None = Field(
        None, max_length=MAX_ROWS,
        description="Ledger rows: campaign_id, occurrence, user_id, variant, channel, status, reason, queued_at, "
                    "sent_at (control rows: the would-be send time), optional segment and due_at.")
    goal: str | dict[str, Any] | None = Field(
        None, description="Goal as segment text (`order_completed where revenue > 0`) or {event, where, window, "
                          "revenue_property}; default the campaign's goal, else order_completed within 3 days.")
    window: str | None = Field(None, description="Attribution window override, e.g. 3d, 12h.")
    revenue_property: str | None = Field(None, description="Revenue property of the goal event ('' for none).")
    mde: float = Field(0.2, gt=0, description="Relative minimum detectable effect for the sample-size column.")
    alpha: float = Field(0.05, gt=0, lt=1, description="Significance level; intervals are 1 - alpha.")


@router.post("/api/campaign-reports")
async def report_from_rows(body: ReportRequest, state: AppState = Depends(get_state)) -> dict[str, Any]:
    """The report of a campaign's ledger (given rows, or the stored ledger of `campaign_id`)."""
    return await run_in_threadpool(workspace_report, state.workspace, body.campaign_id, body.recipients,
                                   goal=body.goal, window=body.window, revenue_property=body.revenue_property,
                                   mde=body.mde, alpha=body.alpha)


@router.get("/api/campaigns/{campaign_id}/report")
async def campaign_report_route(
    campaign_id: str,
    state: AppState = Depends(get_state),
    goal: str | None = Query(None, description="Goal override as segment text."),
    window: str | None = Query(None, description="Attribution window override, e.g. 3d."),
    revenue_property: str | None = Query(None, description="Revenue property override."),
    mde: float = Query(0.2, gt=0, description="Relative minimum detectable effect."),
    alpha: float = Query(0.05, gt=0, lt=1, description="Significance level."),
) -> dict[str, Any]:
    """The report of a stored campaign, from its delivery ledger and the event store."""
    return await run_in_threadpool(workspace_report, state.workspace, campaign_id, None, goal=goal, window=window,
                                   revenue_property=revenue_property, mde=mde, alpha=alpha)
