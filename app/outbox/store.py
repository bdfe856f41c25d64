"""A worker's parameters, what it holds of a batch, and its database steps (short transactions)."""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import socket
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from datetime import datetime

from sqlalchemy import Engine

from app.config import Settings
from app.db import read_scope, session_scope
from app.outbox import lifecycle, queries, sending_rate
from app.outbox.claim import Job, claim_batch, start_sending
from app.outbox.record import Outcome, record_batch
from app.security import PhoneVault

logger = logging.getLogger(__name__)

# WorkerConfig's defaults are the documented SPI_WORKER_* defaults (app.config.Settings).
_DEFAULTS = Settings.model_fields


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
        """The SPI_WORKER_* settings (each field is the setting `worker_<field>`)."""
        return cls(**{f.name: getattr(settings, f"worker_{f.name}") for f in fields(cls)})


def new_worker_id() -> str:
    """host:pid:random, unique per worker and readable in the claimed_by column."""
    return f"{socket.gethostname()[:40]}:{os.getpid()}:{secrets.token_hex(3)}"


@dataclass(eq=False)
class Batch:
    """Reserved jobs, the monotonic time after which none may be marked, and its progress."""

    jobs: list[Job]
    deadline: float
    started: int = 0  # jobs that got a send slot (or were dropped)
    all_started: asyncio.Event = field(default_factory=asyncio.Event)
    halted: set[int] = field(default_factory=set)  # campaigns WhatsApp refused meanwhile
    revoked: set[int] = field(default_factory=set)  # enrolments that opted out meanwhile
    unsent: list[int] = field(default_factory=list)  # reservations to hand back

    def start_one(self) -> None:
        self.started += 1
        if self.started >= len(self.jobs):
            self.all_started.set()


@dataclass(frozen=True)
class WorkerStore:
    """One worker's view of the outbox: what it reserves, marks, records and hands back."""

    engine: Engine
    settings: Settings
    vault: PhoneVault
    worker_id: str
    clock: Callable[[], datetime]

    @property
    def shared(self) -> bool:
        """Whether several worker processes may share this database (PostgreSQL)."""
        return self.engine.dialect.name == "postgresql"

    def claim(self, *, limit: int, lease_seconds: float, sandbox: bool) -> list[Job]:
        """Turn expired leases unknown, then reserve up to `limit` due deliveries."""
        with session_scope(self.engine) as session:
            lifecycle.recover_expired_leases(session, now=self.clock())
        with session_scope(self.engine) as session:
            jobs, summary = claim_batch(
                session,
                worker_id=self.worker_id,
                now=self.clock(),
                limit=limit,
                lease_seconds=lease_seconds,
                vault=self.vault,
                settings=self.settings,
                sandbox=sandbox,
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

    def mark(self, ids: list[int], *, lease_seconds: float) -> set[int]:
        """Move reserved deliveries to `sending` just before they are sent; which moved."""
        with session_scope(self.engine) as session:
            return start_sending(
                session,
                worker_id=self.worker_id,
                delivery_ids=ids,
                now=self.clock(),
                lease_seconds=lease_seconds,
            )

    def record(self, outcomes: list[Outcome], *, max_attempts: int) -> None:
        """Write the outcomes of sends (see app.outbox.record)."""
        with session_scope(self.engine) as session:
            summary = record_batch(
                session,
                worker_id=self.worker_id,
                outcomes=outcomes,
                now=self.clock(),
                max_attempts=max_attempts,
            )
        logger.debug("outbox.recorded %s", dict(summary.counts))
        if summary.paused_campaigns:
            logger.warning("outbox.recorded paused=%s", summary.paused_campaigns)

    def hand_back(self, ids: list[int]) -> None:
        """Release reservations that will not be sent by this worker."""
        with session_scope(self.engine) as session:
            lifecycle.release_reservations(
                session, worker_id=self.worker_id, ids=ids, now=self.clock()
            )

    def sendable(self, enrolment_ids: set[int]) -> set[int]:
        """Which of these enrolments may still be messaged."""
        with read_scope(self.engine) as session:
            return queries.still_sendable(session, enrolment_ids=enrolment_ids)

    def rate(self) -> float:
        """The number's send rate for all workers together (0: unlimited)."""
        with read_scope(self.engine) as session:
            return sending_rate.per_number_rate(session, settings=self.settings)

    def reserve_slots(self, count: int, rate: float, lead: float) -> sending_rate.Grant:
        """Reserve the number's next send slots (see app.outbox.sending_rate)."""
        sender = self.settings.whatsapp_phone_number_id or "default"
        with session_scope(self.engine) as session:
            return sending_rate.reserve_slots(
                session, sender=sender, count=count, rate=rate, lead=lead
            )
