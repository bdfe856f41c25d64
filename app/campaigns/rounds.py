"""Turning a campaign firing into a round and its deliveries, set-based and idempotent.

Who a round may remind (invariant 9, the per-person budget) is decided in
`app.campaigns.budget`; the deliveries are created by `app.outbox.lifecycle`.
"""

import logging
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, col

from app.audit import service as audit_service
from app.auth.principal import Principal
from app.campaigns import budget, limits
from app.campaigns.budget import opd_scope
from app.campaigns.models import Campaign, CampaignState, Round
from app.campaigns.timing import SendPolicy, closed_reason, next_allowed
from app.config import Settings, get_settings
from app.db import is_postgresql
from app.errors import Conflict, Invalid
from app.opds.models import Opd
from app.outbox import lifecycle as delivery_lifecycle

logger = logging.getLogger(__name__)

SCHEDULE = "schedule"
MANUAL = "manual"


def closing_margin(campaign: Campaign, settings: Settings | None = None) -> timedelta:
    """How long before send_end nothing starts sending; at most half the window."""
    minutes = (settings or get_settings()).send_closing_margin_minutes
    window = datetime.combine(date.min, campaign.send_end) - datetime.combine(
        date.min, campaign.send_start
    )
    return min(timedelta(minutes=minutes), window / 2)


def policy_for(campaign: Campaign) -> SendPolicy:
    """The campaign's timing rules as a SendPolicy."""
    return SendPolicy(
        first_day=campaign.first_day,
        last_day=campaign.last_day,
        cron=campaign.cron,
        send_start=campaign.send_start,
        send_end=campaign.send_end,
        skip_holidays=campaign.skip_holidays,
        closed_dates=frozenset(date.fromisoformat(d) for d in campaign.closed_dates or []),
        friday_pause=campaign.friday_pause,
        closing_margin=closing_margin(campaign),
    )


def campaign_timezones(session: Session, *, campaign: Campaign) -> list[str]:
    """The distinct time zones of the OPDs in the campaign's scope, sorted."""
    assert campaign.id is not None
    rows = session.execute(
        select(col(Opd.timezone)).where(opd_scope(campaign.id, campaign.all_opds)).distinct()
    )
    return sorted(rows.scalars().all())


def _insert_round(
    session: Session,
    *,
    campaign_id: int,
    timezone: str,
    scheduled_for: datetime,
    send_at: datetime,
    origin: str,
    now: datetime,
) -> int | None:
    dialect_insert = postgresql.insert if is_postgresql(session) else sqlite.insert
    stmt = (
        dialect_insert(Round)
        .values(
            campaign_id=campaign_id,
            timezone=timezone,
            scheduled_for=scheduled_for,
            send_at=send_at,
            origin=origin,
            recipients=0,
            created_at=now,
        )
        .on_conflict_do_nothing(index_elements=["campaign_id", "timezone", "scheduled_for"])
        .returning(col(Round.id))
    )
    return session.execute(stmt).scalar_one_or_none()


def _spread_under_limit(
    session: Session,
    *,
    campaign: Campaign,
    round_id: int,
    timezone: str,
    send_at: datetime,
    recipients: int,
    now: datetime,
    settings: Settings,
) -> int:
    """Spread the new round's deliveries under the messaging limit; how many were skipped."""
    policy = policy_for(campaign)
    spread = limits.loaded_spread(
        session,
        people=recipients,
        first=send_at,
        cap=limits.current_cap(session, settings=settings),
        next_allowed=lambda at: next_allowed(policy, timezone, at),
        exclude_round=round_id,
    )
    if spread.slots == [limits.Slot(send_at, recipients)]:
        return 0
    assert campaign.id is not None
    skipped = delivery_lifecycle.spread_round(
        session,
        round_id=round_id,
        campaign_id=campaign.id,
        timezone=timezone,
        batches=[(slot.at, slot.people) for slot in spread.slots],
        fair=limits.fair_positions(round_id),
        now=now,
    )
    logger.info(
        "round.spread campaign=%s round=%s batches=%s last_at=%s unreached=%s",
        campaign.id,
        round_id,
        len(spread.slots),
        spread.last_at.isoformat() if spread.last_at else None,
        skipped,
    )
    return skipped


