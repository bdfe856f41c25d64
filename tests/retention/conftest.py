"""The app with the statistics and /metrics routes included (until app.main wires them)."""

import pytest
from fastapi import FastAPI
from sqlalchemy import Engine

from app.config import Settings
from app.main import create_app
from app.stats import service as stats_service
from tests.stats.helpers import with_stats_routes


@pytest.fixture
def api(settings: Settings, engine: Engine) -> FastAPI:
    return with_stats_routes(create_app(settings, engine=engine))


@pytest.fixture(autouse=True)
def _fresh_stats_cache() -> None:
    """Database ids restart in every test: no cached figure may outlive its test."""
    stats_service.clear_cache()
