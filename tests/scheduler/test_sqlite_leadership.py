"""On SQLite the single process always leads: a busy process cannot make it step down."""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor

from app.scheduler.election import Election, SingleProcessLock


def test_the_sqlite_leader_keeps_leading_while_every_thread_is_busy() -> None:
    # A long import and waiting requests can occupy every thread of the loop's default pool;
    # a lock check queued behind them used to time out and stop the scheduler.
    deposed: list[bool] = []
    release = threading.Event()

    async def on_elected() -> None:
        pass

    async def on_deposed() -> None:
        deposed.append(True)

    async def main() -> bool:
        loop = asyncio.get_running_loop()
        pool = ThreadPoolExecutor(max_workers=1)
        loop.set_default_executor(pool)
        election = Election(
            SingleProcessLock(), on_elected=on_elected, on_deposed=on_deposed, poll_seconds=0.05
        )
        await election.tick()
        busy = loop.run_in_executor(None, release.wait)  # the only thread, taken
        try:
            for _ in range(5):
                # Without a thread to run in, a check that needed one would never answer.
                await asyncio.wait_for(election.tick(), timeout=1.0)
            return election.is_leader
        finally:
            release.set()
            await busy

    assert asyncio.run(main()) is True
    assert deposed == []
