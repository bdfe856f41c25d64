"""Mount the local fake of Meta's Graph API into the service when no credentials are set."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable

from fastapi import FastAPI
from sqlalchemy import Engine
from sqlmodel import Session, select

from app.config import Settings
from app.messaging.runtime import Messenger
from app.sandbox import connect, identity, production
from app.sandbox.account import SandboxAccount
from app.sandbox.faults import Faults
from app.sandbox.graph import Renderer, SandboxGraph
from app.sandbox.identity import GRAPH_MOUNT, webhook_secret
from app.templates.models import MessageTemplate
from app.templates.rendering import render_body

logger = logging.getLogger(__name__)

_TEMPLATE_CACHE_SECONDS = 60.0


def sandbox_faults(settings: Settings) -> Faults:
    """Start-up fault modes from SPI_SANDBOX_* (all off by default)."""
    return Faults(
        latency_ms=settings.sandbox_latency_ms,
        throttle_burst=settings.sandbox_throttle_burst,
        error_rate=settings.sandbox_error_rate,
        timeout_rate=settings.sandbox_timeout_rate,
        hang_seconds=settings.sandbox_hang_seconds,
        failed_share=settings.sandbox_failed_share,
        undelivered_share=settings.sandbox_undelivered_share,
        status_delay_seconds=settings.sandbox_status_delay_seconds,
        webhook_retries=settings.sandbox_webhook_retries,
        webhook_retry_seconds=settings.sandbox_webhook_retry_seconds,
        enforce_limits=settings.sandbox_enforce_limits,
    )


def sandbox_account(settings: Settings) -> SandboxAccount:
    """The account the sandbox plays: its limits from SPI_SANDBOX_* (a new portfolio's 250)."""
    return SandboxAccount(
        messaging_limit=settings.sandbox_messaging_limit,
        throughput_per_second=settings.sandbox_throughput_per_second,
    )


def template_renderer(engine: Engine) -> Renderer:
    """Render a sent template from the service's own copy of it, for the inbox."""
    cache: dict[tuple[str, str], tuple[float, str | None]] = {}

    def render(name: str, language: str, params: list[str]) -> str | None:
        now = time.monotonic()
        hit = cache.get((name, language))
        if hit is None or now - hit[0] > _TEMPLATE_CACHE_SECONDS:
            with Session(engine) as session:
                body = session.exec(
                    select(MessageTemplate.body).where(
                        MessageTemplate.name == name, MessageTemplate.language == language
                    )
                ).first()
            hit = cache[(name, language)] = (now, body)
        return render_body(hit[1], params) if hit[1] is not None else None

    return render


def build_sandbox(settings: Settings, *, engine: Engine | None) -> SandboxGraph:
    """A fake Graph API configured from the settings."""
    return SandboxGraph(
        secret=webhook_secret(settings),
        faults=sandbox_faults(settings),
        renderer=template_renderer(engine) if engine is not None else None,
        account=sandbox_account(settings),
    )


def install(app: FastAPI, settings: Settings) -> Callable[[], Awaitable[Messenger]]:
    """Add the sandbox routes to the app (no Meta credentials); return how to open its messenger.

    The messenger sends to SPI_SANDBOX_URL when set, else to this app's own sandbox, whose
    status webhooks come back to this app.
    """
    sandbox = build_sandbox(settings, engine=app.state.engine)
    app.state.sandbox = sandbox
    for route in sandbox.sandbox_routes():
        app.router.routes.append(route)
    if identity.in_production(settings):
        # Only with SPI_SANDBOX_IN_PRODUCTION (create_app refuses otherwise).
        logger.warning("sandbox.production %s; /sandbox/* needs an admin", identity.BANNER)
        engine, vault = app.state.engine, app.state.vault
        app.add_middleware(production.AdminOnlySandbox, engine=engine, vault=vault)
        app.add_middleware(production.SandboxBanner)
    else:
        # Lets `spi-reminder worker` in another process share this inbox and webhook.
        app.mount(GRAPH_MOUNT, sandbox.asgi_app())

    async def open_messenger() -> Messenger:
        if settings.sandbox_url:
            return await connect.open_standalone(settings, url=settings.sandbox_url)
        return await connect.open_in_process(settings, sandbox=app.state.sandbox, webhook_app=app)

    return open_messenger
