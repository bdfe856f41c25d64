"""Fixtures shared by the enrolment tests."""

from collections.abc import Iterator

import pytest

from app.config import Settings, get_settings


@pytest.fixture
def cli_env(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The CLI's environment, pointing at the test database and keys."""
    monkeypatch.setenv("SPI_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("SPI_ENCRYPTION_KEYS", settings.encryption_keys.get_secret_value())
    monkeypatch.setenv("SPI_BLIND_INDEX_KEY", settings.blind_index_key.get_secret_value())
    monkeypatch.setenv("SPI_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("SPI_LOG_JSON", "false")
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()
