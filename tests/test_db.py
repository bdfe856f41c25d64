"""Database helpers: reads that never queue behind a writer."""

import threading
import time

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlmodel import select

from app.auth.models import Role
from app.db import read_mostly_scope, read_scope, session_scope
from app.opds.models import Opd
from tests.factories import add_opd, add_token, bearer


def test_a_read_scope_does_not_wait_for_an_open_write_transaction(engine: Engine) -> None:
    add_opd(engine, "DINKES")
    seen: list[list[str]] = []

    def read() -> None:
        with read_scope(engine) as session:
            seen.append(list(session.exec(select(Opd.code)).all()))

    with session_scope(engine) as writer:
        writer.add(Opd(code="BARU", name="Baru", timezone="Asia/Jakarta"))
        writer.flush()  # the write transaction is open (on SQLite: it holds the write lock)
        reader = threading.Thread(target=read)
        reader.start()
        reader.join(timeout=5)
        assert not reader.is_alive(), "the read waited for the writer"
    assert seen == [["DINKES"]]  # the uncommitted row is not visible


def test_a_read_scope_writes_nothing(engine: Engine) -> None:
    with read_scope(engine) as session:
        session.add(Opd(code="HILANG", name="Hilang", timezone="Asia/Jakarta"))
        session.flush()
    with read_scope(engine) as session:
        assert session.exec(select(Opd.code)).all() == []


def test_a_read_mostly_scope_reads_past_a_writer_and_commits_its_own_write(
    engine: Engine,
) -> None:
    add_opd(engine, "DINKES")
    seen: list[list[str]] = []
    reading = threading.Event()

    def read_then_write() -> None:
        with read_mostly_scope(engine) as session:
            seen.append(list(session.exec(select(Opd.code)).all()))
            reading.set()
            # Waits for the open writer below, then is stored.
            session.add(Opd(code="AUDIT", name="Audit", timezone="Asia/Jakarta"))

    with session_scope(engine) as writer:
        writer.add(Opd(code="BARU", name="Baru", timezone="Asia/Jakarta"))
        writer.flush()  # the write transaction is open (on SQLite: it holds the write lock)
        other = threading.Thread(target=read_then_write)
        other.start()
        assert reading.wait(timeout=5), "the read waited for the writer"
    other.join(timeout=30)
    assert seen == [["DINKES"]]
    with read_scope(engine) as session:
        assert sorted(session.exec(select(Opd.code)).all()) == ["AUDIT", "BARU", "DINKES"]


def test_a_get_request_is_answered_while_a_write_transaction_is_open(
    engine: Engine, client: TestClient
) -> None:
    add_opd(engine, "DINKES")
    admin = add_token(engine, Role.admin)
    answers: list[int] = []

    def list_opds() -> None:
        answers.append(client.get("/api/v1/opds", headers=bearer(admin)).status_code)

    with session_scope(engine) as writer:
        writer.add(Opd(code="BARU", name="Baru", timezone="Asia/Jakarta"))
        writer.flush()
        reader = threading.Thread(target=list_opds)
        reader.start()
        reader.join(timeout=10)
        assert not reader.is_alive(), "the token lookup or the list waited for the writer"
    assert answers == [200]


def test_sqlite_writers_take_the_lock_in_turn(engine: Engine) -> None:
    if engine.dialect.name != "sqlite":
        pytest.skip("one write lock per database file is SQLite's")
    add_opd(engine, "DINKES")
    order: list[str] = []
    first_began = threading.Event()

    def hasty_writer() -> None:
        # Commits and begins again at once, like an import applying batch after batch.
        for n in range(20):
            with session_scope(engine) as session:
                session.add(Opd(code=f"B{n:02d}", name="Batch", timezone="Asia/Jakarta"))
                session.flush()
                first_began.set()
                time.sleep(0.05)
            order.append("batch")

    def one_write() -> None:
        with session_scope(engine) as session:
            session.add(Opd(code="HOOK", name="Webhook", timezone="Asia/Jakarta"))
        order.append("webhook")

    batches = threading.Thread(target=hasty_writer)
    batches.start()
    assert first_began.wait(timeout=10)
    one_write()
    batches.join(timeout=60)
    # Without a queue SQLite's busy handler, retrying every 100 ms, kept missing the gaps
    # between batches; in turn, the waiting write goes right after the batch it waited for.
    assert order.index("webhook") <= 2, order
