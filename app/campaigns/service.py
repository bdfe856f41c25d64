"""Campaigns: create and edit drafts, the lifecycle, and the safe changes to running ones."""

import logging
from collections.abc import Sequence
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import delete
from sqlmodel import Session, col, select

from app.audit import service as audit_service
from app.auth.principal import Principal, cli_principal
from app.campaigns import rounds
from app.campaigns.models import Campaign, CampaignOpd, CampaignState
from app.campaigns.schemas import CampaignCreate, CampaignPublic, CampaignUpdate
from app.campaigns.timing import SendPolicy, validate_cron
from app.config import Settings
from app.errors import Conflict, Invalid, NotFound
from app.opds.models import Opd
from app.templates import service as template_service
from app.templates.models import MessageTemplate

logger = logging.getLogger(__name__)

SYSTEM = cli_principal("system")
# The zone whose day ends last; used when a campaign covers no OPD yet.
LATEST_ZONE = "Asia/Jakarta"
# Fields a running (active or paused) campaign may change, and in which direction.
RUNNING_CHANGES = {
    "name": "any",
    "last_day": "raise",
    "max_reminders": "lower",
    "min_gap_days": "raise",
}


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
    return _window_end(campaign.last_day, zones)


def _window_end(last_day: date, zones: Sequence[str]) -> datetime:
    midnight = time(0)
    day_after = last_day + timedelta(days=1)
    return max(datetime.combine(day_after, midnight, ZoneInfo(z)) for z in zones or [LATEST_ZONE])


def _resolve_opds(session: Session, codes: Sequence[str]) -> list[Opd]:
    if not codes:
        return []
    found = session.exec(select(Opd).where(col(Opd.code).in_(codes))).all()
    unknown = sorted(set(codes) - {o.code for o in found})
    if unknown:
        raise Invalid(f"unknown OPD code(s): {', '.join(unknown)}", code="unknown_opd")
    return list(found)


def _template_problem(session: Session, template_id: int) -> str | None:
    template = session.get(MessageTemplate, template_id)
    if template is None:
        return f"template {template_id} does not exist"
    return template_service.usable_problem(template)


def _check_template(session: Session, template_id: int) -> None:
    problem = _template_problem(session, template_id)
    if problem is not None:
        raise Invalid(f"template not usable: {problem}", code="template_not_usable")


def _check_timing(values: dict[str, Any]) -> None:
    if values["first_day"] > values["last_day"]:
        raise Invalid("first_day must not be after last_day", code="invalid_window")
    try:
        validate_cron(values["cron"])
    except ValueError as exc:
        raise Invalid(str(exc), code="invalid_cron") from exc
    if values["send_start"] >= values["send_end"]:
        raise Invalid("send window: send_start must be before send_end", code="invalid_send_window")
    try:
        SendPolicy(
            first_day=values["first_day"],
            last_day=values["last_day"],
            cron=values["cron"],
            send_start=values["send_start"],
            send_end=values["send_end"],
        )
    except ValueError as exc:
        raise Invalid(str(exc), code="invalid_timing") from exc


def _check_not_ended(last_day: date, zones: Sequence[str], now: datetime) -> None:
    if _window_end(last_day, zones) <= now:
        raise Invalid(
            f"the campaign window ended on {last_day.isoformat()}; "
            "choose a last_day that is not in the past",
            code="window_ended",
        )


def _zones_of(opds: Sequence[Opd], session: Session) -> list[str]:
    if opds:
        return sorted({o.timezone for o in opds})
    return sorted(set(session.exec(select(Opd.timezone).distinct()).all()))


def _set_scope(session: Session, campaign: Campaign, opds: Sequence[Opd]) -> None:
    assert campaign.id is not None
    session.execute(delete(CampaignOpd).where(col(CampaignOpd.campaign_id) == campaign.id))
    for opd in opds:
        assert opd.id is not None
        session.add(CampaignOpd(campaign_id=campaign.id, opd_id=opd.id))
    campaign.all_opds = not opds


def create_campaign(
    session: Session, *, actor: Principal, data: CampaignCreate, now: datetime
) -> Campaign:
    """Create a draft campaign after checking its timing, template and OPD scope."""
    values = data.model_dump()
    _check_timing(values)
    opds = _resolve_opds(session, data.opd_codes)
    _check_not_ended(data.last_day, _zones_of(opds, session), now)
    _check_template(session, data.template_id)
    campaign = Campaign(
        **{k: v for k, v in values.items() if k not in ("opd_codes", "closed_dates")},
        closed_dates=sorted({d.isoformat() for d in data.closed_dates}),
        state=CampaignState.draft,
        created_at=now,
        updated_at=now,
    )
    session.add(campaign)
    session.flush()
    _set_scope(session, campaign, opds)
    session.flush()
    audit_service.record(
        session,
        actor=actor,
        action="campaign.create",
        object_type="campaign",
        object_id=campaign.id,
        detail={"name": campaign.name, "opds": [o.code for o in opds] or "all"},
    )
    return campaign


