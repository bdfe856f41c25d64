"""The functions the scheduler runs: thin wrappers that open a session and call one service.

APScheduler's job store pickles only a reference to the function ("app.scheduler.jobs:fire_round")
and its simple arguments, never an engine or a scheduler. What the jobs need at run time is
therefore set here, once per process, by the runner (configure) before the scheduler starts.
"""

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine

from app.campaigns import expiry as campaign_expiry
from app.campaigns import rounds as campaign_rounds
from app.campaigns import service as campaign_service
from app.config import get_settings
from app.db import session_scope, utcnow
from app.retention import jobs as retention_jobs
from app.scheduler.campaign_jobs import apply_round_jobs, due_slot, wanted_round_jobs
from app.sender import jobs as sender_jobs

logger = logging.getLogger(__name__)


@dataclass
class JobContext:
    engine: Engine
    scheduler: Any = None  # the running scheduler; sync_campaign_jobs adds and removes jobs
    clock: Callable[[], datetime] = utcnow


_context: JobContext | None = None


def configure(
    engine: Engine, *, scheduler: Any = None, clock: Callable[[], datetime] = utcnow
) -> None:
    """Give the jobs of this process their engine and scheduler."""
    global _context
    _context = JobContext(engine=engine, scheduler=scheduler, clock=clock)


def reset() -> None:
    """Forget the context (on stop, and between tests)."""
    global _context
    _context = None


def _ctx() -> JobContext:
    if _context is None:
        raise RuntimeError("scheduler jobs are not configured in this process")
    return _context


def fire_round(campaign_id: int, timezone: str) -> None:
    """Fire a campaign's round in one time zone for the cron slot that is due now."""
    ctx = _ctx()
    now = ctx.clock()
    with session_scope(ctx.engine) as session:
        nominal = due_slot(session, campaign_id=campaign_id, timezone=timezone, now=now)
        if nominal is None:
            logger.warning("scheduler.round_not_fired campaign=%s tz=%s", campaign_id, timezone)
            return
        result = campaign_rounds.fire_scheduled_round(
            session, campaign_id=campaign_id, timezone=timezone, nominal_at=nominal, now=now
        )
        recipients = result.round.recipients if result.round else 0
    logger.info(
        "scheduler.round_fired campaign=%s tz=%s nominal_at=%s outcome=%s recipients=%s",
        campaign_id,
        timezone,
        nominal.isoformat(),
        result.reason,
        recipients,
    )


def sync_campaign_jobs() -> None:
    """Make the scheduler hold exactly one round job per active campaign and time zone."""
    ctx = _ctx()
    with session_scope(ctx.engine) as session:
        wanted = wanted_round_jobs(session, now=ctx.clock())
    report = apply_round_jobs(ctx.scheduler, wanted)
    if report.added or report.replaced or report.removed:
        logger.info(
            "scheduler.jobs_synced added=%s replaced=%s removed=%s unchanged=%s",
            report.added,
            report.replaced,
            report.removed,
            report.unchanged,
        )


def purge_retention() -> None:
    """Daily: erase per-person data of campaigns past their retention period (UU PDP)."""
    ctx = _ctx()
    days = get_settings().audit_retention_days
    retention_jobs.run(ctx.engine, now=ctx.clock(), audit_retention_days=days)


def finish_campaigns() -> None:
    """Mark campaigns whose window has ended as finished."""
    ctx = _ctx()
    with session_scope(ctx.engine) as session:
        finished = campaign_service.finish_ended_campaigns(session, now=ctx.clock())
    if finished:
        logger.info("scheduler.campaigns_finished count=%s", finished)


def refresh_sender_state() -> None:
    """Read the number's messaging limit, throughput and quality from Meta."""
    sender_jobs.refresh_sender_state(_ctx().engine)


def expire_deliveries() -> None:
    """Reminders not delivered inside their send window expire (counted as kedaluwarsa)."""
    ctx = _ctx()
    grace = timedelta(minutes=get_settings().delivery_expiry_grace_minutes)
    with session_scope(ctx.engine) as session:
        campaign_expiry.expire_undelivered(session, now=ctx.clock(), grace=grace)