def create_round(
    session: Session,
    *,
    campaign: Campaign,
    timezone: str,
    scheduled_for: datetime,
    send_at: datetime,
    origin: str,
    now: datetime,
    settings: Settings | None = None,
) -> Round | None:
    """Create the round and its deliveries; None (and nothing created) if it already exists.

    Under Meta's messaging limit the deliveries are spread over the next allowed moments
    (`app.campaigns.limits`); whoever cannot be reached before the campaign ends is skipped.
    """
    assert campaign.id is not None
    budget.lock_campaign(session, campaign.id)
    round_id = _insert_round(
        session,
        campaign_id=campaign.id,
        timezone=timezone,
        scheduled_for=scheduled_for,
        send_at=send_at,
        origin=origin,
        now=now,
    )
    if round_id is None:
        return None
    # The round is new in this transaction, so it has no deliveries yet; uq_delivery_per_round
    # would refuse a second one per person anyway.
    recipients = delivery_lifecycle.create_round_deliveries(
        session,
        round_id=round_id,
        campaign_id=campaign.id,
        timezone=timezone,
        send_at=send_at,
        now=now,
        people=budget.people_for_round(campaign, timezone=timezone, send_at=send_at),
        listed=budget.listed_counts(session, campaign=campaign, timezone=timezone),
    )
    skipped = _spread_under_limit(
        session,
        campaign=campaign,
        round_id=round_id,
        timezone=timezone,
        send_at=send_at,
        recipients=recipients,
        now=now,
        settings=settings or get_settings(),
    )
    created = session.get(Round, round_id)
    assert created is not None
    created.recipients = recipients - skipped
    session.add(created)
    session.flush()
    logger.info(
        "round.created campaign=%s round=%s tz=%s origin=%s recipients=%s",
        campaign.id,
        round_id,
        timezone,
        origin,
        created.recipients,
    )
    return created


@dataclass(frozen=True)
class FiringResult:
    """What a scheduled firing did: the round created, or why none was."""

    round: Round | None
    reason: str
    send_at: datetime | None = None


def _skip(campaign_id: int, timezone: str, nominal_at: datetime, reason: str) -> FiringResult:
    logger.warning(
        "round.skipped campaign=%s tz=%s nominal_at=%s reason=%s",
        campaign_id,
        timezone,
        nominal_at.isoformat(),
        reason,
    )
    return FiringResult(round=None, reason=reason)


def fire_scheduled_round(
    session: Session,
    *,
    campaign_id: int,
    timezone: str,
    nominal_at: datetime,
    now: datetime,
    late_after: timedelta = timedelta(minutes=10),
    settings: Settings | None = None,
) -> FiringResult:
    """Handle one cron firing: create its (possibly deferred) round, or skip it and say why.

    A firing is late when `now` is more than `late_after` past the moment its round would have
    been sent (the nominal time, deferred to the next allowed moment). A late firing runs now
    only if now is an allowed moment; otherwise it is skipped and logged.
    """
    campaign = session.get(Campaign, campaign_id)
    if campaign is None:
        return _skip(campaign_id, timezone, nominal_at, "campaign_not_found")
    if campaign.state != CampaignState.active:
        return _skip(campaign_id, timezone, nominal_at, f"campaign_not_active: {campaign.state}")
    if timezone not in campaign_timezones(session, campaign=campaign):
        return _skip(campaign_id, timezone, nominal_at, "no_opd_in_timezone")
    policy = policy_for(campaign)
    reason = closed_reason(policy, timezone, nominal_at)
    if reason is not None and reason.startswith(("before_window", "after_window")):
        return _skip(campaign_id, timezone, nominal_at, reason)
    intended = next_allowed(policy, timezone, nominal_at)
    if intended is None:
        return _skip(campaign_id, timezone, nominal_at, "after_window: no allowed moment left")
    if now <= intended + late_after:
        send_at = next_allowed(policy, timezone, max(now, intended))
        if send_at is None:
            return _skip(campaign_id, timezone, nominal_at, "after_window: no allowed moment left")
    else:
        reason = closed_reason(policy, timezone, now)
        if reason is not None:
            return _skip(campaign_id, timezone, nominal_at, f"missed: {reason}")
        send_at = now
    created = create_round(
        session,
        campaign=campaign,
        timezone=timezone,
        scheduled_for=nominal_at,
        send_at=send_at,
        origin=SCHEDULE,
        now=now,
        settings=settings,
    )
    if created is None:
        return FiringResult(round=None, reason="duplicate: this firing already has its round")
    return FiringResult(round=created, reason="created", send_at=send_at)


