"""The application factory: settings, keys, database, routes, error handling."""

import functools
import gc
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI
from fastapi.responses import JSONResponse
from sqlalchemy import Engine, text
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from app import api_docs, openapi_errors, schema_migrations, service_clock
from app.audit.router import router as audit_router
from app.campaigns.router import current_time as campaign_clock
from app.campaigns.router import router as campaigns_router
from app.config import Settings, get_settings
from app.console.router import router as console_router
from app.dashboard.router import router as dashboard_router
from app.dashboard.sender_pages import router as dashboard_sender_router
from app.db import make_engine
from app.enrolment.router import router as enrolment_router
from app.errors import install_lock_timeout_handler
from app.http import BodySizeLimit, error_body, install_error_handlers, refuse_nul
from app.http_headers import SecurityHeaders
from app.messaging import runtime as messaging_runtime
from app.messaging.runtime import Messenger
from app.opds.router import router as opds_router
from app.outbox import worker as outbox_worker
from app.sandbox import identity as sandbox_identity
from app.scheduler import runner as scheduler_runner
from app.security import PhoneVault, load_keys
from app.sender import doctor as sender_doctor
from app.sender import runtime as sender_runtime
from app.sender.router import router as sender_router
from app.stats.router import metrics_router
from app.stats.router import router as stats_router
from app.templates.router import router as templates_router
from app.webhook import receiver as webhook_receiver
from app.webhook.router import router as webhook_router

DESCRIPTION = """
Pengingat SPI sends a few neutral WhatsApp reminders to staff who agreed to them during KPK's
Survei Penilaian Integritas, lets anyone stop with one word, and shows aggregate numbers only.
No answer, completion or individual behaviour is ever tracked.
"""


def create_app(settings: Settings | None = None, *, engine: Engine | None = None) -> FastAPI:
    """Build the API for the given settings (the environment's by default).

    Raises SandboxRefused in production without Meta credentials, unless the operator set
    SPI_SANDBOX_IN_PRODUCTION.
    """
    settings = settings or get_settings()
    sandbox_identity.check_startup(settings)
    vault = PhoneVault(load_keys(settings))
    if engine is None:
        if settings.resolved_database_url.startswith("sqlite"):
            settings.data_dir.mkdir(parents=True, exist_ok=True)
        engine = make_engine(settings.resolved_database_url)

    # Meta, unless no credentials are configured: then the sandbox (below) replaces it.
    open_whatsapp: Callable[[], Awaitable[Messenger]] = functools.partial(
        messaging_runtime.open_messenger, settings
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.whatsapp = await open_whatsapp()
        # The number's limits are read where the scheduler may run; production with Meta's
        # credentials also logs the pre-flight (`spi-reminder doctor`) once it is up.
        preflight = settings.env == "production" and not sandbox_identity.sandbox_active(settings)
        sender = await sender_runtime.start(
            app,
            read_now=settings.scheduler_enabled,
            after_reading=sender_doctor.log_at_startup if preflight else None,
        )
        scheduler = await scheduler_runner.start(app) if settings.scheduler_enabled else None
        worker = await outbox_worker.start(app) if settings.worker_enabled else None
        # What startup built lives as long as the process. Frozen, it is left out of the
        # collector's full passes, which otherwise walk it again and again: on a statistics
        # request that builds many rows, such a pass cost up to ~100 ms.
        gc.collect()
        gc.freeze()
        try:
            yield
        finally:
            gc.unfreeze()
            await outbox_worker.stop(worker)
            await scheduler_runner.stop(scheduler)
            await sender_runtime.stop(sender)
            await app.state.whatsapp.aclose()

    app = FastAPI(
        title="Pengingat SPI",
        version="0.1.0",
        description=DESCRIPTION,
        lifespan=lifespan,
        dependencies=[Depends(refuse_nul)],
        docs_url=None,
        redoc_url=None,
    )
    api_docs.install(app)
    app.state.settings = settings
    app.state.clock = service_clock.clock_for(settings)
    if settings.clock_at is not None:
        app.dependency_overrides[campaign_clock] = app.state.clock
    app.state.engine = engine
    app.state.vault = vault
    install_error_handlers(app)
    install_lock_timeout_handler(app)
    app.add_middleware(
        BodySizeLimit,
        default=settings.max_json_body_bytes,
        limits={
            "/enrolments/import": settings.max_import_bytes,
            # The console's upload (plus its form fields) and the confirm/report forms carrying
            # the check's encrypted rows; the console refuses an oversized file itself, in words.
            "/impor/periksa": settings.max_import_bytes + 64 * 1024,
            "/impor/konfirmasi": settings.max_import_bytes,
            "/impor/laporan": settings.max_import_bytes,
        },
    )
    app.add_middleware(SecurityHeaders)
    if settings.forwarded_allow_ips.strip():
        # The scheme the browser used, from a trusted TLS-ending proxy: Secure cookies follow it.
        app.add_middleware(ProxyHeadersMiddleware, trusted_hosts=settings.forwarded_allow_ips)
    # Outermost, so that Meta's many small POSTs skip the routing and middleware below.
    webhook_receiver.install(app)
    app.include_router(opds_router)
    app.include_router(enrolment_router)
    app.include_router(audit_router)
    app.include_router(templates_router)
    app.include_router(campaigns_router)
    app.include_router(webhook_router)
    app.include_router(dashboard_router)
    app.include_router(stats_router)
    app.include_router(metrics_router)
    app.include_router(console_router)
    app.include_router(sender_router)
    app.include_router(dashboard_sender_router)
    app.state.sandbox = None
    if sandbox_identity.sandbox_active(settings):
        # Imported only without Meta credentials: a production process never loads the fake
        # or Meta's spec validator it checks requests with.
        from app.sandbox import mount as sandbox_mount

        open_whatsapp = sandbox_mount.install(app, settings)

    @app.get("/healthz", tags=["Health"])
    def healthz() -> dict[str, str]:
        """Liveness: the process answers."""
        return {"status": "ok"}

    @app.get("/readyz", tags=["Health"], responses={503: {"description": "not ready"}})
    def readyz() -> JSONResponse:
        """Readiness: the database answers and is at the newest migration."""
        try:
            with engine.connect() as conn:
                conn.execute(text("SELECT 1"))
            current = schema_migrations.current_revision(engine)
        except Exception:
            return JSONResponse(error_body("db_unreachable", "database unreachable"), 503)
        head = schema_migrations.head_revision(settings.resolved_database_url)
        if current != head:
            return JSONResponse(
                error_body("migrations_pending", f"database at {current}, code expects {head}"),
                503,
            )
        return JSONResponse({"status": "ready", "revision": current})

    openapi_errors.install(app)
    return app
