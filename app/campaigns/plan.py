"""The next rounds of a campaign per time zone, and how many people each would reach now."""

from collections.abc import Callable
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import func
from sqlmodel import Session, select

from app.campaigns import budget, costs, forecast, limits, rounds
from app.campaigns.models import Campaign
from app.campaigns.schemas import CampaignPlan, PlannedRound, ZonePlan
from app.campaigns.timing import Firing, SendPolicy, next_allowed, planned_firings
from app.config import Settings, get_settings
from app.opds.models import Opd
from app.stats.rounding import random_round


def number_id(value: int) -> str:
    """A whole number as Indonesians write it: 2.000, 10.000."""
    return f"{value:,}".replace(",", ".")


def campaign_plan(
    session: Session,
    *,
    campaign: Campaign,
    now: datetime,
    limit: int = 5,
    rounding_key: bytes | None = None,
    with_reach: bool = True,
    settings: Settings | None = None,
) -> CampaignPlan:
    """Planned rounds after `now` with UTC and local times; aggregate counts only.

    With `rounding_key`, each reach is rounded by the statistics' rule (docs/privacy.md), so it
    never tells exactly how many on a list are suppressed. Without `with_reach` no count is
    given at all (coordinators and the inspectorate). Each round is spread under the messaging
    limit as a round created now would be (`app.campaigns.limits`), on the rounded reach.
    """
    assert campaign.id is not None
    settings = settings or get_settings()
    messaging_limit = limits.messaging_limit(session, settings=settings)
    cap = limits.cap_per_24h(messaging_limit, share=settings.messaging_limit_safety_share)
    load = (
        limits.planned_load(session, start=now - limits.DAY, end=now + limits.HORIZON)
        if cap is not None
        else []
    )
    policy = rounds.policy_for(campaign)
    zones: list[ZonePlan] = []
    warnings: list[str] = []
    reach_share: dict[str, float] = {}
    for timezone in rounds.campaign_timezones(session, campaign=campaign):
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
        planned = []
        shown_sum = placed_sum = 0
        for number, (firing, count) in enumerate(zip(firings, reach, strict=True), start=1):
            shown = _rounded(count, rounding_key, f"plan:{campaign.id}|{timezone}")
            spread = limits.spread(
                shown,
                first=firing.send_at,
                cap=cap,
                load=load,
                next_allowed=_next_allowed(policy, timezone),
            )
            planned.append(
                _planned_round(
                    firing,
                    timezone,
                    reachable=shown if with_reach else None,
                    spread=spread,
                    limit=messaging_limit,
                    with_reach=with_reach,
                )
            )
            shown_sum, placed_sum = shown_sum + shown, placed_sum + spread.placed
            if spread.unplaced:
                warnings.append(
                    _warning(
                        number, timezone, firing, spread, campaign, messaging_limit, with_reach
                    ),
                )
        zones.append(ZonePlan(timezone=timezone, opds=int(opds), rounds=planned))
        reach_share[timezone] = placed_sum / shown_sum if shown_sum else 1.0
    cost = None
    if with_reach:
        cost = forecast.cost_forecast(
            session,
            campaign=campaign,
            now=now,
            reach_share=reach_share,
            rates=costs.rate_table(settings),
            group_min=settings.stats_group_min,
            rounding_key=rounding_key,
        )
    return CampaignPlan(
        campaign_id=campaign.id,
        state=campaign.state,
        generated_at=now,
        zones=zones,
        messaging_limit=messaging_limit,
        planned_per_24h=cap,
        warnings=warnings,
        forecast=cost,
    )


def _next_allowed(policy: SendPolicy, timezone: str) -> Callable[[datetime], datetime | None]:
    return lambda at: next_allowed(policy, timezone, at)


def _planned_round(
    firing: Firing,
    timezone: str,
    *,
    reachable: int | None,
    spread: limits.Spread,
    limit: int | None,
    with_reach: bool,
) -> PlannedRound:
    tz = ZoneInfo(timezone)
    days = len({slot.at.astimezone(tz).date() for slot in spread.slots})
    note = None
    if with_reach and limit is not None and spread.slots and not spread.unplaced:
        note = f"menjangkau semua dalam {days} hari kerja pada batas {number_id(limit)}/24 jam"
    return PlannedRound(
        nominal_at=firing.nominal_at,
        nominal_local=firing.nominal_at.astimezone(tz).isoformat(),
        send_at=firing.send_at,
        send_local=firing.send_at.astimezone(tz).isoformat(),
        deferred=firing.send_at != firing.nominal_at,
        reachable_now=reachable,
        # Days and the last batch tell a per-zone count in steps of the cap: admins only.
        spread_until=spread.last_at if with_reach else None,
        spread_days=days if with_reach and limit is not None else None,
        reaches_everyone=not spread.unplaced,
        note=note,
    )


def _warning(
    number: int,
    timezone: str,
    firing: Firing,
    spread: limits.Spread,
    campaign: Campaign,
    limit: int | None,
    with_reach: bool,
) -> str:
    local_day = firing.send_at.astimezone(ZoneInfo(timezone)).date().isoformat()
    who = f"sekitar {number_id(spread.unplaced)} orang" if with_reach else "semua orang"
    return (
        f"Putaran {number} ({timezone}, {local_day}) tidak dapat menjangkau {who} sebelum "
        f"kampanye berakhir pada {campaign.last_day.isoformat()} pada batas "
        f"{number_id(limit or 0)}/24 jam."
    )


def _rounded(count: int, key: bytes | None, cell: str) -> int:
    return count if key is None else random_round(count, key=key, cell=cell)
