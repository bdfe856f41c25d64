"""Engine, the request-scoped session, and column helpers shared by every model."""

from collections.abc import Collection, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import Depends, Request
from sqlalchemy import (
    ARRAY,
    ColumnElement,
    Connection,
    DateTime,
    Engine,
    String,
    any_,
    bindparam,
    create_engine,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import IntegrityError
from sqlalchemy.types import TypeDecorator, TypeEngine
from sqlmodel import Session, SQLModel

from app import db_sqlite

SQLModel.metadata.naming_convention = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


_DEFERRED = db_sqlite.DEFERRED


def utcnow() -> datetime:
    """The current time, timezone-aware in UTC."""
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Stores UTC and always hands back aware datetimes, also on SQLite."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def make_engine(url: str, *, pool_size: int = 10) -> Engine:
    """An engine tuned for the embedded SQLite file or for PostgreSQL."""
    if url.startswith("sqlite"):
        connect_args = {
            "check_same_thread": False,
            "timeout": db_sqlite.BUSY_TIMEOUT_SECONDS,
            "factory": db_sqlite.QueuedConnection,
        }
        engine = create_engine(url, connect_args=connect_args)
        db_sqlite.configure(engine)
        return engine
    return create_engine(url, pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True)


@contextmanager
def session_scope(engine: Engine) -> Iterator[Session]:
    """A session that commits on success and rolls back on error (CLI and jobs)."""
    with Session(engine, expire_on_commit=False) as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise


def _deferred_connection(engine: Engine) -> Connection:
    return engine.connect().execution_options(**{_DEFERRED: True})


def deferred_writes(engine: Engine) -> Engine:
    """The same engine, whose transactions take SQLite's write lock only at their first write.

    For code that is not ours to give a session (APScheduler's job store polls on the event
    loop; most of its transactions only read).
    """
    return engine.execution_options(**{_DEFERRED: True})


def begin_reads(session: Session) -> None:
    """Commit the session's transaction and begin its next one for reads.

    On SQLite the next transaction takes the write lock only at a first write (as in
    read_mostly_scope), so long work that only reads keeps no writer waiting.
    """
    session.commit()
    session.connection(execution_options={_DEFERRED: True})


@contextmanager
def read_scope(engine: Engine) -> Iterator[Session]:
    """A session for reads only, rolled back at the end.

    On SQLite it does not take the write lock that every other transaction takes up front, so
    frequent small reads (the worker's opt-out re-read) never queue behind a writer.
    """
    with _deferred_connection(engine) as conn, Session(bind=conn) as session:
        try:
            yield session
        finally:
            session.rollback()


@contextmanager
def read_mostly_scope(engine: Engine) -> Iterator[Session]:
    """A session that commits like session_scope but, on SQLite, reads without the write lock.

    It takes the lock only at its first write (an audit record of an export, say), so reads
    (pages, lists, statistics) never queue behind a writer. Only for work whose reads need not
    be in the same snapshot as its writes: claims and budgets keep session_scope.
    """
    with (
        _deferred_connection(engine) as conn,
        Session(bind=conn, expire_on_commit=False) as session,
    ):
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise


# Requests that by HTTP's rules change nothing; their few writes take the lock when they come.
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def get_session(request: Request) -> Iterator[Session]:
    """The request's session; committed before the response is sent."""
    engine = request.app.state.engine
    scope = read_mostly_scope if request.method in _SAFE_METHODS else session_scope
    with scope(engine) as session:
        yield session


# scope="function": the commit happens before the response leaves, so a 200 means it is stored.
SessionDep = Annotated[Session, Depends(get_session, scope="function")]


def is_postgresql(session: Session) -> bool:
    """Whether the session talks to PostgreSQL (else the embedded SQLite)."""
    return session.get_bind().dialect.name == "postgresql"


def increment_counter(
    session: Session, table: Any, *, keys: dict[str, Any], amount: int = 1
) -> None:
    """Add `amount` to a counter row identified by `keys`, creating it if absent (atomic upsert)."""
    if amount == 0:
        return
    if is_postgresql(session):
        from sqlalchemy.dialects.postgresql import insert as dialect_insert
    else:
        from sqlalchemy.dialects.sqlite import insert as dialect_insert  # type: ignore[assignment]
    tbl = table.__table__
    stmt = dialect_insert(tbl).values(**keys, count=amount)
    stmt = stmt.on_conflict_do_update(
        index_elements=list(keys), set_={"count": tbl.c.count + stmt.excluded.count}
    )
    session.execute(stmt)


def one_of(
    session: Session,
    column: Any,
    values: Collection[Any],
    *,
    item_type: TypeEngine[Any] | None = None,
) -> ColumnElement[bool]:
    """`column IN values`, sent to PostgreSQL as one array parameter (of strings by default).

    A long IN list is one placeholder per value that both SQLAlchemy and psycopg rewrite on every
    call; `= ANY(array)` is a single parameter and the same prepared statement each time.
    """
    if is_postgresql(session):
        array = bindparam(None, list(values), type_=ARRAY(item_type or String()))
        return column == any_(array)
    return column.in_(values)


def copy_rows(session: Session, table: Any, rows: list[dict[str, Any]]) -> None:
    """Bulk-insert plain rows: COPY on PostgreSQL, executemany elsewhere.

    COPY skips per-row statement execution on the server and SQLAlchemy's per-row parameter
    processing on the client; values must already be what the column stores (aware datetimes).
    A constraint violation raises IntegrityError either way, so callers can fall back.
    """
    if not rows:
        return
    if not is_postgresql(session):
        session.execute(table.insert(), rows)
        return
    # Only PostgreSQL deployments load the driver.
    import psycopg
    from psycopg import sql

    columns = list(rows[0])
    statement = sql.SQL("COPY {} ({}) FROM STDIN").format(
        sql.Identifier(table.name), sql.SQL(", ").join(map(sql.Identifier, columns))
    )
    raw: psycopg.Connection[Any] = session.connection().connection.driver_connection  # type: ignore[assignment]
    try:
        with raw.cursor() as cur, cur.copy(statement) as copy:
            for row in rows:
                copy.write_row([row[name] for name in columns])
    except psycopg.errors.IntegrityError as exc:
        raise IntegrityError(f"COPY {table.name}", None, exc) from exc