def _changed_fields(session: Session, campaign: Campaign, sent: dict[str, Any]) -> dict[str, Any]:
    changes: dict[str, Any] = {}
    for field, value in sent.items():
        if value is None:
            raise Invalid(f"{field} cannot be null", code="invalid")
        if field == "opd_codes":
            current = [] if campaign.all_opds else opd_codes(session, campaign=campaign)
            if sorted(value) != current:
                changes[field] = value
            continue
        if field == "closed_dates":
            value = sorted({d.isoformat() for d in value})
        if getattr(campaign, field) != value:
            changes[field] = value
    return changes


def _check_running_change(campaign: Campaign, changes: dict[str, Any]) -> None:
    for field, value in changes.items():
        rule = RUNNING_CHANGES.get(field)
        current = getattr(campaign, field) if rule else None
        allowed = rule == "any" or (
            (rule == "raise" and value > current) or (rule == "lower" and value < current)
        )
        if not allowed:
            how = {
                "raise": "may only be raised",
                "lower": "may only be lowered",
            }.get(rule or "", "can only be changed while the campaign is a draft")
            raise Conflict(
                f"campaign is {campaign.state}: {field} {how} (safe changes: extend last_day, "
                "lower max_reminders, raise min_gap_days, pause or resume)",
                code="campaign_change_not_allowed",
            )


def update_campaign(
    session: Session,
    *,
    actor: Principal,
    campaign_id: int,
    data: CampaignUpdate,
    now: datetime,
    settings: Settings,
) -> Campaign:
    """Change a campaign: a draft freely, a running one only in safe ways; may pause/resume."""
    campaign = get_campaign(session, campaign_id=campaign_id)
    sent = data.model_dump(exclude_unset=True)
    target_state = sent.pop("state", None)
    reason = sent.pop("paused_reason", None)
    changes = _changed_fields(session, campaign, sent)
    if changes:
        if campaign.state == CampaignState.draft:
            _apply_draft_changes(session, campaign, changes, now)
        elif campaign.state in (CampaignState.active, CampaignState.paused):
            _check_running_change(campaign, changes)
            if "last_day" in changes:
                zones = rounds.campaign_timezones(session, campaign=campaign)
                _check_not_ended(changes["last_day"], zones, now)
            for field, value in changes.items():
                setattr(campaign, field, value)
        else:
            raise Conflict(
                f"campaign is {campaign.state} and can no longer be changed",
                code="campaign_change_not_allowed",
            )
        campaign.updated_at = now
        session.add(campaign)
        session.flush()
        audit_service.record(
            session,
            actor=actor,
            action="campaign.update",
            object_type="campaign",
            object_id=campaign.id,
            detail={"fields": sorted(changes), "state": campaign.state},
        )
    if target_state is not None and target_state != campaign.state:
        if target_state == CampaignState.paused:
            pause(session, actor=actor, campaign_id=campaign_id, reason=reason, now=now)
        elif campaign.state == CampaignState.paused:
            resume(session, actor=actor, campaign_id=campaign_id, now=now, settings=settings)
        else:
            activate(session, actor=actor, campaign_id=campaign_id, now=now, settings=settings)
    elif reason is not None:
        if campaign.state != CampaignState.paused:
            raise Conflict(
                "paused_reason can be set only on a paused campaign or when pausing",
                code="campaign_change_not_allowed",
            )
        campaign.paused_reason = reason
        session.add(campaign)
    return campaign


def _apply_draft_changes(
    session: Session, campaign: Campaign, changes: dict[str, Any], now: datetime
) -> None:
    current = campaign.model_dump()
    merged = {**current, **changes}
    _check_timing(merged)
    opds: list[Opd] | None = None
    if "opd_codes" in changes:
        opds = _resolve_opds(session, changes["opd_codes"])
        zones = _zones_of(opds, session)
    else:
        zones = rounds.campaign_timezones(session, campaign=campaign)
    if {"last_day", "opd_codes"} & changes.keys():
        _check_not_ended(merged["last_day"], zones, now)
    if "template_id" in changes:
        _check_template(session, changes["template_id"])
    for field, value in changes.items():
        if field != "opd_codes":
            setattr(campaign, field, value)
    if opds is not None:
        _set_scope(session, campaign, opds)


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
    campaign.updated_at = now
    session.add(campaign)
    session.flush()
    audit_service.record(
        session,
        actor=actor,
        action=f"campaign.{verb}",
        object_type="campaign",
        object_id=campaign.id,
        detail={"from": previous, "to": to.value, **(detail or {})},
    )
    return campaign


def _check_ready(session: Session, campaign: Campaign, now: datetime, settings: Settings) -> None:
    zones = rounds.campaign_timezones(session, campaign=campaign)
    if not zones:
        raise Invalid("the campaign covers no OPD yet", code="no_opds")
    _check_not_ended(campaign.last_day, zones, now)
    _check_template(session, campaign.template_id)
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
