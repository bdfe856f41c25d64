"""Real processes for crash and scale tests: the standalone sandbox and worker processes."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

import httpx

from app.config import Settings
from app.sandbox.identity import SANDBOX_PHONE_NUMBER_ID
from tests.outbox.conftest import NOW

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
QUIET = ("--webhook-url", "")  # no service listens in these tests


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def wait_until(check: Callable[[], bool], *, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


class SandboxProcess:
    """`spi-reminder sandbox serve` on a free port, controlled over HTTP."""

    def __init__(self, tmp: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._log = (tmp / f"sandbox-{self.port}.log").open("wb")
        env = {**os.environ, "SPI_DATA_DIR": str(tmp / "sandbox-data"), "SPI_LOG_LEVEL": "WARNING"}
        env.pop("SPI_DATABASE_URL", None)
        self.process = subprocess.Popen(
            [str(BIN / "spi-reminder"), "sandbox", "serve", "--port", str(self.port), *QUIET],
            cwd=ROOT,
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        wait_until(self._up, timeout=30, what="the sandbox to listen")

    def _up(self) -> bool:
        try:
            return httpx.get(self.url + "/sandbox/stats", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    def stats(self, *, detail: bool = False) -> dict[str, Any]:
        query = "?detail=1" if detail else ""
        answer: dict[str, Any] = httpx.get(self.url + "/sandbox/stats" + query, timeout=10).json()
        return answer

    def warm_up(self) -> None:
        """Have the fake compile Meta's spec now, not while the first sends wait, then reset."""
        path = f"/v23.0/{SANDBOX_PHONE_NUMBER_ID}/messages"
        headers = {"Authorization": "Bearer warm-up"}
        httpx.post(self.url + path, json={"to": "+6281100000000"}, headers=headers, timeout=60)
        httpx.post(self.url + "/sandbox/reset", timeout=10).raise_for_status()

    def faults(self, **changes: Any) -> None:
        httpx.post(self.url + "/sandbox/faults", json=changes, timeout=5).raise_for_status()

    def close(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self._log.close()


@contextmanager
def sandbox_process(tmp: Path) -> Iterator[SandboxProcess]:
    sandbox = SandboxProcess(tmp)
    try:
        yield sandbox
    finally:
        sandbox.close()


def worker_env(
    settings: Settings, sandbox_url: str, *, epoch: float, **extra: str
) -> dict[str, str]:
    """Environment for a worker process on the test database and a standalone sandbox.

    Processes of one test must share `epoch`: their clocks then agree on lease times.
    """
    env = {
        **os.environ,
        "SPI_DATABASE_URL": settings.resolved_database_url,
        "SPI_DATA_DIR": str(settings.data_dir),
        "SPI_ENCRYPTION_KEYS": settings.encryption_keys.get_secret_value(),
        "SPI_BLIND_INDEX_KEY": settings.blind_index_key.get_secret_value(),
        "SPI_INSTITUTION_NAME": settings.institution_name,
        "SPI_SANDBOX_URL": sandbox_url,
        "SPI_TEST_CLOCK_AT": NOW.isoformat(),
        "SPI_TEST_CLOCK_EPOCH": repr(epoch),
        "SPI_WORKER_POLL_SECONDS": "0.1",
        "SPI_SEND_RATE_PER_SECOND": "0",
        **extra,
    }
    env.pop("SPI_WHATSAPP_ACCESS_TOKEN", None)
    return env


class WorkerProcess:
    """`python -m tests.outbox.worker_proc` (the worker with a test clock)."""

    def __init__(self, env: dict[str, str], log: IO[bytes]) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tests.outbox.worker_proc"],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def terminate(self) -> int:
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=30)


def worker_shares(log: Path) -> list[int]:
    """The requests each worker reports in its closing log line, one entry per worker."""
    return [
        int(line.rsplit("requests=", 1)[1])
        for line in log.read_text().splitlines()
        if "outbox.worker_stopped" in line
    ]
