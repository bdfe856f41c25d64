"""Keep one round job per (active campaign, time zone of its OPDs) in the scheduler."""

import logging
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

from apscheduler.triggers.cron import CronTrigger
from sqlmodel import Session, col, select

from app.campaigns import rounds as campaign_rounds
from app.campaigns.models import Campaign, CampaignState
from app.campaigns.timing import cron_trigger, tz_for

logger = logging.getLogger(__name__)

ROUND_JOB_PREFIX = "round:"
# A text reference, not the function: jobs.py imports this module.
FIRE_ROUND_REF = "app.scheduler.jobs:fire_round"
# How far back fire_round looks for the slot it is firing; widened until a slot is found.
_LOOKBACKS = tuple(timedelta(days=d) for d in (1 / 24, 1, 8, 32, 367))


def round_job_id(campaign_id: int, tz_name: str) -> str:
    """The stable job id of a campaign's rounds in one time zone."""
    return f"{ROUND_JOB_PREFIX}{campaign_id}:{tz_name}"


def window_bounds(first_day: date, last_day: date, tz_name: str) -> tuple[datetime, datetime]:
    """The campaign window in local time: its first and its last instant (inclusive)."""
    tz = tz_for(tz_name)
    start = datetime.combine(first_day, time(0), tz)
    end = datetime.combine(last_day + timedelta(days=1), time(0), tz) - timedelta(microseconds=1)
    return start, end


def round_trigger(campaign: Campaign, tz_name: str) -> CronTrigger:
    """The campaign's cron read in the zone, ending with the last day of its window."""
    _, end = window_bounds(campaign.first_day, campaign.last_day, tz_name)
    return cron_trigger(campaign.cron, tz_name, end_date=end)


def latest_fire_time(trigger: CronTrigger, now: datetime) -> datetime | None:
    """The trigger's latest fire time at or before now (deterministic per slot)."""
    # APScheduler 3 triggers only look forward: find a fire inside a growing look-back window,
    # then step forward to the last one that is not after now.
    for lookback in _LOOKBACKS:
        fire = trigger.get_next_fire_time(None, now - lookback)
        if fire is None or fire > now:
            continue
        while True:
            following = trigger.get_next_fire_time(fire, fire + timedelta(microseconds=1))
            if following is None or following > now:
                return fire
            fire = following
    return None


def due_slot(
    session: Session, *, campaign_id: int, timezone: str, now: datetime
) -> datetime | None:
    """The cron slot a firing at `now` is for: the latest one at or before now.

    Two firings of one slot (a retry, a restart mid-firing) compute the same nominal time, so
    the round's uniqueness makes the second one a no-op.
    """
    campaign = session.get(Campaign, campaign_id)
    if campaign is None:
        return None
    return latest_fire_time(round_trigger(campaign, timezone), now)


@dataclass(frozen=True)
class RoundJob:
    """One job the scheduler should hold."""

    job_id: str
    campaign_id: int
    timezone: str
    trigger: CronTrigger
    first_run_at: datetime  # the first firing inside the campaign window, from now on


@dataclass
class SyncReport:
    """What a sync changed (counts only)."""

    added: int = 0
    replaced: int = 0
    removed: int = 0
    unchanged: int = 0


def wanted_round_jobs(session: Session, *, now: datetime) -> dict[str, RoundJob]:
    """The round jobs that should exist now: active campaigns with a firing still ahead."""
    campaigns = list(
        session.exec(select(Campaign).where(col(Campaign.state) == CampaignState.active)).all()
    )
    wanted: dict[str, RoundJob] = {}
    for campaign in campaigns:
        assert campaign.id is not None
        for tz_name in campaign_rounds.campaign_timezones(session, campaign=campaign):
            try:
                trigger = round_trigger(campaign, tz_name)
            except ValueError:
                # Validated on input; one bad row must not stop the sync of all the others.
                logger.error("scheduler.bad_schedule campaign=%s tz=%s", campaign.id, tz_name)
                continue
            # Never fire before the window opens: a round there would be deferred into it.
            start, _ = window_bounds(campaign.first_day, campaign.last_day, tz_name)
            first = trigger.get_next_fire_time(None, max(now, start))
            if first is None:
                continue  # the window has no firing left; finish_campaigns will close it
            job_id = round_job_id(campaign.id, tz_name)
            wanted[job_id] = RoundJob(job_id, campaign.id, tz_name, trigger, first)
    return wanted


def _same(job: Any, spec: RoundJob) -> bool:
    return (
        job.func_ref == FIRE_ROUND_REF
        and tuple(job.args) == (spec.campaign_id, spec.timezone)
        and repr(job.trigger) == repr(spec.trigger)
    )


def apply_round_jobs(scheduler: Any, wanted: dict[str, RoundJob]) -> SyncReport:
    """Add, replace and remove round jobs so the scheduler holds exactly `wanted`."""
    report = SyncReport()
    existing = {j.id: j for j in scheduler.get_jobs() if j.id.startswith(ROUND_JOB_PREFIX)}
    for job_id in existing.keys() - wanted.keys():
        scheduler.remove_job(job_id)
        report.removed += 1
    for job_id, spec in wanted.items():
        job = existing.get(job_id)
        if job is not None and _same(job, spec):
            report.unchanged += 1
            continue
        scheduler.add_job(
            FIRE_ROUND_REF,
            trigger=spec.trigger,
            args=[spec.campaign_id, spec.timezone],
            id=job_id,
            name=f"round campaign {spec.campaign_id} {spec.timezone}",
            next_run_time=spec.first_run_at,
            replace_existing=True,
        )
        if job is None:
            report.added += 1
        else:
            report.replaced += 1
    return report
