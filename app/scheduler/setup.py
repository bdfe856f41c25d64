"""Build the APScheduler 3.x scheduler: persistent job store, defaults, housekeeping jobs."""

import asyncio
import logging
from datetime import timedelta
from typing import Any

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from sqlalchemy import Engine

from app.db import deferred_writes, utcnow
from app.scheduler import jobs

logger = logging.getLogger(__name__)

JOB_TABLE = "apscheduler_jobs"
# A firing missed while no scheduler ran still runs at start-up within this grace;
# fire_scheduled_round then decides whether it is still allowed or is skipped (and logged).
MISFIRE_GRACE = timedelta(hours=6)
SYNC_JOB_ID = "housekeeping:sync_campaign_jobs"
FINISH_JOB_ID = "housekeeping:finish_campaigns"
PURGE_JOB_ID = "housekeeping:retention_purge"
SENDER_JOB_ID = "housekeeping:refresh_sender_state"
EXPIRE_JOB_ID = "housekeeping:expire_deliveries"
EXPIRE_INTERVAL_SECONDS = 300
# API replicas in other processes change campaigns; the leader picks that up this often.
SYNC_INTERVAL_SECONDS = 30
FINISH_INTERVAL_SECONDS = 300
# Meta allows a few hundred management calls an hour; webhooks bring changes in between.
SENDER_REFRESH_SECONDS = 600
JOB_THREADS = 4


class MigratedJobStore(SQLAlchemyJobStore):
    """SQLAlchemyJobStore on the application's engine, with the table owned by Alembic."""

    def start(self, scheduler: Any, alias: str) -> None:
        # Skip SQLAlchemyJobStore.start(): it would CREATE TABLE outside the migrations.
        super(SQLAlchemyJobStore, self).start(scheduler, alias)

    def shutdown(self) -> None:
        # The engine is shared with the rest of the process; disposing it is not ours to do.
        pass


class PersistentScheduler(AsyncIOScheduler):
    """An AsyncIOScheduler whose jobs persist in the database the engine points at."""

    def __init__(self, engine: Engine) -> None:
        # Our own thread pool rather than the loop's default one, so stop can wait for it.
        self.job_threads = ThreadPoolExecutor(JOB_THREADS)
        super().__init__(
            # Its due-job polls run on the event loop; on SQLite they must not wait for the
            # write lock (an import, say), or the webhook, worker and election wait with them.
            jobstores={
                "default": MigratedJobStore(engine=deferred_writes(engine), tablename=JOB_TABLE)
            },
            executors={"default": self.job_threads},
            job_defaults={
                "coalesce": True,
                "max_instances": 1,
                "misfire_grace_time": int(MISFIRE_GRACE.total_seconds()),
            },
            timezone="UTC",
        )

    async def drain_and_shutdown(self, *, timeout: float = 20.0) -> None:
        """Stop taking jobs, let running ones finish (bounded), then shut down."""
        if not self.running:
            return
        self.pause()
        # Wait in a thread so the loop stays free: a running sync job calls back into the
        # scheduler. If a firing is cut short its transaction rolls back, and rounds are
        # created idempotently, so nothing is half-done.
        try:
            await asyncio.wait_for(asyncio.to_thread(self.job_threads.shutdown, True), timeout)
        except TimeoutError:
            logger.warning("scheduler.jobs_still_running after %ss; shutting down anyway", timeout)
        self.shutdown(wait=False)
        # AsyncIOScheduler.shutdown() only queues the real shutdown on the loop; let it run.
        await asyncio.sleep(0)


def build_scheduler(engine: Engine) -> PersistentScheduler:
    """A scheduler with the persistent job store and our job defaults (not started)."""
    return PersistentScheduler(engine)


def add_housekeeping_jobs(scheduler: AsyncIOScheduler) -> None:
    """Schedule the periodic sync and finish jobs (stable ids, replaced on every start)."""
    scheduler.add_job(
        jobs.sync_campaign_jobs,
        "interval",
        seconds=SYNC_INTERVAL_SECONDS,
        id=SYNC_JOB_ID,
        name="sync campaign jobs",
        replace_existing=True,
    )
    scheduler.add_job(
        jobs.purge_retention,
        "cron",
        hour=2,
        minute=30,
        timezone="Asia/Jakarta",
        id=PURGE_JOB_ID,
        name="retention purge",
        replace_existing=True,
    )
    scheduler.add_job(
        jobs.finish_campaigns,
        "interval",
        seconds=FINISH_INTERVAL_SECONDS,
        id=FINISH_JOB_ID,
        name="finish ended campaigns",
        next_run_time=utcnow(),
        replace_existing=True,
    )
    scheduler.add_job(
        jobs.refresh_sender_state,
        "interval",
        seconds=SENDER_REFRESH_SECONDS,
        id=SENDER_JOB_ID,
        name="refresh sender state",
        next_run_time=utcnow(),
        replace_existing=True,
    )
    scheduler.add_job(
        jobs.expire_deliveries,
        "interval",
        seconds=EXPIRE_INTERVAL_SECONDS,
        id=EXPIRE_JOB_ID,
        name="expire undelivered reminders",
        replace_existing=True,
    )
