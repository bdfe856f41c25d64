"""Engine, the request-scoped session, and column helpers shared by every model."""

from collections.abc import Collection, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import Depends, Request
from sqlalchemy import (
    ARRAY,
    ColumnElement,
    DateTime,
    Engine,
    String,
    any_,
    bindparam,
    create_engine,
    event,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import IntegrityError
from sqlalchemy.types import TypeDecorator, TypeEngine
from sqlmodel import Session, SQLModel

SQLModel.metadata.naming_convention = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


_READ_ONLY = "spi_read_only"


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
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            # WAL lets the API read while the worker writes; busy_timeout waits instead of failing.
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.execute("PRAGMA synchronous=NORMAL")
            # The default 2 MB page cache thrashes on the random public-id index when a round
            # inserts hundreds of thousands of deliveries; 16 MB per connection is bounded.
            cur.execute("PRAGMA cache_size=-16384")
            cur.close()
            # pysqlite's own transaction handling breaks SAVEPOINT; SQLAlchemy's documented fix
            # is to let SQLAlchemy emit BEGIN itself.
            dbapi_conn.isolation_level = None

        @event.listens_for(engine, "begin")
        def _sqlite_begin(conn: Any) -> None:
            if conn.get_execution_options().get(_READ_ONLY):
                # A plain read: with WAL it never waits for a writer (see read_scope).
                conn.exec_driver_sql("BEGIN")
                return
            # IMMEDIATE takes the write lock up front, so a read-then-write transaction waits
            # (busy_timeout) instead of failing with SQLITE_BUSY_SNAPSHOT under concurrency.
            conn.exec_driver_sql("BEGIN IMMEDIATE")

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


@contextmanager
def read_scope(engine: Engine) -> Iterator[Session]:
    """A session for reads only, rolled back at the end.

    On SQLite it does not take the write lock that every other transaction takes up front, so
    frequent small reads (the worker's opt-out re-read) never queue behind a long import.
    """
    with (
        engine.connect().execution_options(**{_READ_ONLY: True}) as conn,
        Session(bind=conn) as session,
    ):
        try:
            yield session
        finally:
            session.rollback()


def get_session(request: Request) -> Iterator[Session]:
    """The request's session; committed before the response is sent."""
    with session_scope(request.app.state.engine) as session:
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
