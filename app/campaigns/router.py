"""Campaign routes: admins write, admins and the inspectorate read; coordinators have no access."""

from datetime import datetime
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Body, Depends, Query, Request, status

from app.audit.refusals import audited_refusal
from app.auth.dependencies import AdminDep, require_roles
from app.auth.models import Role
from app.auth.principal import Principal
from app.campaigns import editing, plan, rounds, service
from app.campaigns.schemas import (
    CampaignCreate,
    CampaignPlan,
    CampaignPublic,
    CampaignUpdate,
    ManualRoundResult,
    PauseRequest,
    RoundPublic,
    ZoneOutcome,
)
from app.db import SessionDep, utcnow
from app.dependencies import SettingsDep
from app.ids import DbId
from app.stats import service as stats_service

router = APIRouter(prefix="/api/v1/campaigns", tags=["Campaigns"])

CampaignReaderDep = Annotated[Principal, Depends(require_roles(Role.admin, Role.inspectorate))]


def current_time() -> datetime:
    """The request's notion of now (overridden in tests)."""
    return utcnow()


NowDep = Annotated[datetime, Depends(current_time)]
_TRANSITION: dict[int | str, dict[str, Any]] = {
    409: {"description": "the campaign's state does not allow this change"}
}


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=CampaignPublic,
    responses={422: {"description": "bad cron, window, template, OPD or caps"}},
)
def create_campaign(
    body: CampaignCreate, session: SessionDep, actor: AdminDep, now: NowDep
) -> CampaignPublic:
    """Create a campaign as a draft (admin)."""
    with audited_refusal(session, actor, "campaign.create", object_type="campaign", object_id=None):
        campaign = editing.create_campaign(session, actor=actor, data=body, now=now)
    return service.to_public(session, campaign)


@router.get("", response_model=list[CampaignPublic])
def list_campaigns(session: SessionDep, _: CampaignReaderDep) -> list[CampaignPublic]:
    """All campaigns, newest first."""
    return [service.to_public(session, c) for c in service.list_campaigns(session)]


@router.get("/{campaign_id}", response_model=CampaignPublic)
def get_campaign(campaign_id: DbId, session: SessionDep, _: CampaignReaderDep) -> CampaignPublic:
    """One campaign with its state and, when paused, why."""
    return service.to_public(session, service.get_campaign(session, campaign_id=campaign_id))


@router.patch(
    "/{campaign_id}",
    response_model=CampaignPublic,
    responses={409: {"description": "change not allowed in the campaign's state"}},
)
def update_campaign(
    campaign_id: DbId,
    body: CampaignUpdate,
    session: SessionDep,
    actor: AdminDep,
    now: NowDep,
    settings: SettingsDep,
) -> CampaignPublic:
    """Edit a draft freely; on a running campaign only extend, lower caps, pause or resume."""
    with audited_refusal(
        session, actor, "campaign.update", object_type="campaign", object_id=campaign_id
    ):
        campaign = editing.update_campaign(
            session, actor=actor, campaign_id=campaign_id, data=body, now=now, settings=settings
        )
    return service.to_public(session, campaign)


@router.post("/{campaign_id}/activate", response_model=CampaignPublic, responses=_TRANSITION)
def activate_campaign(
    campaign_id: DbId, session: SessionDep, actor: AdminDep, now: NowDep, settings: SettingsDep
) -> CampaignPublic:
    """draft → active (admin)."""
    with audited_refusal(
        session, actor, "campaign.activate", object_type="campaign", object_id=campaign_id
    ):
        campaign = service.activate(
            session, actor=actor, campaign_id=campaign_id, now=now, settings=settings
        )
    return service.to_public(session, campaign)


@router.post("/{campaign_id}/pause", response_model=CampaignPublic, responses=_TRANSITION)
def pause_campaign(
    campaign_id: DbId,
    session: SessionDep,
    actor: AdminDep,
    now: NowDep,
    body: Annotated[PauseRequest | None, Body()] = None,
) -> CampaignPublic:
    """active → paused, with an optional reason (admin)."""
    with audited_refusal(
        session, actor, "campaign.pause", object_type="campaign", object_id=campaign_id
    ):
        campaign = service.pause(
            session,
            actor=actor,
            campaign_id=campaign_id,
            reason=body.reason if body else None,
            now=now,
        )
    return service.to_public(session, campaign)


@router.post("/{campaign_id}/resume", response_model=CampaignPublic, responses=_TRANSITION)
def resume_campaign(
    campaign_id: DbId, session: SessionDep, actor: AdminDep, now: NowDep, settings: SettingsDep
) -> CampaignPublic:
    """paused → active; clears paused_reason (admin)."""
    with audited_refusal(
        session, actor, "campaign.resume", object_type="campaign", object_id=campaign_id
    ):
        campaign = service.resume(
            session, actor=actor, campaign_id=campaign_id, now=now, settings=settings
        )
    return service.to_public(session, campaign)


@router.post(
    "/{campaign_id}/rounds",
    status_code=status.HTTP_201_CREATED,
    response_model=ManualRoundResult,
    responses={
        409: {"description": "campaign not active"},
        422: {"description": "outside the window, send hours or caps; reasons per time zone"},
    },
)
def start_round(
    campaign_id: DbId, session: SessionDep, actor: AdminDep, now: NowDep, settings: SettingsDep
) -> ManualRoundResult:
    """Start a round now ("kirim sekarang") in every time zone where sending is allowed."""
    with audited_refusal(
        session, actor, "campaign.round.start", object_type="campaign", object_id=campaign_id
    ):
        campaign = service.get_campaign(session, campaign_id=campaign_id)
        results = rounds.start_manual_round(
            session, campaign=campaign, now=now, actor=actor, settings=settings
        )
    zones = []
    for r in results:
        zone = ZoneInfo(r.timezone)
        zones.append(
            ZoneOutcome(
                timezone=r.timezone,
                created=r.round is not None,
                round=RoundPublic.model_validate(r.round, from_attributes=True)
                if r.round
                else None,
                reason=r.reason,
                next_allowed_at=r.next_allowed_at,
                next_allowed_local=r.next_allowed_at.astimezone(zone).isoformat()
                if r.next_allowed_at
                else None,
            )
        )
    return ManualRoundResult(campaign_id=campaign_id, zones=zones)


@router.get("/{campaign_id}/plan", response_model=CampaignPlan)
def get_plan(
    request: Request,
    campaign_id: DbId,
    session: SessionDep,
    viewer: CampaignReaderDep,
    now: NowDep,
    settings: SettingsDep,
    limit: Annotated[int, Query(ge=1, le=20)] = 5,
) -> CampaignPlan:
    """The next rounds per time zone (UTC and local) and how many each would reach now."""
    campaign = service.get_campaign(session, campaign_id=campaign_id)
    return plan.campaign_plan(
        session,
        campaign=campaign,
        now=now,
        limit=limit,
        rounding_key=stats_service.stats_key(request.app.state.vault),
        with_reach=viewer.is_admin,
        settings=settings,
    )
