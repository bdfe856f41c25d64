"""Outbox worker: reserves due deliveries in batches and sends them, a few at a time.

A claim only reserves deliveries; each is moved to `sending` just before its request leaves and
recorded as soon as it is answered (both in groups, `app.outbox.grouping`). At most the send
concurrency is ever in `sending`, so that is all a crash can turn into `unknown`; the rest of a
dead worker's reservations lapse and are claimed again. Sends keep to the number's rate, shared
by every worker on PostgreSQL (`app.outbox.sending_rate`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime

from fastapi import FastAPI
from sqlalchemy import Engine

from app.config import Settings
from app.db import make_engine, utcnow
from app.messaging.results import SendOutcome, SendResult
from app.messaging.runtime import Messenger
from app.outbox import sending_rate
from app.outbox.claim import Job
from app.outbox.grouping import Grouped
from app.outbox.record import Outcome
from app.outbox.service import OPT_OUT_RECHECK_SECONDS
from app.outbox.store import Batch, WorkerConfig, WorkerStore, new_worker_id
from app.security import PhoneVault, load_keys

logger = logging.getLogger(__name__)

# A reservation is not moved to `sending`, nor a marked send started, once this share of its
# lease has passed, so that nothing is still sent when another worker may take the row.
LEASE_SAFETY = 0.75
RECORD_TRIES = 3
STOP_TIMEOUT_SECONDS = 30.0
RATE_REFRESH_SECONDS = 30.0


class OutboxWorker:
    """Reserve → (pace → mark → send → record, per delivery) until asked to stop."""

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
        self.store = WorkerStore(engine, settings, vault, self.worker_id, clock)
        self._stop = asyncio.Event()
        self.sent = 0  # requests made, for logs and benchmarks
        self.pace = self._make_pace(messenger.limiter.rate)
        self._rate_read = float("-inf")
        # Held from a delivery's mark until its outcome is recorded: at most this many are in
        # `sending` at any moment, which bounds what a crash can turn into `unknown`.
        self._slots = asyncio.Semaphore(messenger.concurrency)
        self._marks: Grouped[int, set[int]] = Grouped(self._mark)
        self._records: Grouped[Outcome, None] = Grouped(self._record)

    def _make_pace(self, rate: float) -> sending_rate.Pace:
        if not self.store.shared:
            return sending_rate.Pace(rate)  # SQLite: one process sends

        async def reserve(count: int, rate: float, lead: float) -> sending_rate.Grant:
            return await asyncio.to_thread(self.store.reserve_slots, count, rate, lead)

        return sending_rate.SharedPace(rate, reserve=reserve)

    @property
    def stopping(self) -> bool:
        """Whether stop() was called."""
        return self._stop.is_set()

    def stop(self) -> None:
        """Stop claiming; sends already on the wire finish and everything is recorded."""
        self._stop.set()

    def batch_limit(self) -> int:
        """Deliveries per claim: about batch_seconds of sending when rate-limited."""
        if self.pace.rate <= 0:
            return self.config.batch_size
        per_batch = max(self.messenger.concurrency, int(self.pace.rate * self.config.batch_seconds))
        return max(1, min(self.config.batch_size, per_batch))

    async def run(self) -> None:
        """Work until stop(); the next batch is reserved while the current one starts."""
        await self._refresh_rate()
        logger.info(
            "outbox.worker_started id=%s batch=%d rate=%s",
            self.worker_id,
            self.batch_limit(),
            self.pace.rate or "unlimited",
        )
        ahead: asyncio.Task[Batch] | None = None
        sending: set[asyncio.Task[None]] = set()
        try:
            while not self.stopping:
                try:
                    batch = await ahead if ahead is not None else await self._claim()
                    ahead = None
                    if not batch.jobs:
                        await self._idle()
                        continue
                    ahead = asyncio.create_task(self._claim())
                    task = asyncio.create_task(self._send(batch), name="outbox-batch")
                    sending.add(task)
                    task.add_done_callback(sending.discard)
                    # The next batch goes once every job of this one has a send slot.
                    starting = asyncio.create_task(batch.all_started.wait())
                    await asyncio.wait({starting, task}, return_when=asyncio.FIRST_COMPLETED)
                    starting.cancel()
                    await self._refresh_rate()
                except Exception:
                    logger.exception("outbox.worker_error id=%s", self.worker_id)
                    await self._release(ahead)
                    ahead = None
                    await self._idle()
        finally:
            await self._release(ahead)
            if sending:
                await asyncio.gather(*sending, return_exceptions=True)
        logger.info("outbox.pace %s", self.pace.describe())
        logger.info("outbox.worker_stopped id=%s requests=%d", self.worker_id, self.sent)

    async def run_once(self) -> int:
        """One claim, send and record (for tests and one-shot use); returns the batch size."""
        await self._refresh_rate()
        batch = await self._claim()
        if batch.jobs:
            await self._send(batch)
        return len(batch.jobs)

    async def _refresh_rate(self) -> None:
        """Follow the number's rate (read again every RATE_REFRESH_SECONDS)."""
        if time.monotonic() - self._rate_read < RATE_REFRESH_SECONDS:
            return
        self._rate_read = time.monotonic()
        try:
            rate = await asyncio.to_thread(self.store.rate)
        except Exception as exc:
            logger.warning("outbox.rate_read_failed error=%s", type(exc).__name__)
            return
        if rate != self.pace.rate:
            logger.info("outbox.send_rate rate=%s", rate or "unlimited")
        self.pace.set_rate(rate)
        # The messenger's own limiter keeps the same rate (replies share it in `serve`).
        self.messenger.limiter.set_rate(rate)

    async def _release(self, claim: asyncio.Task[Batch] | None) -> None:
        """Hand back a batch reserved ahead but never started."""
        if claim is None:
            return
        try:
            unsent = await claim
        except Exception:
            return  # the claim itself failed, so nothing was reserved
        await self._hand_back([job.delivery_id for job in unsent.jobs])

    async def _hand_back(self, ids: list[int]) -> None:
        if not ids:
            return
        try:
            await asyncio.to_thread(self.store.hand_back, ids)
        except Exception:
            # Harmless: the reservations lapse with their lease and are claimed again.
            logger.exception("outbox.release_failed deliveries=%d", len(ids))

    async def _idle(self) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stop.wait(), timeout=self.config.poll_seconds)

    async def _claim(self) -> Batch:
        if self.stopping:
            return Batch([], 0.0)
        # The lease runs from the claim, not from the send (a batch is claimed one ahead).
        deadline = time.monotonic() + self.config.lease_seconds * LEASE_SAFETY
        jobs = await asyncio.to_thread(
            self.store.claim,
            limit=self.batch_limit(),
            lease_seconds=self.config.lease_seconds,
            sandbox=self.messenger.is_sandbox,
        )
        return Batch(jobs, deadline)

    async def _send(self, batch: Batch) -> None:
        await self._recheck(batch)
        watcher = asyncio.create_task(self._watch(batch), name="outbox-opt-out-watch")
        try:
            await asyncio.gather(*(self._carry(batch, job) for job in batch.jobs))
        except Exception:
            logger.exception("outbox.batch_error id=%s", self.worker_id)
        finally:
            batch.all_started.set()
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher
            await self._hand_back(batch.unsent)

    async def _carry(self, batch: Batch, job: Job) -> None:
        """Pace, mark, send and record one delivery; hand it back if it is not to be sent."""
        deadline = batch.deadline

        def still_wanted() -> bool:
            return (
                not self.stopping
                and job.campaign_id not in batch.halted
                and job.enrolment_id not in batch.revoked
                and time.monotonic() < deadline
            )

        async with self._slots:
            batch.start_one()
            slot = await self.pace.slot(still_wanted)  # handed out a little ahead of time
            if slot is None:
                batch.unsent.append(job.delivery_id)
                return
            try:
                marked = job.delivery_id in await self._marks.submit(job.delivery_id)
            except Exception:
                # Maybe marked, maybe not: never sent, so at worst its lease turns it unknown.
                logger.exception("outbox.mark_failed delivery=%s", job.delivery_id)
                return
            if not marked:
                return  # no longer ours (opted out, settled, or taken after a lapsed lease)
            deadline = time.monotonic() + self.config.lease_seconds * LEASE_SAFETY
            # It leaves at its slot's moment (or a later slot's), or is recorded as never sent.
            sent = await self.pace.keep(slot, still_wanted)
            result = await self._request(batch, job, still_wanted) if sent else None
            await self._records.submit(Outcome(job, result))

    async def _request(
        self, batch: Batch, job: Job, still_wanted: Callable[[], bool]
    ) -> SendResult | None:
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
            # A bug, not a transport error (the client classifies those): the request may
            # have left, so it must never be sent again.
            logger.exception("outbox.send_crashed delivery=%s", job.delivery_id)
            result = SendResult(SendOutcome.UNKNOWN, "worker_error")
        if result is not None:
            self.sent += 1
            if result.outcome is SendOutcome.HALT:
                batch.halted.add(job.campaign_id)
        return result

    async def _watch(self, batch: Batch) -> None:
        """Re-read who may still be messaged until the batch is sent (cancelled then)."""
        while True:
            await asyncio.sleep(OPT_OUT_RECHECK_SECONDS)
            await self._recheck(batch)

    async def _recheck(self, batch: Batch) -> None:
        wanted = {job.enrolment_id for job in batch.jobs} - batch.revoked
        try:
            sendable = await asyncio.to_thread(self.store.sendable, wanted)
        except Exception as exc:
            # The claim-time check still holds; a failed re-read must not stop the round.
            logger.warning("outbox.recheck_failed error=%s", type(exc).__name__)
            return
        batch.revoked.update(wanted - sendable)

    async def _mark(self, ids: list[int]) -> set[int]:
        return await asyncio.to_thread(
            self.store.mark, ids, lease_seconds=self.config.lease_seconds
        )

    async def _record(self, outcomes: list[Outcome]) -> None:
        for attempt in range(1, RECORD_TRIES + 1):
            try:
                await asyncio.to_thread(
                    self.store.record, outcomes, max_attempts=self.config.max_attempts
                )
                return
            except Exception:
                logger.exception("outbox.record_failed try=%d/%d", attempt, RECORD_TRIES)
                await asyncio.sleep(0.5 * attempt)
        # Left in `sending`: the lease expires and they become unknown, never re-sent.
        logger.error("outbox.record_gave_up deliveries=%d", len(outcomes))


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
        clock=getattr(app.state, "clock", utcnow),
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
