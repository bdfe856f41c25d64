"""A crash costs at most what was in flight: workers killed again and again in one round."""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path

from sqlalchemy import Engine, func
from sqlmodel import col, select

from app.config import Settings
from app.db import session_scope
from app.outbox.models import FINAL_STATES, Delivery, DeliveryState
from app.security import PhoneVault
from tests.outbox.conftest import make_world
from tests.outbox.processes import WorkerProcess, sandbox_process, wait_until, worker_env

CONCURRENCY = 4
KILLS = 6


def _states(engine: Engine) -> Counter[str]:
    with session_scope(engine) as s:
        rows = s.exec(select(Delivery.state, func.count()).group_by(col(Delivery.state))).all()
    return Counter({state: n for state, n in rows})


def _sending_of(engine: Engine, pid: int) -> int:
    """Deliveries in `sending` under the worker with this process id (host:pid:random)."""
    with session_scope(engine) as s:
        mine = col(Delivery.claimed_by).like(f"%:{pid}:%")
        query = select(func.count()).where(col(Delivery.state) == DeliveryState.sending, mine)
        return int(s.exec(query).one())


def test_each_kill_costs_at_most_the_send_concurrency_and_the_rest_is_sent(
    engine: Engine, vault: PhoneVault, settings: Settings, tmp_path: Path
) -> None:
    people = 240
    world = make_world(engine, vault, people=people)
    epoch = time.time()
    log = (tmp_path / "workers.log").open("wb")
    lost_per_kill: list[int] = []
    with sandbox_process(tmp_path) as sandbox:
        sandbox.faults(latency_ms=120)  # answers take a while: requests are in flight
        env = worker_env(
            settings,
            sandbox.url,
            epoch=epoch,
            SPI_SEND_CONCURRENCY=str(CONCURRENCY),
            SPI_WORKER_BATCH_SIZE="12",
            SPI_WORKER_LEASE_SECONDS="2",
        )
        for _ in range(KILLS):
            before = sandbox.stats()["requests"]
            worker = WorkerProcess(env, log)
            wait_until(
                lambda before=before: sandbox.stats()["requests"] >= before + 12,
                timeout=30,
                what="the worker to send",
            )
            worker.kill()
            # Let the database finish what the dead connection had sent (a commit may be on
            # its way), then count what this worker left in `sending`: only that is lost,
            # what it had reserved but not marked is still queued.
            time.sleep(0.5)
            lost_per_kill.append(_sending_of(engine, worker.process.pid))
        last = WorkerProcess(env, log)
        wait_until(
            lambda: sum(_states(engine)[s] for s in FINAL_STATES) == people,
            timeout=90,
            what="every delivery to reach a final state",
        )
        assert last.terminate() == 0
        stats = sandbox.stats(detail=True)
    log.close()
    states = _states(engine)
    assert max(lost_per_kill) <= CONCURRENCY
    assert sum(lost_per_kill) > 0, "the kills should land while requests are in flight"
    # Never twice, counted at the receiving end.
    assert stats["max_per_recipient"] == 1
    assert set(stats["by_callback"].values()) == {1}
    # Only what was in flight at a kill is unknown; everything else was sent.
    assert states[DeliveryState.unknown] == sum(lost_per_kill)
    assert states[DeliveryState.accepted] == people - sum(lost_per_kill)
    accepted = {d.public_id for d in world.deliveries() if d.state == DeliveryState.accepted}
    assert accepted <= set(stats["by_callback"])
    assert world.tallies() == {
        "scheduled": people,
        "accepted": people - sum(lost_per_kill),
        "unknown": sum(lost_per_kill),
    }
