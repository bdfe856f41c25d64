"""The production shape as real processes on one empty PostgreSQL database (deploy/compose.yaml):
two API replicas and two schedulers (`serve`, started at the same instant), two workers, one
standalone sandbox standing in for Meta."""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import time
from pathlib import Path

import httpx
import pytest
from cryptography.fernet import Fernet
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import func
from sqlmodel import col, select

from app.config import Settings
from app.db import make_engine, session_scope
from app.outbox.models import Delivery, DeliveryState
from app.security import KeyMaterial, PhoneVault
from tests.outbox.conftest import make_world
from tests.outbox.processes import (
    BIN,
    ROOT,
    WorkerProcess,
    free_port,
    sandbox_process,
    wait_until,
    worker_env,
)

pytestmark = pytest.mark.postgres_only

PEOPLE = 2000
# Generous for a loaded 2-core machine; on a quiet one the whole test takes well under a minute.
START_TIMEOUT = 120
SEND_TIMEOUT = 120


class Serve:
    """`spi-reminder serve` on a free loopback port, its output in a log file."""

    def __init__(self, name: str, env: dict[str, str], tmp: Path) -> None:
        self.name = name
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = tmp / f"{name}.log"
        self._log = self.log_path.open("wb")
        self.process = subprocess.Popen(
            [str(BIN / "spi-reminder"), "serve", "--host", "127.0.0.1", "--port", str(self.port)],
            cwd=ROOT,
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

    def ready(self) -> bool:
        if self.process.poll() is not None:
            raise AssertionError(f"{self.name} exited {self.process.returncode}:\n{self.tail()}")
        try:
            return httpx.get(self.url + "/readyz", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def leads(self) -> bool:
        """spi_scheduler_leader on /metrics (loopback may read it without a token)."""
        text = httpx.get(self.url + "/metrics", timeout=10).text
        for family in text_string_to_metric_families(text):
            if family.name == "spi_scheduler_leader":
                return family.samples[0].value == 1
        raise AssertionError(f"{self.name}: no spi_scheduler_leader")

    def tail(self) -> str:
        if not self._log.closed:
            self._log.flush()
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-30:])

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)
        self._log.close()

    def terminate(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=40)
        finally:
            self._log.close()


def _settings(url: str, tmp: Path) -> Settings:
    keys = KeyMaterial((Fernet.generate_key().decode(),), secrets.token_bytes(32).hex().encode())
    return Settings(
        _env_file=None,
        database_url=url,
        data_dir=tmp / "data",
        encryption_keys=keys.encryption_keys[0],
        blind_index_key=keys.blind_index_key.decode(),
        institution_name="Pemerintah Kota Uji",
    )


def _serve_env(settings: Settings, sandbox_url: str, *, scheduler: bool) -> dict[str, str]:
    env = {
        **os.environ,
        "SPI_DATABASE_URL": settings.resolved_database_url,
        "SPI_DATA_DIR": str(settings.data_dir),
        "SPI_ENCRYPTION_KEYS": settings.encryption_keys.get_secret_value(),
        "SPI_BLIND_INDEX_KEY": settings.blind_index_key.get_secret_value(),
        "SPI_SANDBOX_URL": sandbox_url,
        "SPI_SCHEDULER_ENABLED": "true" if scheduler else "false",
        "SPI_WORKER_ENABLED": "false",
        "SPI_METRICS_TOKEN": "",
    }
    env.pop("SPI_WHATSAPP_ACCESS_TOKEN", None)
    return env


def _states(settings: Settings) -> dict[str, int]:
    engine = make_engine(settings.resolved_database_url, pool_size=1)
    try:
        with session_scope(engine) as s:
            rows = s.exec(select(Delivery.state, func.count()).group_by(col(Delivery.state))).all()
    finally:
        engine.dispose()
    return {state: n for state, n in rows}


def test_the_production_shape_starts_together_sends_once_and_fails_over(
    empty_postgres: str, tmp_path: Path
) -> None:
    settings = _settings(empty_postgres, tmp_path)
    serves: list[Serve] = []
    workers: list[WorkerProcess] = []
    log = (tmp_path / "workers.log").open("wb")
    try:
        with sandbox_process(tmp_path) as sandbox:
            # All four `serve` processes at the same instant on the empty database.
            for name, scheduler in (
                ("api-1", False),
                ("api-2", False),
                ("scheduler-1", True),
                ("scheduler-2", True),
            ):
                env = _serve_env(settings, sandbox.url, scheduler=scheduler)
                serves.append(Serve(name, env, tmp_path))
            api_1, api_2, scheduler_1, scheduler_2 = serves
            wait_until(
                lambda: all(s.ready() for s in serves),
                timeout=START_TIMEOUT,
                what="every replica to be ready",
            )

            # Exactly one scheduler leads; the API replicas never do.
            assert [s.leads() for s in serves].count(True) == 1
            assert not api_1.leads()
            assert not api_2.leads()
            leader, standby = (
                (scheduler_1, scheduler_2) if scheduler_1.leads() else (scheduler_2, scheduler_1)
            )

            # A round to 2,000 people, sent by two workers through the sandbox.
            engine = make_engine(settings.resolved_database_url, pool_size=2)
            try:
                vault = PhoneVault(
                    KeyMaterial(
                        (settings.encryption_keys.get_secret_value(),),
                        settings.blind_index_key.get_secret_value().encode(),
                    )
                )
                make_world(engine, vault, people=PEOPLE)
            finally:
                engine.dispose()
            env = worker_env(
                settings,
                sandbox.url,
                epoch=time.time(),
                SPI_SEND_CONCURRENCY="8",
                SPI_WORKER_BATCH_SIZE="200",
            )
            workers = [WorkerProcess(env, log), WorkerProcess(env, log)]
            wait_until(
                lambda: _states(settings).get(DeliveryState.accepted, 0) == PEOPLE,
                timeout=SEND_TIMEOUT,
                what="the round to be sent",
            )
            stats = sandbox.stats(detail=True)
            assert stats["accepted"] == PEOPLE
            assert stats["max_per_recipient"] == 1
            assert len(stats["by_callback"]) == PEOPLE

            # The leader dies without a word; the stand-by takes over.
            leader.kill()
            wait_until(standby.leads, timeout=60, what="the stand-by to take over")
            assert not api_1.leads()
            assert not api_2.leads()

            # SIGTERM everything: each process exits cleanly, nothing is left in flight.
            assert [w.terminate() for w in workers] == [0, 0]
            workers = []
            # uvicorn re-raises SIGTERM after a graceful shutdown (systemd counts that as clean).
            for serve in serves:
                if serve is leader:
                    continue
                assert serve.terminate() in (0, -signal.SIGTERM), serve.tail()
                assert "Application shutdown complete" in serve.tail(), serve.tail()
            assert sandbox.stats()["accepted"] == PEOPLE  # nothing sent twice afterwards
        states = _states(settings)
        assert states.get(DeliveryState.sending, 0) == 0
        assert states == {DeliveryState.accepted: PEOPLE}
    finally:
        log.close()
        for worker in workers:
            if worker.process.poll() is None:
                worker.kill()
        for serve in serves:
            serve.kill()  # a no-op for those already stopped; closes every log
