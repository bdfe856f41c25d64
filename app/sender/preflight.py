"""What the pre-flight knows from the database: campaigns and their templates, the reach of
the next round, and what Meta last said about the sender."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from sqlmodel import Session, col, select

from app.campaigns import plan
from app.campaigns.models import Campaign, CampaignState
from app.security import PhoneVault
from app.sender import service
from app.stats import service as stats_service
from app.templates.models import MessageTemplate

_CHECKED_STATES = (CampaignState.draft, CampaignState.active, CampaignState.paused)


class Status(StrEnum):
    ok = "ok"
    warn = "warn"
    fail = "fail"
    skip = "skip"


@dataclass(frozen=True)
class Check:
    """One pre-flight check: what, the finding and what to do (Bahasa Indonesia)."""

    key: str
    title: str
    status: Status
    detail: str
    advice: str | None = None
    blocking: bool = False  # a refused token: later Graph calls would fail the same way


@dataclass(frozen=True)
class CampaignTemplate:
    """A campaign that may still send, and its template as the service knows it."""

    campaign_id: int
    campaign_name: str
    campaign_state: str
    template_name: str
    language: str
    status: str
    category: str


@dataclass(frozen=True)
class Local:
    """The database's side of the pre-flight."""

    campaigns: list[CampaignTemplate]
    reach: int | None  # people the largest next round would reach (rounded); None: none active
    messaging_limit: int | None  # as last known; None = unlimited
    flagged: bool
    restrictions: list[str]
    ban_state: str | None


def read_local(session: Session, *, vault: PhoneVault, now: datetime) -> Local:
    """Campaigns that may still send with their templates, and the next round's reach.

    The reach is rounded like every published figure (docs/privacy.md): two runs around one
    STOP must not tell that someone stopped.
    """
    rows = session.exec(
        select(Campaign, MessageTemplate)
        .join(MessageTemplate, col(MessageTemplate.id) == col(Campaign.template_id))
        .where(col(Campaign.state).in_(_CHECKED_STATES))
        .order_by(col(Campaign.id))
    ).all()
    key = stats_service.stats_key(vault)
    campaigns: list[CampaignTemplate] = []
    reach: int | None = None
    for campaign, template in rows:
        assert campaign.id is not None
        campaigns.append(
            CampaignTemplate(
                campaign_id=campaign.id,
                campaign_name=campaign.name,
                campaign_state=campaign.state,
                template_name=template.name,
                language=template.language,
                status=template.status,
                category=template.category,
            )
        )
        if campaign.state != CampaignState.active:
            continue
        upcoming = plan.campaign_plan(
            session, campaign=campaign, now=now, limit=1, rounding_key=key
        )
        # The zones' rounds of one firing fall within a day: together they meet the limit.
        total = sum(z.rounds[0].reachable_now or 0 for z in upcoming.zones if z.rounds)
        reach = max(reach or 0, total)
    state = service.current_state(session)
    return Local(
        campaigns=campaigns,
        reach=reach,
        messaging_limit=service.messaging_limit_of(state),
        flagged=bool(state and state.flagged),
        restrictions=list(state.restrictions or []) if state else [],
        ban_state=state.ban_state if state else None,
    )
