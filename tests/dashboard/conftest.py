"""A live server and a real headless Chromium (Debian's package) for browser tests."""

import os
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn
from fastapi import FastAPI

from tests.conftest import missing

CHROMIUM_CANDIDATES = ("/usr/bin/chromium", "/usr/bin/chromium-browser")
# The machine's network is closed: background services would only fail to connect.
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]
OUTPUT_DIR = Path(os.environ.get("SPI_TEST_OUTPUT", "test-output"))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def live_server(api: FastAPI) -> Iterator[str]:
    """The app served by uvicorn on a free loopback port, for the browser."""
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(api, host="127.0.0.1", port=port, log_config=None))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline:
            pytest.fail("live server did not start")
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)


@pytest.fixture
def chromium_path() -> str:
    """Debian's Chromium; skipped (or failed, under SPI_TEST_REQUIRE=browser) if absent."""
    for candidate in (os.environ.get("SPI_CHROMIUM", ""), *CHROMIUM_CANDIDATES):
        if candidate and shutil.which(candidate):
            return candidate
    missing("browser", "no Chromium at /usr/bin/chromium (apt-get install chromium)")
    raise AssertionError("unreachable")


@pytest.fixture
def screenshot_dir() -> Path:
    OUTPUT_DIR.mkdir(parents=True, exist_ok=True)
    return OUTPUT_DIR
