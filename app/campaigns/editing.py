"""Creating a draft campaign and changing one: a draft freely, a running one only safely."""

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import delete
from sqlmodel import Session, col

from app.audit import service as audit_service
from app.auth.principal import Principal
from app.campaigns import rounds
from app.campaigns.models import Campaign, CampaignOpd, CampaignState
from app.campaigns.rules import (
    check_not_ended,
    check_template,
    check_timing,
    resolve_opds,
    zones_of,
)
from app.campaigns.schemas import CampaignCreate, CampaignUpdate
from app.campaigns.service import (
    activate,
    get_campaign,
    opd_codes,
    pause,
    resume,
    save_and_audit,
)
from app.config import Settings
from app.errors import Conflict, Invalid
from app.opds.models import Opd

# Fields a running (active or paused) campaign may change, and in which direction.
RUNNING_CHANGES = {
    "name": "any",
    "last_day": "raise",
    "max_reminders": "lower",
    "min_gap_days": "raise",
}


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
    check_timing(values)
    opds = resolve_opds(session, data.opd_codes)
    check_not_ended(data.last_day, zones_of(session, opds), now)
    check_template(session, data.template_id)
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
                check_not_ended(changes["last_day"], zones, now)
            for field, value in changes.items():
                setattr(campaign, field, value)
        else:
            raise Conflict(
                f"campaign is {campaign.state} and can no longer be changed",
                code="campaign_change_not_allowed",
            )
        save_and_audit(
            session,
            actor=actor,
            campaign=campaign,
            action="campaign.update",
            detail={"fields": sorted(changes), "state": campaign.state},
            now=now,
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
    check_timing(merged)
    opds: list[Opd] | None = None
    if "opd_codes" in changes:
        opds = resolve_opds(session, changes["opd_codes"])
        zones = zones_of(session, opds)
    else:
        zones = rounds.campaign_timezones(session, campaign=campaign)
    if {"last_day", "opd_codes"} & changes.keys():
        check_not_ended(merged["last_day"], zones, now)
    if "template_id" in changes:
        check_template(session, changes["template_id"])
    for field, value in changes.items():
        if field != "opd_codes":
            setattr(campaign, field, value)
    if opds is not None:
        _set_scope(session, campaign, opds)
