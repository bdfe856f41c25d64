"""The process-wide WhatsApp client: Meta's Graph API, or wherever the app's wiring points it.

The wiring (main.py, the commands) decides between Meta and the sandbox; this module knows
neither the sandbox nor its transport, it takes a ready `GraphTarget`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

import httpx

from app.config import Settings
from app.messaging.account_client import AccountClient
from app.messaging.client import GraphConfig, WhatsAppClient
from app.messaging.ratelimit import TokenBucket
from app.messaging.results import SendResult
from app.messaging.transport import graph_http_client

logger = logging.getLogger(__name__)

# Extra connections so webhook replies never wait behind a full pool of reminders.
REPLY_CONNECTIONS = 4
THROTTLE_HOLD_SECONDS = 1.0
RECHECK_SECONDS = 0.5


class Closeable(Protocol):
    async def aclose(self) -> None: ...


@dataclass(frozen=True, slots=True)
class GraphTarget:
    """Where sends go instead of Meta: a Graph API look-alike, over the network or in-process."""

    config: GraphConfig
    transport: httpx.AsyncBaseTransport | None = None  # None: over the network to config.base_url
    owner: Closeable | None = None  # stopped when the messenger closes


class Messenger:
    """What app.state.whatsapp holds: the client, the shared limiter and the stand-in if any."""

    def __init__(
        self,
        *,
        http: httpx.AsyncClient,
        client: WhatsAppClient,
        limiter: TokenBucket,
        concurrency: int,
        is_sandbox: bool = False,
        sandbox: Closeable | None = None,
    ) -> None:
        self.http = http
        self.client = client
        self.limiter = limiter
        self.concurrency = concurrency
        # Sends go to a stand-in rather than Meta (a sandbox, standalone or in-process).
        self.is_sandbox = is_sandbox
        self.sandbox = sandbox

    async def send_reply(self, *, to: str, body: str) -> SendResult:
        """Send a free-form text reply; it passes every waiting reminder in the limiter."""
        await self.limiter.acquire(priority=True)
        return self._observe(await self.client.send_text(to=to, body=body))

    async def send_reminder(
        self,
        *,
        to: str,
        template_name: str,
        language: str,
        parameters: Sequence[str],
        callback_data: str,
        still_wanted: Callable[[], bool] | None = None,
    ) -> SendResult | None:
        """Send one template when the limiter allows; None if still_wanted() said no by then."""
        while not self.limiter.try_acquire():
            try:
                async with asyncio.timeout(RECHECK_SECONDS):
                    await self.limiter.acquire()
                break
            except TimeoutError:
                # A long wait (a hold after 130429): let a stopping worker give the slot up.
                if still_wanted is not None and not still_wanted():
                    return None
        if still_wanted is not None and not still_wanted():
            self.limiter.refund()
            return None
        result = await self.client.send_template(
            to=to,
            template_name=template_name,
            language=language,
            parameters=parameters,
            callback_data=callback_data,
        )
        return self._observe(result)

    def account(self) -> AccountClient:
        """A client for the account's own calls (number, token, webhook, templates)."""
        return AccountClient(self.http, self.client.config)

    def _observe(self, result: SendResult) -> SendResult:
        if result.throttles_sender:
            self.limiter.hold(result.retry_after_seconds or THROTTLE_HOLD_SECONDS)
        return result

    async def aclose(self) -> None:
        """Close the HTTP client (and stop a sandbox this messenger started)."""
        await self.http.aclose()
        if self.sandbox is not None:
            await self.sandbox.aclose()


def _limits(settings: Settings) -> tuple[TokenBucket, int, httpx.Timeout]:
    rate = settings.send_rate_per_second
    concurrency = settings.send_concurrency
    connect = settings.graph_connect_timeout_seconds
    read = settings.graph_read_timeout_seconds
    timeout = httpx.Timeout(connect=connect, read=read, write=read, pool=read)
    return TokenBucket(rate), concurrency, timeout


def meta_config(settings: Settings) -> GraphConfig:
    """The client configuration for Meta's Graph API, from the settings."""
    return GraphConfig(
        base_url=settings.graph_base_url,
        api_version=settings.graph_api_version,
        phone_number_id=settings.whatsapp_phone_number_id,
        waba_id=settings.whatsapp_waba_id,
        access_token=settings.whatsapp_access_token.get_secret_value(),
        app_secret=settings.whatsapp_app_secret.get_secret_value() or None,
    )


async def open_messenger(settings: Settings, *, target: GraphTarget | None = None) -> Messenger:
    """Build the messenger: Meta's Graph API from the settings, or `target` when given."""
    limiter, concurrency, timeout = _limits(settings)
    if target is None:
        if not settings.whatsapp_app_secret.get_secret_value():
            logger.error("whatsapp.no_app_secret: status webhooks cannot be verified")
        config = meta_config(settings)
        logger.info("whatsapp.meta api=%s concurrency=%d", config.api_version, concurrency)
    else:
        config = target.config
    if target is None or target.transport is None:
        http = graph_http_client(
            config.base_url, timeout=timeout, pool=concurrency + REPLY_CONNECTIONS
        )
    else:
        http = httpx.AsyncClient(
            base_url=config.base_url, transport=target.transport, timeout=timeout
        )
    return Messenger(
        http=http,
        client=WhatsAppClient(http, config),
        limiter=limiter,
        concurrency=concurrency,
        is_sandbox=target is not None,
        sandbox=target.owner if target is not None else None,
    )
