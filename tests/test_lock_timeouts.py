"""A database lock not granted in time is a 503 with Retry-After, never a 500, on both databases."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.exc import OperationalError

from app import db_sqlite
from app.auth.models import Role
from app.config import Settings
from app.db import make_engine
from app.errors import RETRY_AFTER_SECONDS, is_lock_timeout
from app.main import create_app
from tests.factories import add_token, bearer

NEW_OPD = {"code": "BARU", "name": "Dinas Baru", "timezone": "Asia/Jakarta"}


@contextmanager
def impatient_engine(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> Iterator[Engine]:
    """An engine on the test database that gives up waiting for a lock after 0.3 s."""
    if engine.dialect.name == "sqlite":
        monkeypatch.setattr(db_sqlite, "BUSY_TIMEOUT_SECONDS", 0.3)
        impatient = make_engine(engine.url.render_as_string(hide_password=False))
    else:
        impatient = create_engine(
            engine.url.render_as_string(hide_password=False),
            connect_args={"options": "-c lock_timeout=300"},
        )
    try:
        yield impatient
    finally:
        impatient.dispose()


@contextmanager
def held_lock(engine: Engine) -> Iterator[None]:
    """Another process's long write: SQLite's write lock, or an exclusive lock on `opd`."""
    if engine.dialect.name == "sqlite":
        other = sqlite3.connect(str(engine.url.database), isolation_level=None)
        other.execute("BEGIN IMMEDIATE")
        try:
            yield
        finally:
            other.rollback()
            other.close()
        return
    with engine.connect() as other:
        other.execute(text("LOCK TABLE opd IN ACCESS EXCLUSIVE MODE"))
        yield
        other.rollback()


def test_a_write_that_cannot_get_its_lock_is_503_with_retry_after(
    engine: Engine, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    admin = add_token(engine, Role.admin)
    with (
        impatient_engine(engine, monkeypatch) as impatient,
        TestClient(create_app(settings, engine=impatient)) as client,
    ):
        with held_lock(engine):
            busy = client.post("/api/v1/opds", json=NEW_OPD, headers=bearer(admin))
        assert busy.status_code == 503, busy.text
        assert busy.headers["Retry-After"] == str(RETRY_AFTER_SECONDS)
        assert busy.json()["error"]["code"] == "busy"
        # Sent again once the lock is free, the same request goes through.
        again = client.post("/api/v1/opds", json=NEW_OPD, headers=bearer(admin))
        assert again.status_code == 201, again.text


def test_only_lock_errors_count_as_lock_timeouts() -> None:
    locked = OperationalError("INSERT", {}, sqlite3.OperationalError("database is locked"))
    missing = OperationalError("SELECT", {}, sqlite3.OperationalError("no such table: opd"))
    assert is_lock_timeout(locked)
    assert not is_lock_timeout(missing)
    assert not is_lock_timeout(ValueError("database is locked"))
