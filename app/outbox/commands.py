"""`spi-reminder worker`."""

import asyncio
import functools

from app import cli_support
from app.config import get_settings
from app.logging_setup import configure_logging
from app.outbox.worker import run_worker
from app.sandbox import connect as sandbox_connect
from app.sandbox.identity import GRAPH_MOUNT


def worker() -> None:
    """Run one outbox worker until SIGTERM/SIGINT.

    Without Meta credentials it sends to the sandbox of the running `serve`
    (SPI_SANDBOX_URL overrides), so its messages show up in that inbox.
    """
    settings = get_settings()
    configure_logging(level=settings.log_level, json_lines=settings.log_json)
    cli_support.exit_unless_allowed(settings, standalone=True)
    cli_support.prepare_schema(settings)
    serve_sandbox = f"http://{settings.host}:{settings.port}{GRAPH_MOUNT}"
    open_whatsapp = functools.partial(
        sandbox_connect.open_for_worker, settings, fallback_sandbox_url=serve_sandbox
    )
    asyncio.run(run_worker(settings, open_whatsapp=open_whatsapp))
