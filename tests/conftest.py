"""Shared fixtures: every database test runs on SQLite and on PostgreSQL.

SPI_TEST_REQUIRE=postgres[,browser] (set by .ci/run) turns a missing PostgreSQL or browser from a
skip into a failure.
"""

import os
import secrets
from collections.abc import Iterator

import pytest
from cryptography.fernet import Fernet
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine, create_engine, text
from sqlmodel import Session, SQLModel

import app.models  # noqa: F401
from app import schema_migrations
from app.config import Settings
from app.db import make_engine, session_scope
from app.main import create_app
from app.security import KeyMaterial, PhoneVault

# Rounds in tests about something else are created whole, as before the messaging limit: a
# round of a few hundred people would otherwise be spread over days (250 until Meta's limit is
# read). Worker subprocesses inherit it. tests/campaigns/test_limits.py sets the limit itself.
os.environ.setdefault("SPI_MESSAGING_LIMIT", "0")
REQUIRED = {p.strip() for p in os.environ.get("SPI_TEST_REQUIRE", "").split(",") if p.strip()}
PG_ADMIN_URL = os.environ.get(
    "SPI_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
EXTRA_TABLES = ["apscheduler_jobs"]  # tables outside SQLModel.metadata that tests empty too


def missing(part: str, reason: str) -> None:
    """Skip when an optional real part is absent, or fail when CI requires it."""
    if part in REQUIRED:
        pytest.fail(f"{part} is required (SPI_TEST_REQUIRE) but {reason}")
    pytest.skip(f"{part} not available: {reason}")


def _create_pg_database() -> str:
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    name = f"spi_test_{os.getpid()}_{secrets.token_hex(3)}"
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:
        missing("postgres", f"cannot reach {PG_ADMIN_URL.split('@')[-1]} ({type(exc).__name__})")
    finally:
        admin.dispose()
    return PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name


def _drop_pg_database(url: str) -> None:
    name = url.rsplit("/", 1)[1]
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def database_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """A migrated database of each kind, created once per test run."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('db') / 'test.db'}"
        schema_migrations.upgrade_to_head(url)
        yield url
        return
    url = _create_pg_database()
    try:
        schema_migrations.upgrade_to_head(url)
        yield url
    finally:
        _drop_pg_database(url)


@pytest.fixture
def empty_postgres() -> Iterator[str]:
    """A PostgreSQL database nobody has migrated yet (dropped afterwards)."""
    url = _create_pg_database()
    try:
        yield url
    finally:
        _drop_pg_database(url)


@pytest.fixture(scope="session")
def _engines() -> Iterator[dict[str, Engine]]:
    engines: dict[str, Engine] = {}
    yield engines
    for engine in engines.values():
        engine.dispose()


@pytest.fixture
def engine(database_url: str, _engines: dict[str, Engine]) -> Iterator[Engine]:
    """The test database's engine; every table is emptied after each test."""
    if database_url not in _engines:
        _engines[database_url] = make_engine(database_url)
    engine = _engines[database_url]
    yield engine
    tables = [t.name for t in reversed(SQLModel.metadata.sorted_tables)]
    with engine.begin() as conn:
        existing = set(conn.dialect.get_table_names(conn))
        names = [t for t in tables + EXTRA_TABLES if t in existing]
        if engine.dialect.name == "postgresql":
            conn.execute(text(f"TRUNCATE {', '.join(names)} RESTART IDENTITY CASCADE"))
        else:
            for name in names:
                conn.execute(text(f"DELETE FROM {name}"))


@pytest.fixture
def keys() -> KeyMaterial:
    """Fresh keys per test."""
    return KeyMaterial((Fernet.generate_key().decode(),), secrets.token_bytes(32).hex().encode())


@pytest.fixture
def settings(database_url: str, keys: KeyMaterial, tmp_path: os.PathLike[str]) -> Settings:
    """Settings pointing at the test database, with explicit keys."""
    return Settings(
        _env_file=None,  # type: ignore[call-arg]
        database_url=database_url,
        data_dir=tmp_path,
        encryption_keys=",".join(keys.encryption_keys),
        blind_index_key=keys.blind_index_key.decode(),
        institution_name="Pemerintah Kota Uji",
        scheduler_enabled=False,
        worker_enabled=False,
    )


@pytest.fixture
def vault(keys: KeyMaterial) -> PhoneVault:
    return PhoneVault(keys)


@pytest.fixture
def api(settings: Settings, engine: Engine) -> FastAPI:
    return create_app(settings, engine=engine)


@pytest.fixture
def client(api: FastAPI) -> Iterator[TestClient]:
    with TestClient(api) as c:
        yield c


@pytest.fixture
def session(engine: Engine) -> Iterator[Session]:
    """A session committed at the end of the test body (for arranging data)."""
    with session_scope(engine) as s:
        yield s
