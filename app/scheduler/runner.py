"""Run exactly one APScheduler across all processes (PostgreSQL advisory lock).

Every process that runs the scheduler (serve, `spi-reminder scheduler`) starts an election
loop; the process that holds the lock runs the scheduler, the others wait as standby.
"""

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field
from datetime import datetime

from fastapi import FastAPI
from sqlalchemy import Engine

from app.scheduler import jobs
from app.scheduler.election import DEFAULT_POLL_SECONDS, Election, lock_for
from app.scheduler.setup import PersistentScheduler, add_housekeeping_jobs, build_scheduler

logger = logging.getLogger(__name__)


@dataclass(eq=False)
class SchedulerHandle:
    """This process's part in the election, and its scheduler while it leads."""

    engine: Engine
    election: Election = field(init=False)
    scheduler: PersistentScheduler | None = None
    task: "asyncio.Task[None] | None" = None

    @property
    def is_leader(self) -> bool:
        """Whether this process holds the lock (and so runs the scheduler)."""
        return self.election.is_leader

    @property
    def last_heartbeat(self) -> datetime | None:
        """When this process last reached the lock (as leader or standby)."""
        return self.election.last_heartbeat

    async def lead(self) -> None:
        """Start the scheduler, reconcile jobs with campaigns, then let due jobs run."""
        scheduler = build_scheduler(self.engine)
        jobs.configure(self.engine, scheduler=scheduler)
        self.scheduler = scheduler
        # Paused until the sync has run, so jobs of campaigns paused or ended while no scheduler
        # ran are removed before any missed firing is replayed.
        scheduler.start(paused=True)
        await asyncio.to_thread(add_housekeeping_jobs, scheduler)
        await asyncio.to_thread(jobs.sync_campaign_jobs)
        scheduler.resume()
        logger.info("scheduler.started jobs=%s", len(scheduler.get_jobs()))

    async def follow(self) -> None:
        """Stop the scheduler (if any) so another process can lead."""
        scheduler, self.scheduler = self.scheduler, None
        if scheduler is not None:
            await scheduler.drain_and_shutdown()
            logger.info("scheduler.stopped")
        jobs.reset()


async def start_scheduler(
    engine: Engine, *, poll_seconds: float = DEFAULT_POLL_SECONDS
) -> SchedulerHandle:
    """Join the election (leading at once if the lock is free) and keep polling in a task."""
    handle = SchedulerHandle(engine)
    handle.election = Election(
        lock_for(engine),
        on_elected=handle.lead,
        on_deposed=handle.follow,
        poll_seconds=poll_seconds,
    )
    await handle.election.tick()
    handle.task = asyncio.create_task(handle.election.run(), name="scheduler-election")
    return handle


async def stop_scheduler(handle: SchedulerHandle | None) -> None:
    """Leave the election: stop the scheduler, release the lock, close its connection."""
    if handle is None:
        return
    if handle.task is not None:
        handle.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await handle.task
    await handle.election.step_down()


async def run_until(
    engine: Engine, stop: asyncio.Event, *, poll_seconds: float = DEFAULT_POLL_SECONDS
) -> None:
    """Take part in the election until `stop` is set (the CLI, without FastAPI)."""
    handle = await start_scheduler(engine, poll_seconds=poll_seconds)
    try:
        await stop.wait()
    finally:
        await stop_scheduler(handle)


async def start(app: FastAPI) -> SchedulerHandle:
    """Start the scheduler (or its standby loop) in this process; returns a handle for stop()."""
    handle = await start_scheduler(app.state.engine)
    app.state.scheduler = handle  # is_leader / last_heartbeat, for health and metrics
    return handle


async def stop(handle: SchedulerHandle | None) -> None:
    """Stop the scheduler and release the lock."""
    await stop_scheduler(handle)
