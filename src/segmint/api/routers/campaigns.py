"""Admin API for campaigns: create/update, list, show, preview for a user, send, pause/resume, ledger."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from fastapi import APIRouter, Body, Depends, Path, Query
from pydantic import BaseModel

from segmint.api.deps import AppState, get_state, require_admin
from segmint.campaigns import repo
from segmint.campaigns.ledger import ledger_rows
from segmint.campaigns.model import Campaign
from segmint.campaigns.preview import preview_user
from segmint.campaigns.runtime import status_counts, tick

router = APIRouter(prefix="/api/campaigns", tags=["campaigns"], dependencies=[Depends(require_admin)])
CID = Path(..., pattern=r"^[A-Za-z0-9_.-]{1,128}$", description="Campaign id.")


class CampaignOut(BaseModel):
    """A stored campaign with its run status."""

    id: str
    name: str
    status: str
    version: int
    created_at: datetime
    updated_at: datetime
    activated_at: datetime | None
    definition: dict[str, Any]


class SavedOut(CampaignOut):
    """A campaign after a save, with what the save did."""

    result: Literal["created", "updated", "unchanged"]


class SendOut(BaseModel):
    """What a send request planned; the server's campaign runtime delivers in the background."""

    campaign_id: str
    plans: list[dict[str, Any]]
    ledger: dict[str, int]


def _out(sc: repo.StoredCampaign) -> dict[str, Any]:
    return sc.to_dict()


@router.get("", response_model=list[CampaignOut])
def list_all(status: str | None = Query(None), state: AppState = Depends(get_state)) -> list[dict[str, Any]]:
    """Every campaign (optionally only those with a status)."""
    return [_out(c) for c in repo.list_campaigns(state.workspace.appdb, status)]


@router.post("", response_model=SavedOut)
def save(campaign: Campaign, status: Literal["draft", "active", "paused", "archived"] | None = Query(None),
         state: AppState = Depends(get_state)) -> dict[str, Any]:
    """Create a campaign, or update it when the id exists (a new version); KakaoTalk messages the law or the
    vendor would refuse (advertising AlimTalk, no template code) are refused here with where and why."""
    from segmint.web.kakao_fields import refuse_kakao_errors

    refuse_kakao_errors(campaign)
    sc, result = repo.save_campaign(state.workspace.appdb, campaign, status=status)
    return {**_out(sc), "result": result}


@router.get("/{campaign_id}", response_model=CampaignOut)
def show(campaign_id: str = CID, state: AppState = Depends(get_state)) -> dict[str, Any]:
    """One campaign."""
    return _out(repo.get_campaign(state.workspace.appdb, campaign_id))


@router.get("/{campaign_id}/preview")
def preview(campaign_id: str = CID, user_id: str = Query(..., min_length=1, max_length=512),
            state: AppState = Depends(get_state)) -> dict[str, Any]:
    """Each variant rendered for a real user, with the guardrails that would apply."""
    sc = repo.get_campaign(state.workspace.appdb, campaign_id)
    return preview_user(state.workspace, sc.campaign, user_id)


@router.post("/preview")
def preview_draft(campaign: Campaign, user_id: str = Query(..., min_length=1, max_length=512),
                  state: AppState = Depends(get_state)) -> dict[str, Any]:
    """Preview an unsaved campaign definition for a user."""
    repo.check_templates(campaign)
    return preview_user(state.workspace, campaign, user_id)


@router.post("/{campaign_id}/send", response_model=SendOut)
def send(campaign_id: str = CID, state: AppState = Depends(get_state)) -> dict[str, Any]:
    """Activate the campaign and plan its due occurrence now; delivery runs in the server's background."""
    repo.set_status(state.workspace.appdb, campaign_id, "active")
    plans = [p.to_dict() for p in tick(state.workspace) if p.campaign_id == campaign_id]
    return {"campaign_id": campaign_id, "plans": plans, "ledger": status_counts(state.workspace, campaign_id)}


@router.post("/{campaign_id}/{action}", response_model=CampaignOut)
def set_status(action: Literal["pause", "resume", "archive", "activate"], campaign_id: str = CID,
               state: AppState = Depends(get_state)) -> dict[str, Any]:
    """Pause (workers stop claiming its messages), resume/activate, or archive."""
    status = {"pause": "paused", "resume": "active", "activate": "active", "archive": "archived"}[action]
    return _out(repo.set_status(state.workspace.appdb, campaign_id, status))


@router.get("/{campaign_id}/ledger")
def ledger(campaign_id: str = CID, occurrence: str | None = Query(None),
           status: str | None = Query(None), limit: int = Query(1000, ge=1, le=100_000),
           state: AppState = Depends(get_state)) -> dict[str, Any]:
    """Ledger rows of a campaign (filtered by occurrence/status) and the counts per status."""
    repo.get_campaign(state.workspace.appdb, campaign_id)
    rows = ledger_rows(state.workspace.appdb, campaign_id, occurrence)
    if status is not None:
        rows = [r for r in rows if r["status"] == status]
    return {"campaign_id": campaign_id, "counts": status_counts(state.workspace, campaign_id),
            "rows": rows[:limit]}


class DeliveryReport(BaseModel):
    """A provider's delivery report for one message (by the ledger message id = idempotency key)."""

    message_id: str
    status: Literal["delivered", "bounced"]
    at: datetime | None = None
    detail: str | None = None


@router.post("/delivery-reports")
def delivery_reports(reports: list[DeliveryReport], state: AppState = Depends(get_state)) -> dict[str, int]:
    """Mark sent messages delivered or bounced (bounces also suppress the user on that channel)."""
    from segmint.campaigns.ledger import record_delivery

    applied = sum(record_delivery(state.workspace.appdb, r.message_id, r.status, at=r.at, detail=r.detail)
                  for r in reports)
    return {"applied": applied, "unknown": len(reports) - applied}


@router.post("/{campaign_id}/suppress")
def suppress(campaign_id: str = CID, user_id: str = Body(..., embed=True), channel: str = Body("*", embed=True),
             state: AppState = Depends(get_state)) -> dict[str, Any]:
    """Add a user to the suppression list (channel "*" = every channel), attributed to this campaign."""
    from segmint.campaigns.suppression import add_suppression

    added = add_suppression(state.workspace.appdb, user_id, channel, reason="manual", source=campaign_id)
    return {"user_id": user_id, "channel": channel, "added": added}
