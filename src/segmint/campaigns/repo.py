"""Stored campaigns: create/update (definition + version), read, list, pause/resume, apply a YAML folder."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from segmint.appdb.campaigns import CAMPAIGN_STATUSES, CampaignRow
from segmint.campaigns.guardrails import Guardrails
from segmint.campaigns.links import LinkMaker
from segmint.campaigns.model import Campaign, parse_campaign, read_campaign_dir
from segmint.errors import Conflict, InvalidInput, NotFound


def now_utc() -> datetime:
    """Naive UTC now (the app DB stores naive UTC)."""
    return datetime.now(UTC).replace(tzinfo=None)


@dataclass
class StoredCampaign:
    """A campaign with its run status and version."""

    campaign: Campaign
    status: str
    version: int
    created_at: datetime
    updated_at: datetime
    activated_at: datetime | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"id": self.campaign.id, "name": self.campaign.name, "status": self.status,
                "version": self.version, "created_at": self.created_at, "updated_at": self.updated_at,
                "activated_at": self.activated_at, "definition": self.campaign.model_dump(mode="json")}


def _view(row: CampaignRow) -> StoredCampaign:
    return StoredCampaign(Campaign.model_validate(row.definition), row.status, row.version, row.created_at,
                          row.updated_at, row.activated_at)


def check_templates(campaign: Campaign) -> None:
    """Compile every template now, so a syntax error is reported at save time with its position."""
    Guardrails(campaign, links=LinkMaker("http://x", "x"), suppressed=set())


def check_segments(engine: Engine, campaign: Campaign) -> None:
    """Every target and exclusion segment must be saved before a campaign can run."""
    from segmint.segments.saved import get_segment

    for field_name, names in (("target", campaign.target), ("exclude", campaign.exclude)):
        for name in names:
            try:
                get_segment(engine, name)
            except NotFound:
                raise NotFound(f"segment {name!r} is not saved (save it before activating the campaign)",
                               where=f"{campaign.id}: {field_name}") from None


def save_campaign(engine: Engine, data: Campaign | dict[str, Any], *, status: str | None = None,
                  where: str = "campaign") -> tuple[StoredCampaign, str]:
    """Create or update a campaign; returns it and "created" | "updated" | "unchanged"."""
    campaign = data if isinstance(data, Campaign) else parse_campaign(data, where)
    check_templates(campaign)
    if status == "active":
        check_segments(engine, campaign)
    if status is not None and status not in CAMPAIGN_STATUSES:
        raise InvalidInput(f"status must be one of {', '.join(CAMPAIGN_STATUSES)}", where="status")
    definition = campaign.model_dump(mode="json")
    now = now_utc()
    with Session(engine) as s, s.begin():
        row = s.get(CampaignRow, campaign.id)
        if row is None:
            st = status or "draft"
            row = CampaignRow(id=campaign.id, name=campaign.name, status=st, version=1, definition=definition,
                              created_at=now, updated_at=now, activated_at=now if st == "active" else None)
            s.add(row)
            s.flush()
            return _view(row), "created"
        changed = row.definition != definition or (status is not None and status != row.status)
        if row.definition != definition:
            row.definition, row.name, row.version = definition, campaign.name, row.version + 1
        if status is not None and status != row.status:
            row.status = status
            if status == "active":
                row.activated_at = now
        if changed:
            row.updated_at = now
        return _view(row), "updated" if changed else "unchanged"


def get_campaign(engine: Engine, campaign_id: str) -> StoredCampaign:
    """One campaign by id."""
    with Session(engine) as s:
        row = s.get(CampaignRow, campaign_id)
        if row is None:
            raise NotFound(f"no campaign {campaign_id!r}", where="campaign")
        return _view(row)


def list_campaigns(engine: Engine, status: str | None = None) -> list[StoredCampaign]:
    """Every campaign by id (only those with a status, when given)."""
    q = select(CampaignRow).order_by(CampaignRow.id)
    if status is not None:
        q = q.where(CampaignRow.status == status)
    with Session(engine) as s:
        return [_view(r) for r in s.scalars(q)]


def set_status(engine: Engine, campaign_id: str, status: str) -> StoredCampaign:
    """Activate, pause, resume or archive; pausing stops workers from claiming its queued messages."""
    if status not in CAMPAIGN_STATUSES:
        raise InvalidInput(f"status must be one of {', '.join(CAMPAIGN_STATUSES)}", where="status")
    with Session(engine) as s, s.begin():
        row = s.get(CampaignRow, campaign_id)
        if row is None:
            raise NotFound(f"no campaign {campaign_id!r}", where="campaign")
        if row.status == "archived" and status != "archived":
            raise Conflict(f"campaign {campaign_id!r} is archived", where="status")
        if status == "active":
            check_segments(engine, Campaign.model_validate(row.definition))
        if row.status != status:
            row.status = status
            row.updated_at = now_utc()
            if status == "active":
                row.activated_at = row.updated_at
        return _view(row)


def get_cursor(engine: Engine, campaign_id: str) -> str | None:
    """Where trigger scanning of a campaign got to (received_at ISO), or None."""
    with Session(engine) as s:
        row = s.get(CampaignRow, campaign_id)
        return row.trigger_cursor if row is not None else None


def set_cursor(engine: Engine, campaign_id: str, cursor: str) -> None:
    """Record where trigger scanning got to."""
    with Session(engine) as s, s.begin():
        row = s.get(CampaignRow, campaign_id)
        if row is not None:
            row.trigger_cursor = cursor


@dataclass
class ApplyResult:
    """What applying a campaigns folder did, per campaign."""

    changes: dict[str, str] = field(default_factory=dict)


def apply_dir(engine: Engine, path: Path | str, *, dry_run: bool = False) -> ApplyResult:
    """Sync campaigns from `*.yaml` files (campaigns as code): create or update; new ones stay drafts."""
    result = ApplyResult()
    campaigns = read_campaign_dir(Path(path))
    for c in campaigns:
        check_templates(c)
    for c in campaigns:
        if dry_run:
            try:
                cur = get_campaign(engine, c.id)
                same = cur.campaign.model_dump(mode="json") == c.model_dump(mode="json")
                result.changes[c.id] = "unchanged" if same else "updated"
            except NotFound:
                result.changes[c.id] = "created"
        else:
            result.changes[c.id] = save_campaign(engine, c)[1]
    return result