@dataclass(frozen=True)
class ZoneResult:
    """One time zone's part of a manual round."""

    timezone: str
    round: Round | None
    reason: str | None = None
    next_allowed_at: datetime | None = None


class RoundRefused(Invalid):
    """No time zone could start a round now; the body lists why and when it could."""

    code = "round_not_allowed"

    def __init__(self, message: str, *, zones: list[dict[str, object]]) -> None:
        super().__init__(message)
        self.zones = zones

    def to_body(self) -> dict[str, Any]:
        body = super().to_body()
        body["error"]["zones"] = self.zones
        return body


def start_manual_round(
    session: Session,
    *,
    campaign: Campaign,
    now: datetime,
    actor: Principal,
    settings: Settings | None = None,
) -> list[ZoneResult]:
    """ "Kirim sekarang": a round per time zone where sending is allowed right now."""
    assert campaign.id is not None
    if campaign.state != CampaignState.active:
        raise Conflict(
            f"campaign is {campaign.state}; rounds start only while it is active",
            code="campaign_not_active",
        )
    policy = policy_for(campaign)
    results: list[ZoneResult] = []
    for timezone in campaign_timezones(session, campaign=campaign):
        reason = closed_reason(policy, timezone, now)
        if reason is None:
            created = create_round(
                session,
                campaign=campaign,
                timezone=timezone,
                scheduled_for=now.replace(second=0, microsecond=0),
                send_at=now,
                origin=MANUAL,
                now=now,
                settings=settings,
            )
            if created is not None:
                results.append(ZoneResult(timezone=timezone, round=created))
                continue
            reason = "duplicate: a round was already started this minute"
            following = next_allowed(policy, timezone, now + timedelta(minutes=1))
        else:
            following = next_allowed(policy, timezone, now)
        results.append(
            ZoneResult(timezone=timezone, round=None, reason=reason, next_allowed_at=following)
        )
    summary: list[dict[str, object]] = [
        {
            "timezone": r.timezone,
            "recipients": r.round.recipients if r.round else None,
            "reason": r.reason,
            "next_allowed_at": r.next_allowed_at.isoformat() if r.next_allowed_at else None,
            "next_allowed_local": (
                r.next_allowed_at.astimezone(ZoneInfo(r.timezone)).isoformat()
                if r.next_allowed_at
                else None
            ),
        }
        for r in results
    ]
    if not results:
        raise Invalid("the campaign covers no OPD yet", code="no_opds")
    if not any(r.round for r in results):
        reasons = "; ".join(f"{r.timezone}: {r.reason}" for r in results)
        raise RoundRefused(f"no round can start now ({reasons})", zones=summary)
    audit_service.record(
        session,
        actor=actor,
        action="campaign.round.start",
        object_type="campaign",
        object_id=campaign.id,
        detail={"zones": summary},
    )
    return results
