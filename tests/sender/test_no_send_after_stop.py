"""After Meta stops a template, no reminder of its campaigns leaves (the worker, end to end)."""

from __future__ import annotations

import asyncio

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from app.config import Settings
from app.outbox.worker import OutboxWorker
from app.sandbox import connect, notices
from app.sandbox.graph import SandboxGraph
from app.security import PhoneVault
from tests.outbox.conftest import CONFIG, Clock, make_world
from tests.sender.conftest import T0, notify

STOPS = {
    "paused": notices.template_status(
        template_id="5", name="spi_uji", language="id", event="PAUSED", reason="LOW_QUALITY"
    ),
    "disabled": notices.template_status(
        template_id="5", name="spi_uji", language="id", event="DISABLED"
    ),
    "marketing": notices.template_category(
        template_id="5", name="spi_uji", language="id", previous="UTILITY", new="MARKETING"
    ),
}


def _run_worker(
    engine: Engine, settings: Settings, vault: PhoneVault, sandbox: SandboxGraph
) -> int:
    async def main() -> int:
        messenger = await connect.open_in_process(settings, sandbox=sandbox)
        worker = OutboxWorker(
            engine=engine,
            settings=settings,
            messenger=messenger,
            vault=vault,
            config=CONFIG,
            clock=Clock(),
            worker_id="test-worker",
        )
        try:
            return await worker.run_once()
        finally:
            await messenger.aclose()

    return asyncio.run(main())


@pytest.mark.parametrize("stop", [None, *STOPS])
def test_no_reminder_leaves_once_the_template_is_stopped(
    engine: Engine,
    vault: PhoneVault,
    settings: Settings,
    client: TestClient,
    stop: str | None,
) -> None:
    world = make_world(engine, vault, people=3)
    if stop is not None:
        notify(client, settings, STOPS[stop], at=T0)
    sandbox = SandboxGraph(secret=b"uji")

    _run_worker(engine, settings, vault, sandbox)

    if stop is None:
        assert sandbox.accepted == 3  # the same round sends when nothing stopped it
        return
    assert sandbox.accepted == 0
    assert world.states() == ["queued"] * 3
