"""Invariant 8 with real processes: a worker killed mid-batch, and two workers at once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import Engine, func
from sqlmodel import col, select

from app.config import Settings
from app.db import session_scope
from app.outbox.models import FINAL_STATES, Delivery, DeliveryState
from app.security import PhoneVault
from tests.outbox.conftest import make_world
from tests.outbox.processes import (
    ROOT,
    WorkerProcess,
    sandbox_process,
    wait_until,
    worker_env,
    worker_shares,
)


def _states(engine: Engine) -> Counter[str]:
    with session_scope(engine) as s:
        rows = s.exec(select(Delivery.state, func.count()).group_by(col(Delivery.state))).all()
    return Counter({state: n for state, n in rows})


def test_killed_worker_never_causes_a_second_send(
    engine: Engine, vault: PhoneVault, settings: Settings, tmp_path: Path
) -> None:
    people = 30
    world = make_world(engine, vault, people=people)
    epoch = time.time()
    log = (tmp_path / "workers.log").open("wb")
    with sandbox_process(tmp_path) as sandbox:
        sandbox.faults(latency_ms=250)  # slow answers: requests are in flight when it dies
        env = worker_env(
            settings,
            sandbox.url,
            epoch=epoch,
            SPI_SEND_CONCURRENCY="3",
            SPI_WORKER_BATCH_SIZE="6",
            SPI_WORKER_LEASE_SECONDS="3",
        )
        first = WorkerProcess(env, log)
        wait_until(lambda: sandbox.stats()["accepted"] >= 4, timeout=30, what="first sends")
        first.kill()
        in_flight = _states(engine)[DeliveryState.sending]
        assert in_flight > 0, "the kill should land in the middle of a batch"

        second = WorkerProcess(env, log)
        wait_until(
            lambda: sum(_states(engine)[s] for s in FINAL_STATES) == people,
            timeout=45,
            what="every delivery to reach a final state",
        )
        assert second.terminate() == 0

        stats = sandbox.stats(detail=True)
    log.close()
    states = _states(engine)
    # No number received this round twice, counted at the receiving end.
    assert stats["max_per_recipient"] == 1
    assert set(stats["by_callback"].values()) == {1}
    assert set(states) <= {DeliveryState.accepted, DeliveryState.unknown}
    assert states[DeliveryState.unknown] <= in_flight
    assert states[DeliveryState.accepted] + states[DeliveryState.unknown] == people
    # Everything accepted was really taken by the fake; nothing taken is lost as queued.
    accepted_ids = {d.public_id for d in world.deliveries() if d.state == "accepted"}
    assert accepted_ids <= set(stats["by_callback"])


@pytest.mark.postgres_only
def test_two_workers_send_a_round_of_5000_exactly_once(
    engine: Engine, vault: PhoneVault, settings: Settings, tmp_path: Path
) -> None:
    if engine.dialect.name != "postgresql":
        pytest.skip("several workers share a queue only on PostgreSQL")
    people = 5000
    world = make_world(engine, vault, people=people)
    epoch = time.time()
    log = (tmp_path / "workers.log").open("wb")
    with sandbox_process(tmp_path) as sandbox:
        env = worker_env(
            settings,
            sandbox.url,
            epoch=epoch,
            SPI_SEND_CONCURRENCY="8",
            SPI_WORKER_BATCH_SIZE="200",
        )
        workers = [WorkerProcess(env, log), WorkerProcess(env, log)]
        wait_until(
            lambda: _states(engine)[DeliveryState.accepted] == people,
            timeout=90,
            what="the round to be sent",
        )
        assert [w.terminate() for w in workers] == [0, 0]
        stats = sandbox.stats(detail=True)
    log.close()
    # Both took part: each reports the requests it made when it stops.
    shares = worker_shares(tmp_path / "workers.log")
    assert len(shares) == 2
    assert min(shares) > 0
    assert sum(shares) == people
    assert stats["accepted"] == people
    assert stats["max_per_recipient"] == 1
    assert len(stats["by_callback"]) == people
    assert set(stats["by_callback"].values()) == {1}
    with session_scope(engine) as s:
        without_wamid = s.exec(select(Delivery.id).where(col(Delivery.wamid).is_(None))).all()
    assert without_wamid == []
    assert {d.public_id for d in world.deliveries()} == set(stats["by_callback"])


def test_worker_command_exits_cleanly_on_sigterm(settings: Settings, engine: Engine) -> None:
    env = {
        **os.environ,
        "SPI_DATABASE_URL": settings.resolved_database_url,
        "SPI_DATA_DIR": str(settings.data_dir),
        "SPI_ENCRYPTION_KEYS": settings.encryption_keys.get_secret_value(),
        "SPI_BLIND_INDEX_KEY": settings.blind_index_key.get_secret_value(),
        "SPI_SANDBOX_URL": "http://127.0.0.1:9",
        "SPI_WORKER_POLL_SECONDS": "0.1",
    }
    with subprocess.Popen(
        [str(Path(sys.executable).parent / "spi-reminder"), "worker"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    ) as process:
        assert process.stdout is not None
        line = b""
        deadline = time.monotonic() + 30
        while b"outbox.worker_started" not in line and time.monotonic() < deadline:
            line = process.stdout.readline()
        process.send_signal(signal.SIGTERM)
        rest, _ = process.communicate(timeout=30)
    assert process.returncode == 0
    assert b"outbox.worker_stopped" in rest
