"""Issue 13: two and three worker processes on PostgreSQL keep together to the number's rate.

Real `spi-reminder worker`-equivalent processes (tests.outbox.worker_proc) send one round
through one standalone sandbox, which records when each request arrived. Meta counts a
number's throughput per second, so the check is on the busiest one-second window at the fake.
"""

from __future__ import annotations

import bisect
import time
from pathlib import Path

import pytest
from sqlalchemy import Engine

from app.config import Settings
from app.sandbox.arrivals import busiest_second
from app.security import PhoneVault
from tests.outbox.conftest import make_world
from tests.outbox.processes import (
    WorkerProcess,
    sandbox_process,
    wait_until,
    worker_env,
    worker_shares,
)

# About 15 s of sending at a rate whose whole-message rounding leaves the most room (below).
RATE = 20.0
PEOPLE = 300
# Slots are 1/RATE apart and a send leaves at most LATE_SECONDS (40 ms) after its slot, so a
# one-second window holds the sends of at most floor(RATE x 1.04) + 1 = 21 slots; counting
# whole messages, the bound RATE x 1.05 = 21 is then allowed one more (50 ms of jitter between
# a worker and the fake).
GRANULARITY = 1
# A loaded machine can stall a worker, the fake or the database for seconds, which no pacing
# can make up; sharing must still let the workers run at the rate: the best stretch this long.
STRETCH_SECONDS = 5.0


def _best_stretch(times: list[float]) -> int:
    """The most arrivals in any STRETCH_SECONDS window."""
    return max(bisect.bisect_left(times, t + STRETCH_SECONDS) - i for i, t in enumerate(times))


@pytest.mark.postgres_only
@pytest.mark.parametrize("workers", [2, 3])
def test_several_workers_together_keep_to_the_numbers_rate(
    workers: int, engine: Engine, vault: PhoneVault, settings: Settings, tmp_path: Path
) -> None:
    if engine.dialect.name != "postgresql":
        pytest.skip("several workers share a queue only on PostgreSQL")
    make_world(engine, vault, people=PEOPLE)
    log = (tmp_path / "workers.log").open("wb")
    with sandbox_process(tmp_path) as sandbox:
        sandbox.warm_up()
        sandbox.faults(latency_ms=150)  # a Graph round trip from Indonesia
        env = worker_env(
            settings,
            sandbox.url,
            epoch=time.time(),
            SPI_SEND_RATE_PER_SECOND=str(RATE),
            SPI_SEND_CONCURRENCY="32",
            SPI_WORKER_BATCH_SIZE="50",
        )
        running = [WorkerProcess(env, log) for _ in range(workers)]
        wait_until(
            lambda: sandbox.stats()["requests"] >= PEOPLE, timeout=90, what="the round to be sent"
        )
        assert [w.terminate() for w in running] == [0] * workers
        stats = sandbox.stats(detail=True)
    log.close()
    shares = worker_shares(tmp_path / "workers.log")
    assert len(shares) == workers
    assert min(shares) > 0  # every worker took part
    assert stats["requests"] == PEOPLE
    assert stats["max_per_callback"] == 1
    times: list[float] = stats["arrivals"]["times"]
    assert len(times) == PEOPLE
    # Never more than the number's rate (+5 %) in any second, all workers together …
    assert busiest_second(times) <= RATE * 1.05 + GRANULARITY
    assert stats["arrivals"]["busiest_second"] == busiest_second(times)
    # … and together they reach it (at least 95 %), all sends sharing the number's slots.
    assert _best_stretch(times) >= RATE * STRETCH_SECONDS * 0.95
