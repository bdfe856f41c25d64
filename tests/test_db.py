"""Database helpers: reads that never queue behind a writer."""

import threading

from sqlalchemy import Engine
from sqlmodel import select

from app.db import read_scope, session_scope
from app.opds.models import Opd
from tests.factories import add_opd


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
