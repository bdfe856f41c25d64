"""A standalone worker for process tests: `python -m tests.outbox.worker_proc`.

It is `spi-reminder worker` with one difference: its clock starts at SPI_TEST_CLOCK_AT (an
ISO time inside the campaign's send window) when the wall clock reads SPI_TEST_CLOCK_EPOCH,
so that tests do not depend on the weekday they run on. Every process of one test shares
both values, so leases written by one are read consistently by the next.
"""

import asyncio
import functools
import os
import time
from datetime import datetime, timedelta

from app.config import get_settings
from app.logging_setup import configure_logging
from app.outbox.worker import run_worker
from app.sandbox import connect as sandbox_connect


def main() -> None:
    start = datetime.fromisoformat(os.environ["SPI_TEST_CLOCK_AT"])
    epoch = float(os.environ["SPI_TEST_CLOCK_EPOCH"])

    def clock() -> datetime:
        return start + timedelta(seconds=time.time() - epoch)

    settings = get_settings()
    configure_logging(level="INFO")
    open_whatsapp = functools.partial(
        sandbox_connect.open_for_worker, settings, fallback_sandbox_url=""
    )
    asyncio.run(run_worker(settings, open_whatsapp=open_whatsapp, clock=clock))


if __name__ == "__main__":
    main()
