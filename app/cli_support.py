"""What every `spi-reminder` command needs: settings read once, kindly, and a short transaction."""

from collections.abc import Iterator
from contextlib import contextmanager

import typer
from pydantic import ValidationError
from sqlmodel import Session

from app.config import Settings, get_settings
from app.db import make_engine, session_scope
from app.logging_setup import configure_logging
from app.sandbox.identity import SandboxRefused, check_startup


def load_settings() -> Settings:
    """Settings from the environment, logging configured; a bad value is one line and exit 2."""
    try:
        settings = get_settings()
    except ValidationError as exc:
        # Name the variable and the rule, never the value: it may be a secret.
        for error in exc.errors():
            name = "SPI_" + "_".join(str(part) for part in error["loc"]).upper()
            typer.echo(f"configuration error: {name}: {error['msg']}", err=True)
        raise typer.Exit(code=2) from None
    configure_logging(level=settings.log_level, json_lines=settings.log_json)
    if settings.resolved_database_url.startswith("sqlite"):
        settings.data_dir.mkdir(parents=True, exist_ok=True)
    return settings


@contextmanager
def cli_session(settings: Settings) -> Iterator[Session]:
    """One transaction on a short-lived engine, disposed afterwards."""
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
