"""What every `spi-reminder` command needs: settings read once, kindly, and a short transaction.

An operator reads these messages, so they are in Bahasa Indonesia and one line each: a missing,
unreachable or unmigrated database is never a traceback.
"""

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import typer
from pydantic import ValidationError
from sqlalchemy import make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session

from app import schema_migrations
from app.config import Settings, get_settings
from app.db import make_engine, session_scope
from app.logging_setup import configure_logging
from app.sandbox.identity import SandboxRefused, check_startup

MIGRATE_HINT = "jalankan `spi-reminder migrate`"


def fail(message: str) -> None:
    """One line on stderr, exit 2."""
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code=2)


def report_invalid_settings(exc: ValidationError) -> None:
    """Name each invalid variable and the rule it breaks, never the value: it may be a secret."""
    for error in exc.errors():
        name = "SPI_" + "_".join(str(part) for part in error["loc"]).upper()
        message = error["msg"].removeprefix("Value error, ")
        typer.echo(f"configuration error: {name}: {message}", err=True)


def load_settings() -> Settings:
    """Settings from the environment, logging configured; a bad value is one line and exit 2."""
    try:
        settings = get_settings()
    except ValidationError as exc:
        report_invalid_settings(exc)
        raise typer.Exit(code=2) from None
    configure_logging(level=settings.log_level, json_lines=settings.log_json)
    return settings


def describe_database(settings: Settings) -> str:
    """The database a command uses, without its password."""
    url = settings.resolved_database_url
    if url.startswith("sqlite"):
        return f"SQLite {sqlite_path(settings)}"
    return make_url(url).render_as_string(hide_password=True)


def sqlite_path(settings: Settings) -> Path:
    """The embedded database file (only meaningful without SPI_DATABASE_URL)."""
    database = make_url(settings.resolved_database_url).database or ""
    return Path(database).absolute()


def migrate_database(settings: Settings) -> None:
    """Apply pending migrations (serve, migrate, worker and scheduler on PostgreSQL)."""
    if settings.resolved_database_url.startswith("sqlite"):
        sqlite_path(settings).parent.mkdir(parents=True, exist_ok=True)
    try:
        schema_migrations.upgrade_to_head(settings.resolved_database_url)
    except SQLAlchemyError as exc:
        fail(f"migrasi gagal pada {describe_database(settings)}: {type(exc).__name__}")


def require_current_schema(settings: Settings) -> None:
    """Exit with one line unless the database exists, answers and is at the newest migration."""
    where = describe_database(settings)
    if settings.resolved_database_url.startswith("sqlite") and not sqlite_path(settings).exists():
        fail(
            f"database belum ada ({where}; SPI_DATA_DIR={settings.data_dir}): {MIGRATE_HINT} "
            "di sini, atau atur SPI_DATA_DIR/SPI_DATABASE_URL ke database yang ada"
        )
    engine = make_engine(settings.resolved_database_url, pool_size=1)
    try:
        current = schema_migrations.current_revision(engine)
    except SQLAlchemyError as exc:
        fail(f"database tidak dapat dihubungi ({where}): {type(exc).__name__}")
    finally:
        engine.dispose()
    head = schema_migrations.head_revision()
    if current != head:
        state = f"revisi {current}" if current else "kosong"
        fail(f"database belum dimigrasi ({where}: {state}, kode butuh {head}): {MIGRATE_HINT}")


def prepare_schema(settings: Settings) -> None:
    """For long-running processes: on PostgreSQL migrate (under the lock, so replicas, workers
    and schedulers may all start at once on an empty database); on SQLite, where `serve` owns
    the file, require it current."""
    if settings.resolved_database_url.startswith("postgresql"):
        migrate_database(settings)
    else:
        require_current_schema(settings)


@contextmanager
def cli_session(settings: Settings) -> Iterator[Session]:
    """One transaction on a short-lived engine, disposed afterwards; the schema checked first."""
    require_current_schema(settings)
    engine = make_engine(settings.resolved_database_url, pool_size=2)
    try:
        with session_scope(engine) as session:
            yield session
    finally:
        engine.dispose()


def exit_unless_allowed(settings: Settings, *, standalone: bool = False) -> None:
    """Exit with one line saying what to set when production would run the sandbox unasked."""
    try:
        check_startup(settings, standalone=standalone)
    except SandboxRefused as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(code=2) from None
