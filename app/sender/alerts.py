"""Alerts an admin must see about the sender: logged, counted, and kept until resolved.

Raised only when a notice or reading changed something, so a notice Meta repeats raises
nothing new. The text is in Bahasa Indonesia: it is shown as is on the dashboard.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime

from sqlmodel import Session, col, select

from app.audit import service as audit_service
from app.auth.principal import Principal
from app.errors import Conflict, NotFound
from app.sender import metrics
from app.sender.models import SenderAlert

logger = logging.getLogger(__name__)

# The fixed vocabulary of alert kinds (also the metric's label values).
LIMIT_DOWNGRADE = "limit_downgrade"
QUALITY_FLAGGED = "quality_flagged"
QUALITY_LOW = "quality_low"
ACCOUNT_RESTRICTED = "account_restricted"
ACCOUNT_DISABLED = "account_disabled"
ACCOUNT_VIOLATION = "account_violation"
TEMPLATE_STOPPED = "template_stopped"  # paused, disabled or rejected by Meta
TEMPLATE_RECATEGORISED = "template_recategorised"
TEMPLATE_QUALITY_LOW = "template_quality_low"
KINDS = (
    LIMIT_DOWNGRADE,
    QUALITY_FLAGGED,
    QUALITY_LOW,
    ACCOUNT_RESTRICTED,
    ACCOUNT_DISABLED,
    ACCOUNT_VIOLATION,
    TEMPLATE_STOPPED,
    TEMPLATE_RECATEGORISED,
    TEMPLATE_QUALITY_LOW,
)


def raise_alert(
    session: Session,
    *,
    kind: str,
    message: str,
    event_at: datetime,
    subject: str | None = None,
) -> SenderAlert:
    """Record an open alert, log it and count it."""
    if kind not in KINDS:
        raise ValueError(f"unknown alert kind {kind!r}")
    alert = SenderAlert(kind=kind, subject=subject, message=message, event_at=event_at)
    session.add(alert)
    session.flush()
    metrics.ALERTS.labels(kind).inc()
    logger.warning("sender.alert kind=%s subject=%s id=%s", kind, subject, alert.id)
    return alert


def open_alerts(session: Session) -> Sequence[SenderAlert]:
    """Alerts no admin has resolved yet, newest first."""
    stmt = (
        select(SenderAlert)
        .where(col(SenderAlert.resolved_at).is_(None))
        .order_by(col(SenderAlert.raised_at).desc(), col(SenderAlert.id).desc())
    )
    return session.exec(stmt).all()


def recent_alerts(session: Session, *, limit: int = 50) -> Sequence[SenderAlert]:
    """The latest alerts, open or resolved, newest first."""
    stmt = select(SenderAlert).order_by(col(SenderAlert.id).desc()).limit(limit)
    return session.exec(stmt).all()


def resolve_alert(
    session: Session, *, actor: Principal, alert_id: int, now: datetime
) -> SenderAlert:
    """Mark an alert as seen and dealt with (audited); 404 or 409 when it cannot be."""
    alert = session.get(SenderAlert, alert_id)
    if alert is None:
        raise NotFound("no such alert", code="alert_not_found")
    if alert.resolved_at is not None:
        raise Conflict("the alert is already resolved", code="alert_resolved")
    alert.resolved_at = now
    alert.resolved_by = actor.name[:80]
    audit_service.save_and_record(
        session,
        actor=actor,
        row=alert,
        action="sender.alert_resolve",
        object_type="sender_alert",
        detail={"kind": alert.kind, "subject": alert.subject},
    )
    return alert
