"""`spi-reminder purge [--dry-run]`."""

from typing import Annotated

import typer

from app.auth.principal import cli_principal
from app.config import get_settings
from app.db import make_engine, session_scope, utcnow
from app.logging_setup import configure_logging
from app.retention import service


def purge(
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="only report what would be purged")
    ] = False,
) -> None:
    """Purge finished campaigns past their retention period, and old audit events."""
    settings = get_settings()
    configure_logging(level=settings.log_level, json_lines=settings.log_json)
    if settings.resolved_database_url.startswith("sqlite"):
        settings.data_dir.mkdir(parents=True, exist_ok=True)
    engine = make_engine(settings.resolved_database_url, pool_size=2)
    try:
        with session_scope(engine) as session:
            report = service.purge_due(
                session,
                now=utcnow(),
                dry_run=dry_run,
                audit_retention_days=settings.audit_retention_days,
                actor=cli_principal(),
            )
    finally:
        engine.dispose()
    for c in report.campaigns:
        typer.echo(
            f"campaign {c.campaign_id} (ended {c.ended.isoformat()}): "
            f"deliveries {c.deliveries}, enrolments erased {c.enrolments_erased}"
        )
    typer.echo(report.summary())
