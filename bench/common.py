"""What every benchmark shares: a throw-away PostgreSQL database per run."""

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import create_engine, text

PG_ADMIN_URL = os.environ.get(
    "SPI_BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)


def create_pg_database() -> str | None:
    """A fresh, empty PostgreSQL database, or None (said on stdout) when unreachable."""
    name = f"spi_bench_{secrets.token_hex(4)}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:
        print(f"postgresql: skipped, cannot reach {PG_ADMIN_URL.split('@')[-1]} ({exc!r:.120})")
        return None
    finally:
        admin.dispose()
    return PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name


def drop_pg_database(url: str) -> None:
    """Drop a database made by create_pg_database."""
    name = url.rsplit("/", 1)[1]
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        admin.dispose()


@contextmanager
def fresh_database(database: str, sqlite_file: Path) -> Iterator[str | None]:
    """The URL of an empty database of this kind, dropped afterwards if PostgreSQL.

    Yields None (said on stdout) when PostgreSQL is unreachable; SQLite uses `sqlite_file`.
    """
    if database == "sqlite":
        yield f"sqlite:///{sqlite_file}"
        return
    if database != "postgresql":
        raise ValueError(f"unknown database {database!r}")
    url = create_pg_database()
    try:
        yield url
    finally:
        if url is not None:
            drop_pg_database(url)
