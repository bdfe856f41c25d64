"""Every shell example of README.md runs, in order, against a live `spi-reminder serve`.

The server is the embedded default (SQLite in a fresh data directory, the sandbox standing in for
Meta) on a free port, its clock set by SPI_CLOCK_AT inside an allowed send window (Monday
2 August 2027, 09:30 WIB), so the campaign examples can send. Each curl fails on an HTTP error
status (`--fail-with-body`) and each command must exit 0; shell variables (`export ADMIN=…`)
carry over from one command to the next as in a terminal.
"""

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.ops.readme_examples import Example, extract, for_test_server

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = extract(ROOT / "README.md")
CLOCK_AT = "2027-08-02T09:30:00+07:00"


@dataclass
class Terminal:
    """Where the examples run: the project-like directory, the environment and the port."""

    cwd: Path
    env: dict[str, str]
    port: int
    state: Path


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="module")
def terminal(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Terminal]:
    cwd = tmp_path_factory.mktemp("readme")
    # `.venv/bin/spi-reminder` as the README writes it, and `spi-reminder` on PATH.
    (cwd / ".venv").symlink_to(Path(sys.prefix))
    port = _free_port()
    env = {name: value for name, value in os.environ.items() if not name.startswith("SPI_")}
    env.update(
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
        SPI_DATA_DIR=str(cwd / "data"),
        SPI_PORT=str(port),
        SPI_HOST="127.0.0.1",
        SPI_CLOCK_AT=CLOCK_AT,
        SPI_LOG_LEVEL="WARNING",
    )
    log = (cwd / "serve.log").open("wb")
    server = subprocess.Popen(
        [str(Path(sys.executable).parent / "spi-reminder"), "serve"],
        cwd=cwd,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 90
        while True:
            assert server.poll() is None, (cwd / "serve.log").read_text()[-3000:]
            try:
                if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "serve did not become ready"
            time.sleep(0.3)
        state = cwd / "state.sh"
        state.write_text("")
        yield Terminal(cwd, env, port, state)
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        log.close()


@pytest.mark.parametrize("example", EXAMPLES, ids=[e.label for e in EXAMPLES])
def test_readme_example_runs(example: Example, terminal: Terminal) -> None:
    if example.skip_reason:
        pytest.skip(example.skip_reason)
    command = for_test_server(example.command, terminal.port)
    script = (
        f"set -o pipefail\nsource {terminal.state}\n{command}\n"
        f"status=$?\nexport -p > {terminal.state}\nexit $status\n"
    )
    done = subprocess.run(
        [shutil.which("bash") or "/bin/bash", "-c", script],
        cwd=terminal.cwd,
        env=terminal.env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, (
        f"{example.label} exited {done.returncode}\n$ {command}\n"
        f"--- stdout\n{done.stdout[-2000:]}\n--- stderr\n{done.stderr[-2000:]}"
    )


def test_every_command_of_a_sh_block_is_found() -> None:
    """The extractor sees multi-line commands whole and reads skip marks (guards the test above)."""
    commands = [e.command for e in EXAMPLES]
    assert sum(c.startswith("curl") for c in commands) >= 30
    multi_line = [c for c in commands if "\n" in c]
    assert multi_line
    assert all(c.count("curl") == 1 for c in multi_line if c.startswith("curl"))
    skipped = {e.skip_reason for e in EXAMPLES if e.skip_reason}
    assert any("Meta" in reason for reason in skipped)
