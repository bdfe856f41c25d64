"""Reading the number from Meta: at start-up, on an admin's request, and every few minutes.

The Graph call is async and belongs to the process's event loop (the messenger's HTTP
client); the database work runs in a thread. Scheduled refreshes run in the scheduler's
threads and hand the call to the loop `start` recorded.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from fastapi import FastAPI
from sqlalchemy import Engine

from app.db import session_scope, utcnow
from app.messaging.account_client import AccountClient
from app.messaging.client import GraphApiError
from app.messaging.health import PhoneHealth
from app.messaging.runtime import Messenger
from app.sender import changes, metrics

logger = logging.getLogger(__name__)

STARTUP_DELAY_SECONDS = 1.0


@dataclass(frozen=True)
class Link:
    """What a scheduled refresh in another thread needs: the loop and the messenger."""

    engine: Engine
    loop: asyncio.AbstractEventLoop
    messenger: Messenger


_link: Link | None = None


def current_link() -> Link | None:
    """The serving process's link, if this process serves the API."""
    return _link


def _apply(engine: Engine, client: AccountClient, health: PhoneHealth) -> None:
    with session_scope(engine) as session:
        changes.apply_reading(
            session, phone_number_id=client.config.phone_number_id, health=health, at=utcnow()
        )


def _record_failure(engine: Engine, reason: str) -> None:
    with session_scope(engine) as session:
        changes.record_refresh_failure(session, reason=reason, at=utcnow())


async def refresh(engine: Engine, client: AccountClient) -> str | None:
    """Read the number's limit, throughput and quality and apply them; the failure, if any."""
    try:
        health = await client.phone_health()
    except GraphApiError as exc:
        reason = exc.result.reason
        logger.warning("sender.refresh_failed reason=%s code=%s", reason, exc.result.error_code)
        await asyncio.to_thread(_record_failure, engine, reason)
        return reason
    await asyncio.to_thread(_apply, engine, client, health)
    logger.info(
        "sender.refreshed limit=%s throughput=%s quality=%s",
        health.messaging_limit_tier,
        health.throughput_per_second,
        health.quality_rating,
    )
    return None


def refresh_from_thread(link: Link, *, timeout: float = 60.0) -> str | None:
    """Run `refresh` on the serving loop from a scheduler thread."""
    future = asyncio.run_coroutine_threadsafe(
        refresh(link.engine, link.messenger.account()), link.loop
    )
    return future.result(timeout=timeout)


StartupCheck = Callable[[FastAPI], Awaitable[None]]


async def start(
    app: FastAPI, *, read_now: bool, after_reading: StartupCheck | None = None
) -> asyncio.Task[None] | None:
    """Report the sender on /metrics; read the number once the app is up (in a task) when
    `read_now`, then run `after_reading` (the production start-up check)."""
    global _link
    engine: Engine = app.state.engine
    metrics.watch(engine)
    messenger: Messenger = app.state.whatsapp
    _link = Link(engine=engine, loop=asyncio.get_running_loop(), messenger=messenger)
    if not read_now and after_reading is None:
        return None

    async def first_reading() -> None:
        await asyncio.sleep(STARTUP_DELAY_SECONDS)
        try:
            if read_now:
                await refresh(engine, messenger.account())
            if after_reading is not None:
                await after_reading(app)
        except Exception:
            # Start-up must never fail because Meta or the sandbox is slow or odd.
            logger.exception("sender.startup_check_failed")

    return asyncio.create_task(first_reading(), name="sender-first-reading")


async def stop(task: asyncio.Task[None] | None) -> None:
    """Cancel the first reading if it is still running, and forget the link."""
    global _link
    if _link is not None:
        metrics.watch(None)
    _link = None
    if task is not None and not task.done():
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
