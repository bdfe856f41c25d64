"""Outbox worker: claims due deliveries in batches and sends them."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import signal
import socket
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import NamedTuple

from fastapi import FastAPI
from sqlalchemy import Engine

from app.config import Settings
from app.db import make_engine, read_scope, session_scope, utcnow
from app.messaging.results import SendOutcome, SendResult
from app.messaging.runtime import Messenger
from app.outbox import lifecycle, queries
from app.outbox.claim import Job, claim_batch
from app.outbox.record import Outcome, record_batch
from app.outbox.service import OPT_OUT_RECHECK_SECONDS
from app.security import PhoneVault, load_keys

logger = logging.getLogger(__name__)

# WorkerConfig's defaults are the documented SPI_WORKER_* defaults (app.config.Settings).
_DEFAULTS = Settings.model_fields
# A batch stops sending once this share of its lease has passed, so that a slow batch is
# never still sending when another worker may declare its lease dead.
LEASE_SAFETY = 0.75
RECORD_TRIES = 3
STOP_TIMEOUT_SECONDS = 30.0


class Batch(NamedTuple):
    """Claimed jobs and the monotonic time after which none of them may still be sent."""

    jobs: list[Job]
    deadline: float


@dataclass(frozen=True)
class WorkerConfig:
    """Batch, lease and retry parameters of one worker."""

    batch_size: int = _DEFAULTS["worker_batch_size"].default
    batch_seconds: float = _DEFAULTS["worker_batch_seconds"].default
    lease_seconds: float = _DEFAULTS["worker_lease_seconds"].default
    poll_seconds: float = _DEFAULTS["worker_poll_seconds"].default
    max_attempts: int = _DEFAULTS["worker_max_attempts"].default

    @classmethod
    def from_settings(cls, settings: Settings) -> WorkerConfig:
        """The SPI_WORKER_* settings."""
        return cls(
            batch_size=settings.worker_batch_size,
            batch_seconds=settings.worker_batch_seconds,
            lease_seconds=settings.worker_lease_seconds,
            poll_seconds=settings.worker_poll_seconds,
            max_attempts=settings.worker_max_attempts,
        )


def new_worker_id() -> str:
    """host:pid:random, unique per worker and readable in the claimed_by column."""
    return f"{socket.gethostname()[:40]}:{os.getpid()}:{secrets.token_hex(3)}"


class OutboxWorker:
    """Claim → send under the limiter → record, one batch ahead, until asked to stop."""

    def __init__(
        self,
        *,
        engine: Engine,
        settings: Settings,
        messenger: Messenger,
        vault: PhoneVault,
        config: WorkerConfig | None = None,
        clock: Callable[[], datetime] = utcnow,
        worker_id: str | None = None,
    ) -> None:
        self.engine = engine
        self.settings = settings
        self.messenger = messenger
        self.vault = vault
        self.config = config or WorkerConfig.from_settings(settings)
        self.clock = clock
        self.worker_id = worker_id or new_worker_id()
        self._stop = asyncio.Event()
        self.sent = 0  # requests made, for logs and benchmarks

    @property
    def stopping(self) -> bool:
        """Whether stop() was called."""
        return self._stop.is_set()

    def stop(self) -> None:
        """Stop claiming; sends already on the wire finish and everything is recorded."""
        self._stop.set()

    def batch_limit(self) -> int:
        """Deliveries per claim: about batch_seconds of sending when rate-limited."""
        limiter = self.messenger.limiter
        if limiter.unlimited:
            return self.config.batch_size
        per_batch = max(self.messenger.concurrency, int(limiter.rate * self.config.batch_seconds))
        return max(1, min(self.config.batch_size, per_batch))

    async def run(self) -> None:
        """Work until stop(); the next batch is claimed while the current one is sent."""
        logger.info("outbox.worker_started id=%s batch=%d", self.worker_id, self.batch_limit())
        ahead: asyncio.Task[Batch] | None = None
        recording: asyncio.Task[None] | None = None
        try:
            while not self.stopping:
                try:
                    batch = await ahead if ahead is not None else await self._claim()
                    ahead = None
                    if not batch.jobs:
                        await self._idle()
                        continue
                    ahead = asyncio.create_task(self._claim())
                    outcomes = await self._send(batch)
                    if recording is not None:
                        await recording
                    recording = asyncio.create_task(self._record(outcomes))
                except Exception:
                    logger.exception("outbox.worker_error id=%s", self.worker_id)
                    await self._release(ahead)
                    ahead = None
                    await self._idle()
        finally:
            await self._release(ahead)
            if recording is not None:
                await recording
        logger.info("outbox.worker_stopped id=%s requests=%d", self.worker_id, self.sent)

    async def run_once(self) -> int:
        """One claim, send and record (for tests and one-shot use); returns the batch size."""
        batch = await self._claim()
        if batch.jobs:
            await self._record(await self._send(batch))
        return len(batch.jobs)

    async def _release(self, claim: asyncio.Task[Batch] | None) -> None:
        """Put a batch claimed ahead but never sent back in the queue."""
        if claim is None:
            return
        try:
            unsent = await claim
        except Exception:
            return  # the claim itself failed, so nothing was claimed
        await self._record([Outcome(job, None) for job in unsent.jobs])

    async def _idle(self) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stop.wait(), timeout=self.config.poll_seconds)

    async def _claim(self) -> Batch:
        if self.stopping:
            return Batch([], 0.0)
        # The lease runs from the claim, not from the send (a batch is claimed one ahead).
        deadline = time.monotonic() + self.config.lease_seconds * LEASE_SAFETY
        return Batch(await asyncio.to_thread(self._claim_sync), deadline)

    def _claim_sync(self) -> list[Job]:
        with session_scope(self.engine) as session:
            lifecycle.recover_expired_leases(session, now=self.clock())
        with session_scope(self.engine) as session:
            jobs, summary = claim_batch(
                session,
                worker_id=self.worker_id,
                now=self.clock(),
                limit=self.batch_limit(),
                lease_seconds=self.config.lease_seconds,
                vault=self.vault,
                settings=self.settings,
                sandbox=self.messenger.is_sandbox,
            )
        if summary.counts["skipped"] or summary.counts["deferred"] or summary.paused_campaigns:
            logger.info(
                "outbox.claimed sending=%d skipped=%d deferred=%d paused=%s",
                summary.counts["sending"],
                summary.counts["skipped"],
                summary.counts["deferred"],
                summary.paused_campaigns,
            )
        return jobs

    async def _send(self, batch: Batch) -> list[Outcome]:
        deadline = batch.deadline
        halted: set[int] = set()
        gate = asyncio.Semaphore(self.messenger.concurrency)
        # Enrolments that opted out (or were withdrawn or erased) since the claim.
        revoked: set[int] = set()
        await self._recheck(batch, revoked)
        watcher = asyncio.create_task(self._watch(batch, revoked), name="outbox-opt-out-watch")

        async def send(job: Job) -> Outcome:
            def still_wanted() -> bool:
                return (
                    not self.stopping
                    and job.campaign_id not in halted
                    and job.enrolment_id not in revoked
                    and time.monotonic() < deadline
                )

            async with gate:
                if not still_wanted():
                    return Outcome(job, None)
                try:
                    result = await self.messenger.send_reminder(
                        to=job.to,
                        template_name=job.template_name,
                        language=job.language,
                        parameters=job.parameters,
                        callback_data=job.public_id,
                        still_wanted=still_wanted,
                    )
                except Exception:
                    # A bug, not a transport error (the client classifies those): the
                    # request may have left, so it must never be sent again.
                    logger.exception("outbox.send_crashed delivery=%s", job.delivery_id)
                    result = SendResult(SendOutcome.UNKNOWN, "worker_error")
            if result is not None:
                self.sent += 1
                if result.outcome is SendOutcome.HALT:
                    halted.add(job.campaign_id)
            return Outcome(job, result)

        try:
            return list(await asyncio.gather(*(send(job) for job in batch.jobs)))
        finally:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher

    async def _watch(self, batch: Batch, revoked: set[int]) -> None:
        """Re-read who may still be messaged until the batch is sent (cancelled then)."""
        while True:
            await asyncio.sleep(OPT_OUT_RECHECK_SECONDS)
            await self._recheck(batch, revoked)

    async def _recheck(self, batch: Batch, revoked: set[int]) -> None:
        wanted = {job.enrolment_id for job in batch.jobs} - revoked
        try:
            sendable = await asyncio.to_thread(self._sendable_sync, wanted)
        except Exception as exc:
            # The claim-time check still holds; a failed re-read must not stop the round.
            logger.warning("outbox.recheck_failed error=%s", type(exc).__name__)
            return
        revoked.update(wanted - sendable)

    def _sendable_sync(self, enrolment_ids: set[int]) -> set[int]:
        with read_scope(self.engine) as session:
            return queries.still_sendable(session, enrolment_ids=enrolment_ids)

    async def _record(self, outcomes: list[Outcome]) -> None:
        for attempt in range(1, RECORD_TRIES + 1):
            try:
                await asyncio.to_thread(self._record_sync, outcomes)
                return
            except Exception:
                logger.exception("outbox.record_failed try=%d/%d", attempt, RECORD_TRIES)
                await asyncio.sleep(0.5 * attempt)
        # Left in `sending`: the lease expires and they become unknown, never re-sent.
        logger.error("outbox.record_gave_up deliveries=%d", len(outcomes))

    def _record_sync(self, outcomes: list[Outcome]) -> None:
        with session_scope(self.engine) as session:
            summary = record_batch(
                session,
                worker_id=self.worker_id,
                outcomes=outcomes,
                now=self.clock(),
                max_attempts=self.config.max_attempts,
            )
        logger.debug("outbox.recorded %s", dict(summary.counts))
        if summary.paused_campaigns:
            logger.warning("outbox.recorded paused=%s", summary.paused_campaigns)


@dataclass
class WorkerHandle:
    """The in-process worker of `serve`."""

    worker: OutboxWorker
    task: asyncio.Task[None]


async def start(app: FastAPI) -> WorkerHandle | None:
    """Start an in-process worker (serve); returns a handle for stop()."""
    messenger = getattr(app.state, "whatsapp", None)
    if not isinstance(messenger, Messenger):
        return None
    worker = OutboxWorker(
        engine=app.state.engine,
        settings=app.state.settings,
        messenger=messenger,
        vault=app.state.vault,
    )
    return WorkerHandle(worker, asyncio.create_task(worker.run(), name="outbox-worker"))


async def stop(handle: object | None) -> None:
    """Stop claiming, finish in-flight sends, record them."""
    if not isinstance(handle, WorkerHandle):
        return
    handle.worker.stop()
    try:
        await asyncio.wait_for(asyncio.shield(handle.task), timeout=STOP_TIMEOUT_SECONDS)
    except TimeoutError:
        logger.error("outbox.worker_stop_timeout: claimed deliveries will turn unknown")
        handle.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await handle.task


async def run_worker(
    settings: Settings,
    *,
    engine: Engine | None = None,
    open_whatsapp: Callable[[], Awaitable[Messenger]],
    clock: Callable[[], datetime] = utcnow,
) -> OutboxWorker:
    """Run one standalone worker until SIGTERM/SIGINT (used by `spi-reminder worker`).

    `open_whatsapp` is the wiring's choice of Meta or the sandbox (see outbox.commands).
    """
    owned = engine is None
    engine = engine or make_engine(settings.resolved_database_url, pool_size=4)
    messenger = await open_whatsapp()
    worker = OutboxWorker(
        engine=engine,
        settings=settings,
        messenger=messenger,
        vault=PhoneVault(load_keys(settings)),
        clock=clock,
    )
    loop = asyncio.get_running_loop()
    signals = (signal.SIGTERM, signal.SIGINT)
    for sig in signals:
        loop.add_signal_handler(sig, worker.stop)
    try:
        await worker.run()
    finally:
        for sig in signals:
            loop.remove_signal_handler(sig)
        await messenger.aclose()
        if owned:
            engine.dispose()
    return worker
