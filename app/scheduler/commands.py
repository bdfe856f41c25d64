"""`spi-reminder scheduler`."""

import asyncio
import logging
import signal
from typing import Annotated

import typer
from sqlalchemy import Engine

from app import cli_support
from app.config import get_settings
from app.db import make_engine
from app.logging_setup import configure_logging
from app.scheduler import runner
from app.scheduler.election import DEFAULT_POLL_SECONDS

logger = logging.getLogger(__name__)


async def _run_until_signalled(engine: Engine, poll_seconds: float) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await runner.run_until(engine, stop, poll_seconds=poll_seconds)


def scheduler(
    poll_seconds: Annotated[
        float,
        typer.Option(help="how often a standby tries to take over and the leader checks its lock"),
    ] = DEFAULT_POLL_SECONDS,
) -> None:
    """Run the scheduler alone (standby if another process holds the lock)."""
    settings = get_settings()
    configure_logging(level=settings.log_level, json_lines=settings.log_json)
    # It sends nothing itself, but its rounds would go to the sandbox of serve.
    cli_support.exit_unless_allowed(settings)
    url = settings.resolved_database_url
    if url.startswith("sqlite"):
        # No lock on SQLite: a serve process must run with SPI_SCHEDULER_ENABLED=false.
        logger.warning("scheduler.sqlite assumes it is the only scheduler on this database")
    cli_support.prepare_schema(settings)
    engine = make_engine(url, pool_size=4)
    try:
        asyncio.run(_run_until_signalled(engine, poll_seconds))
        logger.info("scheduler.exit")
    finally:
        engine.dispose()


if __name__ == "__main__":
    typer.run(scheduler)
