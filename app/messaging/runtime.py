"""The process-wide WhatsApp client: Meta's Graph API, or the local sandbox without credentials."""

from __future__ import annotations

import asyncio
import importlib.util
import logging
import sys
from collections.abc import Callable, Sequence
from typing import Any

import httpx
from fastapi import FastAPI

from app.config import Settings
from app.messaging.client import GraphConfig, WhatsAppClient
from app.messaging.ratelimit import TokenBucket
from app.messaging.results import SendResult
from app.messaging.transport import graph_http_client
from app.sandbox.fake_graph import (
    SANDBOX_ACCESS_TOKEN,
    SANDBOX_PHONE_NUMBER_ID,
    SANDBOX_WABA_ID,
    SandboxGraph,
    TimeoutASGITransport,
)

logger = logging.getLogger(__name__)

# httpcore (and httpx's ASGITransport) run `import sniffio` on every request to detect trio.
# anyio 4 no longer installs sniffio, and a failed import is not cached: each request would
# rescan sys.path (~0.4 ms of CPU). A None entry is Python's way to record "not installed".
if importlib.util.find_spec("sniffio") is None:
    sys.modules.setdefault("sniffio", None)  # type: ignore[arg-type]

# Signs the sandbox's status webhooks when no app secret is configured. Public on purpose:
# it only ever protects the local fake, never a real Meta app.
DEV_WEBHOOK_SECRET = b"pengingat-spi-sandbox-app-secret"
# Extra connections so webhook replies never wait behind a full pool of reminders.
REPLY_CONNECTIONS = 4
THROTTLE_HOLD_SECONDS = 1.0
RECHECK_SECONDS = 0.5


def sandbox_active(settings: Settings) -> bool:
    """The sandbox stands in for Meta exactly when no access token is configured."""
    return not settings.whatsapp_access_token.get_secret_value()


def webhook_secret(settings: Settings) -> bytes:
    """The key of X-Hub-Signature-256 (HMAC-SHA256 of the raw body), for sender and verifier.

    The Meta app secret when set. Without it: DEV_WEBHOOK_SECRET in the sandbox, and b""
    with real credentials, meaning nothing can be verified and every POST must be refused
    (open_messenger logs that misconfiguration at start-up).
    """
    secret = settings.whatsapp_app_secret.get_secret_value()
    if secret:
        return secret.encode()
    return DEV_WEBHOOK_SECRET if sandbox_active(settings) else b""


class Messenger:
    """What app.state.whatsapp holds: the client, the shared limiter and the sandbox if any."""

    def __init__(
        self,
        *,
        http: httpx.AsyncClient,
        client: WhatsAppClient,
        limiter: TokenBucket,
        concurrency: int,
        sandbox: SandboxGraph | None = None,
    ) -> None:
        self.http = http
        self.client = client
        self.limiter = limiter
        self.concurrency = concurrency
        self.sandbox = sandbox

    @property
    def is_sandbox(self) -> bool:
        """Whether sends go to a sandbox rather than Meta."""
        return self.client.config.access_token == SANDBOX_ACCESS_TOKEN

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


def _sandbox_config(settings: Settings, base_url: str) -> GraphConfig:
    return GraphConfig(
        base_url=base_url,
        api_version=settings.graph_api_version,
        phone_number_id=SANDBOX_PHONE_NUMBER_ID,
        waba_id=SANDBOX_WABA_ID,
        access_token=SANDBOX_ACCESS_TOKEN,
    )


async def open_messenger(
    settings: Settings,
    *,
    sandbox: SandboxGraph | None = None,
    webhook_app: Any = None,
    fallback_sandbox_url: str = "",
) -> Messenger:
    """Build the messenger: Meta with a token; else a standalone sandbox if a URL is known
    (SPI_SANDBOX_URL, or fallback_sandbox_url); else an in-process sandbox whose status
    webhooks go to webhook_app's /webhook/whatsapp."""
    limiter, concurrency, timeout = _limits(settings)
    pool = concurrency + REPLY_CONNECTIONS

    def pooled(base_url: str) -> httpx.AsyncClient:
        return graph_http_client(base_url, timeout=timeout, pool=pool)

    if not sandbox_active(settings):
        if not settings.whatsapp_app_secret.get_secret_value():
            logger.error("whatsapp.no_app_secret: status webhooks cannot be verified")
        config = GraphConfig(
            base_url=settings.graph_base_url,
            api_version=settings.graph_api_version,
            phone_number_id=settings.whatsapp_phone_number_id,
            waba_id=settings.whatsapp_waba_id,
            access_token=settings.whatsapp_access_token.get_secret_value(),
            app_secret=settings.whatsapp_app_secret.get_secret_value() or None,
        )
        http = pooled(config.base_url)
        logger.info("whatsapp.meta api=%s concurrency=%d", config.api_version, concurrency)
        return Messenger(
            http=http, client=WhatsAppClient(http, config), limiter=limiter, concurrency=concurrency
        )

    url = settings.sandbox_url or fallback_sandbox_url
    if url:
        http = pooled(url)
        logger.info("whatsapp.sandbox standalone url=%s", url)
        return Messenger(
            http=http,
            client=WhatsAppClient(http, _sandbox_config(settings, url)),
            limiter=limiter,
            concurrency=concurrency,
        )

    if sandbox is None:
        sandbox = SandboxGraph(secret=webhook_secret(settings))
    if webhook_app is not None:
        await sandbox.start(
            webhook_url="http://service.local/webhook/whatsapp",
            transport=httpx.ASGITransport(app=webhook_app),
        )
    else:
        await sandbox.start(webhook_url=None)
    base = "http://sandbox.local"
    http = httpx.AsyncClient(
        base_url=base,
        transport=TimeoutASGITransport(sandbox.asgi_app(), read_timeout=timeout.read or 1.0),
        timeout=timeout,
    )
    logger.info("whatsapp.sandbox in-process (no Meta credentials configured)")
    return Messenger(
        http=http,
        client=WhatsAppClient(http, _sandbox_config(settings, base)),
        limiter=limiter,
        concurrency=concurrency,
        sandbox=sandbox,
    )


async def open_client(app: FastAPI) -> Messenger:
    """Create the shared httpx client and WhatsApp client for this process."""
    return await open_messenger(
        app.state.settings, sandbox=getattr(app.state, "sandbox", None), webhook_app=app
    )


async def close_client(handle: object | None) -> None:
    """Close what open_client created."""
    if isinstance(handle, Messenger):
        await handle.aclose()
