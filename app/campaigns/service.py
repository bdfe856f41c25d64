"""Campaigns: reading them, and the lifecycle draft → active ⇄ paused → finished.

Creating a campaign and changing its fields are in `app.campaigns.editing`; the checks both use
are in `app.campaigns.rules`.
"""

import logging
from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

from sqlmodel import Session, col, select

from app.audit import service as audit_service
from app.auth.principal import Principal, cli_principal
from app.campaigns import rounds
from app.campaigns.models import Campaign, CampaignState
from app.campaigns.rules import check_not_ended, check_template, window_end_in
from app.campaigns.schemas import CampaignPublic
from app.config import Settings
from app.errors import Conflict, Invalid, NotFound
from app.opds.models import Opd
from app.templates import service as template_service
from app.templates.models import MessageTemplate

logger = logging.getLogger(__name__)

SYSTEM = cli_principal("system")


def get_campaign(session: Session, *, campaign_id: int) -> Campaign:
    """The campaign with this id, or 404."""
    campaign = session.get(Campaign, campaign_id)
    if campaign is None:
        raise NotFound("no such campaign", code="campaign_not_found")
    return campaign


def list_campaigns(session: Session) -> Sequence[Campaign]:
    """Every campaign, newest first."""
    return session.exec(select(Campaign).order_by(col(Campaign.id).desc())).all()


def opd_codes(session: Session, *, campaign: Campaign) -> list[str]:
    """Codes of the OPDs in scope (every OPD when the campaign is for all)."""
    assert campaign.id is not None
    stmt = select(Opd.code).where(rounds.opd_scope(campaign.id, campaign.all_opds))
    return sorted(session.exec(stmt).all())


def to_public(session: Session, campaign: Campaign) -> CampaignPublic:
    """The API view of a campaign, with its scope and time zones."""
    data = campaign.model_dump()
    data["closed_dates"] = [date.fromisoformat(d) for d in campaign.closed_dates or []]
    data["parameter_values"] = campaign.parameter_values or {}
    return CampaignPublic(
        **data,
        opd_codes=opd_codes(session, campaign=campaign),
        timezones=rounds.campaign_timezones(session, campaign=campaign),
    )


def window_end(session: Session, *, campaign: Campaign) -> datetime:
    """When the window has closed in every OPD's zone: midnight after last_day, latest zone."""
    zones = rounds.campaign_timezones(session, campaign=campaign) if campaign.id else []
    return window_end_in(campaign.last_day, zones)


def save_and_audit(
    session: Session,
    *,
    actor: Principal,
    campaign: Campaign,
    action: str,
    detail: dict[str, Any],
    now: datetime,
) -> None:
    """Stamp updated_at, flush the campaign and audit the change."""
    campaign.updated_at = now
    audit_service.save_and_record(
        session, actor=actor, row=campaign, action=action, object_type="campaign", detail=detail
    )


def _transition(
    session: Session,
    *,
    actor: Principal,
    campaign: Campaign,
    to: CampaignState,
    allowed_from: tuple[CampaignState, ...],
    verb: str,
    now: datetime,
    detail: dict[str, Any] | None = None,
) -> Campaign:
    if campaign.state not in allowed_from:
        raise Conflict(
            f"campaign is {campaign.state}; it can become {to} only from "
            f"{' or '.join(allowed_from)}",
            code="invalid_transition",
        )
    previous = campaign.state
    campaign.state = to
    save_and_audit(
        session,
        actor=actor,
        campaign=campaign,
        action=f"campaign.{verb}",
        detail={"from": previous, "to": to.value, **(detail or {})},
        now=now,
    )
    return campaign


def _check_ready(session: Session, campaign: Campaign, now: datetime, settings: Settings) -> None:
    zones = rounds.campaign_timezones(session, campaign=campaign)
    if not zones:
        raise Invalid("the campaign covers no OPD yet", code="no_opds")
    check_not_ended(campaign.last_day, zones, now)
    check_template(session, campaign.template_id)
    template = session.get(MessageTemplate, campaign.template_id)
    assert template is not None
    # Every round must be renderable: refuse now rather than fail every send later.
    template_service.body_parameters(template, campaign=campaign, settings=settings)


def activate(
    session: Session, *, actor: Principal, campaign_id: int, now: datetime, settings: Settings
) -> Campaign:
    """draft → active, after re-checking the template and the window."""
    campaign = get_campaign(session, campaign_id=campaign_id)
    if campaign.state == CampaignState.draft:
        _check_ready(session, campaign, now, settings)
    return _transition(
        session,
        actor=actor,
        campaign=campaign,
        to=CampaignState.active,
        allowed_from=(CampaignState.draft,),
        verb="activate",
        now=now,
    )


def pause(
    session: Session, *, actor: Principal, campaign_id: int, reason: str | None, now: datetime
) -> Campaign:
    """active → paused; the reason is shown with the campaign (e.g. a Meta auth error)."""
    campaign = get_campaign(session, campaign_id=campaign_id)
    _transition(
        session,
        actor=actor,
        campaign=campaign,
        to=CampaignState.paused,
        allowed_from=(CampaignState.active,),
        verb="pause",
        now=now,
        detail={"reason": reason},
    )
    campaign.paused_reason = reason
    session.add(campaign)
    return campaign


def resume(
    session: Session, *, actor: Principal, campaign_id: int, now: datetime, settings: Settings
) -> Campaign:
    """paused → active; clears paused_reason."""
    campaign = get_campaign(session, campaign_id=campaign_id)
    if campaign.state == CampaignState.paused:
        _check_ready(session, campaign, now, settings)
    _transition(
        session,
        actor=actor,
        campaign=campaign,
        to=CampaignState.active,
        allowed_from=(CampaignState.paused,),
        verb="resume",
        now=now,
        detail={"cleared_reason": campaign.paused_reason},
    )
    campaign.paused_reason = None
    session.add(campaign)
    return campaign


def finish_ended_campaigns(session: Session, *, now: datetime) -> int:
    """Active or paused campaigns whose window has closed in every OPD's zone → finished."""
    running = session.exec(
        select(Campaign).where(
            col(Campaign.state).in_([CampaignState.active, CampaignState.paused])
        )
    ).all()
    finished = 0
    for campaign in running:
        if window_end(session, campaign=campaign) > now:
            continue
        _transition(
            session,
            actor=SYSTEM,
            campaign=campaign,
            to=CampaignState.finished,
            allowed_from=(CampaignState.active, CampaignState.paused),
            verb="finish",
            now=now,
        )
        campaign.finished_at = now
        session.add(campaign)
        finished += 1
        logger.info("campaign.finished campaign=%s", campaign.id)
    return finished


def pause_for_template(
    session: Session, *, actor: Principal, template_id: int, reason: str, now: datetime
) -> list[int]:
    """Pause every active campaign using this template, with the reason (audited).

    Called when Meta stops the template (paused, disabled, rejected, moved to MARKETING);
    only an admin resumes them (`resume`). Returns the ids of the campaigns paused.
    """
    stmt = select(Campaign).where(
        Campaign.template_id == template_id, Campaign.state == CampaignState.active
    )
    paused: list[int] = []
    for campaign in session.exec(stmt.order_by(col(Campaign.id))).all():
        assert campaign.id is not None
        pause(session, actor=actor, campaign_id=campaign.id, reason=reason[:300], now=now)
        paused.append(campaign.id)
    if paused:
        logger.warning("campaign.paused_for_template template=%s campaigns=%s", template_id, paused)
    return paused
