"""Exactly one scheduler: the PostgreSQL advisory-lock election, in-process and across processes."""

import asyncio
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from app.campaigns.models import Campaign, CampaignState
from app.db import session_scope, utcnow
from app.scheduler.election import AdvisoryLock
from app.scheduler.runner import start_scheduler, stop_scheduler
from app.scheduler.setup import (
    EXPIRE_JOB_ID,
    FINISH_JOB_ID,
    PURGE_JOB_ID,
    SENDER_JOB_ID,
    SYNC_JOB_ID,
)
from app.templates.models import MessageTemplate
from tests.factories import add_opd

POLL = 0.1
LOCK_APP_NAME = "spi-reminder scheduler lock"


def postgres_only(engine: Engine) -> None:
    if engine.dialect.name != "postgresql":
        pytest.skip("the advisory-lock election exists on PostgreSQL only")


def stored_job_ids(engine: Engine) -> set[str]:
    with engine.connect() as conn:
        return set(conn.execute(text("SELECT id FROM apscheduler_jobs")).scalars())


async def eventually(check: Callable[[], bool], *, within: float = 5.0) -> None:
    deadline = time.monotonic() + within
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"not true within {within}s")
        await asyncio.sleep(0.05)


@pytest.mark.postgres_only
def test_only_one_session_holds_the_advisory_lock(engine: Engine) -> None:
    postgres_only(engine)
    first, second = AdvisoryLock(engine), AdvisoryLock(engine)
    try:
        assert first.try_acquire() is True
        assert second.try_acquire() is False
        assert first.still_held() is True
        assert second.still_held() is False
        first.release()
        assert first.still_held() is False
        assert second.try_acquire() is True
        assert second.still_held() is True
    finally:
        first.release()
        second.release()


def test_the_runner_leads_syncs_at_once_and_lets_go(engine: Engine) -> None:
    add_opd(engine, "DINKES", tz="Asia/Jakarta")
    today = utcnow().date()
    with session_scope(engine) as s:
        template = MessageTemplate(name="pengingat", body="Pengingat SPI.", status="APPROVED")
        s.add(template)
        s.flush()
        assert template.id is not None
        campaign = Campaign(
            name="SPI",
            spi_year=today.year,
            first_day=today - timedelta(days=1),
            last_day=today + timedelta(days=60),
            template_id=template.id,
            state=CampaignState.active,
        )
        s.add(campaign)
        s.flush()
        round_job = f"round:{campaign.id}:Asia/Jakarta"
    rival = AdvisoryLock(engine) if engine.dialect.name == "postgresql" else None

    async def scenario() -> None:
        handle = await start_scheduler(engine, poll_seconds=POLL)
        try:
            assert handle.is_leader
            assert handle.last_heartbeat is not None
            housekeeping = {SYNC_JOB_ID, FINISH_JOB_ID, PURGE_JOB_ID, SENDER_JOB_ID, EXPIRE_JOB_ID}
            assert stored_job_ids(engine) == housekeeping | {round_job}
            if rival is not None:
                assert rival.try_acquire() is False
            beat = handle.last_heartbeat
            await eventually(lambda: handle.last_heartbeat != beat)
        finally:
            await stop_scheduler(handle)
        assert not handle.is_leader
        assert handle.scheduler is None
        if rival is not None:
            assert rival.try_acquire() is True

    try:
        asyncio.run(scenario())
    finally:
        if rival is not None:
            rival.release()


@pytest.mark.postgres_only
def test_the_leader_steps_down_when_its_lock_connection_dies(
    engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    postgres_only(engine)
    caplog.set_level(logging.INFO, logger="app.scheduler")

    def lock_backends() -> list[int]:
        with engine.connect() as conn:
            return list(
                conn.execute(
                    text(
                        "SELECT pid FROM pg_stat_activity WHERE application_name = :name"
                        " AND datname = current_database()"
                    ),
                    {"name": LOCK_APP_NAME},
                ).scalars()
            )

    async def scenario() -> None:
        handle = await start_scheduler(engine, poll_seconds=POLL)
        try:
            assert handle.is_leader
            (pid,) = lock_backends()
            with engine.connect() as conn:
                conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
            await eventually(lambda: "scheduler.lock_lost" in caplog.text)
            assert "scheduler.stopped" in caplog.text  # the scheduler went down with the lock
            # The lock is free again, so this process is elected anew on a new connection.
            await eventually(lambda: handle.is_leader and handle.scheduler is not None)
            assert lock_backends() not in ([], [pid])
        finally:
            await stop_scheduler(handle)

    asyncio.run(scenario())


def wait_for_log(path: Path, *needles: str, within: float) -> str | None:
    """The first of the needles to appear in the log within the time, if any."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        content = path.read_text(encoding="utf-8", errors="replace")
        for needle in needles:
            if needle in content:
                return needle
        time.sleep(0.1)
    return None


@pytest.fixture
def scheduler_processes(
    database_url: str, tmp_path: Path
) -> Iterator[Callable[[str], tuple[subprocess.Popen[bytes], Path]]]:
    """Start `python -m app.scheduler.commands` processes; all are killed afterwards."""
    started: list[subprocess.Popen[bytes]] = []
    env = {
        **os.environ,
        "SPI_DATABASE_URL": database_url,
        "SPI_DATA_DIR": str(tmp_path),
        "SPI_LOG_LEVEL": "INFO",
        "PYTHONUNBUFFERED": "1",
    }

    def start(name: str) -> tuple[subprocess.Popen[bytes], Path]:
        log = tmp_path / f"{name}.log"
        with log.open("wb") as out:
            proc = subprocess.Popen(
                [sys.executable, "-m", "app.scheduler.commands", "--poll-seconds", str(POLL)],
                cwd=tmp_path,  # away from the project's .env
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        started.append(proc)
        return proc, log

    yield start
    for proc in started:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=10)


@pytest.mark.postgres_only
def test_two_scheduler_processes_one_leads_and_the_other_takes_over(
    engine: Engine,
    scheduler_processes: Callable[[str], tuple[subprocess.Popen[bytes], Path]],
) -> None:
    postgres_only(engine)
    procs = dict(a=scheduler_processes("a"), b=scheduler_processes("b"))
    for name, (_, log) in procs.items():
        found = wait_for_log(log, "scheduler.leader", "scheduler.standby", within=10)
        assert found, f"{name} neither led nor stood by:\n{log.read_text()}"
    leaders = [n for n, (_, log) in procs.items() if "scheduler.leader" in log.read_text()]
    assert len(leaders) == 1, {n: log.read_text() for n, (_, log) in procs.items()}
    (leader,) = leaders
    (standby,) = set(procs) - {leader}
    assert "scheduler.standby" in procs[standby][1].read_text()

    procs[leader][0].send_signal(signal.SIGKILL)
    procs[leader][0].wait(timeout=5)
    standby_proc, standby_log = procs[standby]
    assert wait_for_log(standby_log, "scheduler.started", within=8), standby_log.read_text()

    standby_proc.send_signal(signal.SIGTERM)
    assert standby_proc.wait(timeout=10) == 0
    assert "scheduler.exit" in standby_log.read_text()
    # The graceful stop released the lock.
    lock = AdvisoryLock(engine)
    try:
        assert lock.try_acquire() is True
    finally:
        lock.release()
