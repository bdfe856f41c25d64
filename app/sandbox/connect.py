"""Point the messaging runtime at the sandbox: the real client, unchanged, talking to the fake.

The app's wiring calls these when no Meta credentials are configured (see
`identity.sandbox_active`); `messaging/` itself never imports the sandbox.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

import httpx

from app.config import Settings
from app.messaging import runtime
from app.messaging.runtime import GraphTarget, Messenger
from app.sandbox.identity import graph_config, sandbox_active

if TYPE_CHECKING:
    from app.sandbox.graph import SandboxGraph

logger = logging.getLogger(__name__)

IN_PROCESS_BASE_URL = "http://sandbox.local"
IN_PROCESS_WEBHOOK_URL = "http://service.local/webhook/whatsapp"


class TimeoutASGITransport(httpx.ASGITransport):
    """ASGITransport that gives up like a socket would: ReadTimeout after `read_timeout`."""

    def __init__(self, app: Any, *, read_timeout: float) -> None:
        super().__init__(app=app)
        self._read_timeout = read_timeout

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        try:
            async with asyncio.timeout(self._read_timeout):
                return await super().handle_async_request(request)
        except TimeoutError as exc:
            raise httpx.ReadTimeout("sandbox did not answer in time", request=request) from exc


async def open_standalone(settings: Settings, *, url: str) -> Messenger:
    """A messenger that sends to a sandbox served at `url` (its own port, or serve's mount)."""
    logger.info("whatsapp.sandbox standalone url=%s", url)
    return await runtime.open_messenger(settings, target=GraphTarget(graph_config(settings, url)))


async def open_in_process(
    settings: Settings, *, sandbox: SandboxGraph, webhook_app: Any = None
) -> Messenger:
    """A messenger that sends to `sandbox` in this process; it posts its status webhooks to
    webhook_app's /webhook/whatsapp (None: nowhere). Closing the messenger stops it."""
    if webhook_app is not None:
        await sandbox.start(
            webhook_url=IN_PROCESS_WEBHOOK_URL, transport=httpx.ASGITransport(app=webhook_app)
        )
    else:
        await sandbox.start(webhook_url=None)
    transport = TimeoutASGITransport(
        sandbox.asgi_app(), read_timeout=settings.graph_read_timeout_seconds or 1.0
    )
    target = GraphTarget(
        graph_config(settings, IN_PROCESS_BASE_URL), transport=transport, owner=sandbox
    )
    logger.info("whatsapp.sandbox in-process (no Meta credentials configured)")
    return await runtime.open_messenger(settings, target=target)


async def open_for_worker(settings: Settings, *, fallback_sandbox_url: str) -> Messenger:
    """A standalone worker's messenger: Meta with credentials, else the sandbox at
    SPI_SANDBOX_URL (or fallback_sandbox_url, the running serve's mount)."""
    if not sandbox_active(settings):
        return await runtime.open_messenger(settings)
    return await open_standalone(settings, url=settings.sandbox_url or fallback_sandbox_url)
