"""The scheduled refresh of the sender state (wired by `app.scheduler.jobs`)."""

from __future__ import annotations

import asyncio
import logging

from sqlalchemy import Engine

from app.config import Settings, get_settings
from app.messaging import runtime as messaging_runtime
from app.messaging.account_client import account_client_for
from app.sender import runtime

logger = logging.getLogger(__name__)


def refresh_sender_state(engine: Engine, *, settings: Settings | None = None) -> None:
    """Read the number's messaging limit, throughput and quality, and apply them."""
    link = runtime.current_link()
    if link is not None:
        # In `serve`: through the app's own client (Meta, or the sandbox in-process).
        runtime.refresh_from_thread(link)
        return
    settings = settings or get_settings()
    if not settings.whatsapp_access_token.get_secret_value():
        # A scheduler process of its own with the sandbox: serve reads the sandbox itself.
        logger.debug("sender.refresh_skipped no Meta credentials in this process")
        return
    asyncio.run(_refresh_with_own_client(engine, settings))


async def _refresh_with_own_client(engine: Engine, settings: Settings) -> None:
    async with account_client_for(messaging_runtime.meta_config(settings)) as client:
        await runtime.refresh(engine, client)
