"""Fixtures for the outbox: a campaign with a round of queued deliveries, a clock, workers."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import pytest
from sqlalchemy import Engine
from sqlmodel import col, select

from app.campaigns.models import Campaign
from app.config import Settings
from app.db import session_scope
from app.messaging.client import GraphConfig, WhatsAppClient, build_http_client
from app.messaging.ratelimit import TokenBucket
from app.messaging.runtime import Messenger
from app.outbox.models import Delivery, DeliveryTally
from app.outbox.worker import OutboxWorker, WorkerConfig
from app.sandbox import connect as sandbox_connect
from app.sandbox.graph import SandboxGraph
from app.security import PhoneVault
from tests.factories import add_campaign, add_opd, add_people, add_round, add_template

T = TypeVar("T")

# A Tuesday, 10:00 in Jakarta: inside the default 08:00-15:00 send window.
NOW = datetime(2026, 3, 10, 3, 0, tzinfo=UTC)
PHONE_NUMBER_ID = "106540352242922"
WABA_ID = "419561257915477"
ACCESS_TOKEN = "EAAG-outbox-test-token"
MESSAGES_URL = f"https://graph.facebook.com/v23.0/{PHONE_NUMBER_ID}/messages"


@dataclass
class Clock:
    """A settable UTC clock for the worker."""

    now: datetime = NOW

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@dataclass
class World:
    """One OPD, one active campaign, one round with a queued delivery per person."""

    engine: Engine
    campaign_id: int
    round_id: int
    phones: list[str]
    template_name: str = "spi_uji"

    def deliveries(self) -> list[Delivery]:
        """Every delivery, by id."""
        with session_scope(self.engine) as s:
            return list(s.exec(select(Delivery).order_by(col(Delivery.id))).all())

    def states(self) -> list[str]:
        """State of every delivery, by id."""
        return [d.state for d in self.deliveries()]

    def tallies(self) -> dict[str, int]:
        """Tally totals by send outcome (the round's `listed` population is not one)."""
        totals: dict[str, int] = {}
        with session_scope(self.engine) as s:
            for row in s.exec(select(DeliveryTally)).all():
                if row.outcome != "listed":
                    totals[row.outcome] = totals.get(row.outcome, 0) + row.count
        return totals


def make_world(
    engine: Engine,
    vault: PhoneVault,
    people: int = 3,
    *,
    template_status: str = "APPROVED",
    **campaign: Any,
) -> World:
    """Build a World with `people` enrolled and their deliveries queued for NOW."""
    add_opd(engine, "DINKES")
    template_id = add_template(engine, status=template_status)
    campaign_id = add_campaign(engine, template_id=template_id, now=NOW - timedelta(days=1))
    if campaign:
        with session_scope(engine) as s:
            row = s.get(Campaign, campaign_id)
            assert row is not None
            for key, value in campaign.items():
                setattr(row, key, value)
            s.add(row)
    phones = add_people(engine, vault, "DINKES", people)
    round_id = add_round(engine, campaign_id=campaign_id, at=NOW)
    return World(engine, campaign_id, round_id, phones)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def world(engine: Engine, vault: PhoneVault) -> World:
    return make_world(engine, vault)


def run(coro: Awaitable[T]) -> T:
    """Run a coroutine in a fresh event loop (no pytest-asyncio here)."""

    async def main() -> T:
        return await coro

    return asyncio.run(main())


CONFIG = WorkerConfig(batch_size=50, lease_seconds=60, poll_seconds=0.05, max_attempts=3)


@dataclass
class Rig:
    """A worker bound to a messenger, runnable batch by batch in one event loop."""

    engine: Engine
    settings: Settings
    vault: PhoneVault
    clock: Clock
    make_messenger: Callable[[], Awaitable[Messenger]]
    config: WorkerConfig = CONFIG
    results: list[int] = field(default_factory=list)

    def batches(self, count: int = 1, *, advance: float = 0.0) -> list[int]:
        """Run `count` claim/send/record cycles (advancing the clock between them)."""

        async def main() -> list[int]:
            messenger = await self.make_messenger()
            worker = self.worker(messenger)
            sizes = []
            try:
                for _ in range(count):
                    sizes.append(await worker.run_once())
                    self.clock.advance(advance)
            finally:
                await messenger.aclose()
            return sizes

        return asyncio.run(main())

    def worker(self, messenger: Messenger) -> OutboxWorker:
        return OutboxWorker(
            engine=self.engine,
            settings=self.settings,
            messenger=messenger,
            vault=self.vault,
            config=self.config,
            clock=self.clock,
            worker_id="test-worker",
        )


def graph_config() -> GraphConfig:
    return GraphConfig(phone_number_id=PHONE_NUMBER_ID, waba_id=WABA_ID, access_token=ACCESS_TOKEN)


async def meta_messenger(concurrency: int = 1) -> Messenger:
    """A messenger for graph.facebook.com on httpx's default transport (respx patches it)."""
    http = build_http_client(
        base_url="https://graph.facebook.com",
        connect_timeout=1.0,
        read_timeout=2.0,
        max_connections=concurrency,
    )
    return Messenger(
        http=http,
        client=WhatsAppClient(http, graph_config()),
        limiter=TokenBucket(0),
        concurrency=concurrency,
    )


@pytest.fixture
def sandbox() -> SandboxGraph:
    """The in-process fake Graph API."""
    return SandboxGraph(secret=b"test-secret")


@pytest.fixture
def rig(
    engine: Engine, settings: Settings, vault: PhoneVault, clock: Clock, sandbox: SandboxGraph
) -> Rig:
    """A worker sending to the in-process sandbox."""

    async def messenger() -> Messenger:
        return await sandbox_connect.open_in_process(settings, sandbox=sandbox)

    return Rig(engine, settings, vault, clock, messenger)


@pytest.fixture
def meta_rig(engine: Engine, settings: Settings, vault: PhoneVault, clock: Clock) -> Rig:
    return Rig(engine, settings, vault, clock, meta_messenger)


@pytest.fixture
def no_rate_limit(settings: Settings) -> None:
    """Unlimited send rate for sandbox messengers built from settings."""
    settings.send_rate_per_second = 0
    settings.sandbox_url = ""
