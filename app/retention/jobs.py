"""The daily retention job: one purge in its own transaction."""

import logging
from datetime import datetime

from sqlalchemy import Engine

from app.db import session_scope, utcnow
from app.retention import service
from app.retention.service import PurgeReport

logger = logging.getLogger(__name__)


def run(
    engine: Engine,
    *,
    audit_retention_days: int,
    now: datetime | None = None,
    dry_run: bool = False,
) -> PurgeReport:
    """Purge what is due on `engine` (committed unless dry_run) and log the counts."""
    with session_scope(engine) as session:
        report = service.purge_due(
            session,
            now=now or utcnow(),
            dry_run=dry_run,
            audit_retention_days=audit_retention_days,
        )
    if report.campaigns or report.audit_events or report.sessions:
        logger.info("retention.%s", report.summary())
    return report
