"""Settings: every one documented, read from the environment or .env, refused when invalid."""

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from app.cli import cli
from app.config import Settings, get_settings
from app.messaging import runtime
from app.outbox.worker import WorkerConfig
from app.sandbox.mount import sandbox_faults

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Path]:
    """No SPI_ variables from the outside; the working directory is an empty folder."""
    import os

    for name in list(os.environ):
        if name.startswith("SPI_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    get_settings.cache_clear()
    yield tmp_path
    get_settings.cache_clear()


def test_every_setting_is_in_env_example_and_the_readme() -> None:
    example = (ROOT / ".env.example").read_text()
    readme = (ROOT / "README.md").read_text()
    for name in Settings.model_fields:
        variable = f"SPI_{name.upper()}"
        assert re.search(rf"^(# )?{variable}=", example, re.MULTILINE), variable
        assert f"`{variable}`" in readme, variable


def test_sending_worker_and_sandbox_settings_come_from_a_dotenv_file(clean_env: Path) -> None:
    (clean_env / ".env").write_text(
        "SPI_SEND_RATE_PER_SECOND=7\n"
        "SPI_SEND_CONCURRENCY=3\n"
        "SPI_GRAPH_READ_TIMEOUT_SECONDS=9\n"
        "SPI_WORKER_BATCH_SIZE=11\n"
        "SPI_WORKER_MAX_ATTEMPTS=4\n"
        "SPI_SANDBOX_LATENCY_MS=25\n"
    )
    settings = Settings()
    limiter, concurrency, timeout = runtime._limits(settings)
    assert limiter.rate == 7
    assert concurrency == 3
    assert timeout.read == 9
    config = WorkerConfig.from_settings(settings)
    assert (config.batch_size, config.max_attempts) == (11, 4)
    assert config.lease_seconds == 120  # the documented default
    assert sandbox_faults(settings).latency_ms == 25


def test_sandbox_webhook_url_tells_unset_from_empty(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert Settings().sandbox_webhook_url is None
    monkeypatch.setenv("SPI_SANDBOX_WEBHOOK_URL", "")
    assert Settings().sandbox_webhook_url == ""


def test_an_invalid_setting_stops_the_cli_with_its_name_and_not_its_value(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SPI_SEND_CONCURRENCY", "0")
    monkeypatch.setenv("SPI_SANDBOX_ERROR_RATE", "1.5")
    monkeypatch.setenv("SPI_WORKER_BATCH_SIZE", "banyak-sekali")
    result = CliRunner().invoke(cli, ["migrate"])
    assert result.exit_code == 2
    assert "configuration error: SPI_SEND_CONCURRENCY" in result.output
    assert "configuration error: SPI_SANDBOX_ERROR_RATE" in result.output
    assert "configuration error: SPI_WORKER_BATCH_SIZE" in result.output
    assert "banyak-sekali" not in result.output
    assert "Traceback" not in result.output
