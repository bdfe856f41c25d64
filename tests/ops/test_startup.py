"""Safe start: migrations under an advisory lock, quiet readiness probes, docs without a CDN."""

import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine

from app import schema_migrations
from tests.conftest import _create_pg_database, _drop_pg_database
from tests.ops.test_cli_kindness import CLI, run_cli

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.postgres_only
def test_three_processes_migrating_an_empty_database_at_once_all_succeed(tmp_path: Path) -> None:
    url = _create_pg_database()
    try:
        env_url = {"SPI_DATABASE_URL": url}
        clean = {k: v for k, v in os.environ.items() if not k.startswith("SPI_")}
        procs = [
            subprocess.Popen(
                [CLI, "migrate"],
                cwd=tmp_path,
                env={**clean, **env_url},
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
            for _ in range(3)
        ]
        outputs = [p.communicate(timeout=120)[0] for p in procs]
        assert [p.returncode for p in procs] == [0, 0, 0], outputs
        assert not any("UniqueViolation" in out for out in outputs)
        engine = create_engine(url)
        try:
            assert schema_migrations.current_revision(engine) == schema_migrations.head_revision()
        finally:
            engine.dispose()
        assert run_cli("token", "list", cwd=tmp_path, **env_url).returncode == 0
    finally:
        _drop_pg_database(url)


def test_readyz_logs_nothing_when_ready(
    client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    client.get("/readyz")  # warm-up: the first probe may read the migration files
    caplog.clear()
    caplog.set_level(logging.DEBUG)
    for _ in range(3):
        assert client.get("/readyz").status_code == 200
    # httpx's lines are the test client's own requests, not the service's.
    service_lines = [r.getMessage() for r in caplog.records if r.name != "httpx"]
    assert service_lines == []


def test_docs_pages_load_every_asset_from_the_service(client: TestClient) -> None:
    for page in ("/docs", "/redoc"):
        html = client.get(page).text
        assert "cdn" not in html.lower(), page
        assert "googleapis" not in html, page
        assets = [part.split('"')[0] for part in html.split('="/docs-assets/')[1:]]
        assert assets, page
        for asset in assets:
            response = client.get(f"/docs-assets/{asset}")
            assert response.status_code == 200, asset
            assert len(response.content) > 1000, asset
    assert client.get("/openapi.json").json()["info"]["title"] == "Pengingat SPI"


def test_the_wheel_carries_the_migrations() -> None:
    """A non-editable install (the image) must still find every migration."""
    listing = subprocess.run(
        [
            sys.executable,
            "-c",
            "import setuptools; print(setuptools.find_namespace_packages("
            "include=['app*', 'migrations*']))",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "'migrations.versions'" in listing
