"""The next rounds of a campaign per time zone, and how many people each would reach now."""

from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import func
from sqlmodel import Session, select

from app.campaigns import budget, rounds
from app.campaigns.models import Campaign
from app.campaigns.schemas import CampaignPlan, PlannedRound, ZonePlan
from app.campaigns.timing import planned_firings
from app.opds.models import Opd
from app.stats.rounding import random_round


def campaign_plan(
    session: Session,
    *,
    campaign: Campaign,
    now: datetime,
    limit: int = 5,
    rounding_key: bytes | None = None,
    with_reach: bool = True,
) -> CampaignPlan:
    """Planned rounds after `now` with UTC and local times; aggregate counts only.

    With `rounding_key`, each reach is rounded by the statistics' rule (docs/privacy.md), so it
    never tells exactly how many on a list are suppressed. Without `with_reach` no count is
    given at all (coordinators and the inspectorate).
    """
    assert campaign.id is not None
    policy = rounds.policy_for(campaign)
    zones: list[ZonePlan] = []
    for timezone in rounds.campaign_timezones(session, campaign=campaign):
        tz = ZoneInfo(timezone)
        firings = planned_firings(policy, timezone, now, limit=limit)
        reach = budget.reachable_counts(
            session,
            campaign=campaign,
            timezone=timezone,
            send_times=[f.send_at for f in firings],
        )
        opds = session.exec(
            select(func.count())
            .select_from(Opd)
            .where(Opd.timezone == timezone, budget.opd_scope(campaign.id, campaign.all_opds))
        ).one()
        zones.append(
            ZonePlan(
                timezone=timezone,
                opds=int(opds),
                rounds=[
                    PlannedRound(
                        nominal_at=f.nominal_at,
                        nominal_local=f.nominal_at.astimezone(tz).isoformat(),
                        send_at=f.send_at,
                        send_local=f.send_at.astimezone(tz).isoformat(),
                        deferred=f.send_at != f.nominal_at,
                        reachable_now=(
                            _rounded(count, rounding_key, f"plan:{campaign.id}|{timezone}")
                            if with_reach
                            else None
                        ),
                    )
                    for f, count in zip(firings, reach, strict=True)
                ],
            )
        )
    return CampaignPlan(
        campaign_id=campaign.id, state=campaign.state, generated_at=now, zones=zones
    )


def _rounded(count: int, key: bytes | None, cell: str) -> int:
    return count if key is None else random_round(count, key=key, cell=cell)
