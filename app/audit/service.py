"""Write and read the audit trail."""

from collections.abc import Sequence
from datetime import datetime
from typing import Protocol

from sqlalchemy import delete
from sqlmodel import Session, col, select

from app.audit.models import AuditEvent
from app.auth.principal import Principal


class Identified(Protocol):
    """A table row with an integer primary key `id` (set once the row is flushed)."""

    @property
    def id(self) -> int | None: ...


def record(
    session: Session,
    *,
    actor: Principal,
    action: str,
    object_type: str | None = None,
    object_id: str | int | None = None,
    outcome: str = "ok",
    detail: dict[str, object] | None = None,
) -> None:
    """Append one audit event in the caller's transaction; never pass numbers or labels."""
    session.add(
        AuditEvent(
            actor_token_id=actor.token_id,
            actor_name=actor.name,
            action=action,
            object_type=object_type,
            object_id=None if object_id is None else str(object_id),
            outcome=outcome,
            detail=detail,
        )
    )


def save_and_record(
    session: Session,
    *,
    actor: Principal,
    row: Identified,
    action: str,
    object_type: str,
    detail: dict[str, object],
) -> None:
    """Flush a new or changed row, then append its audit event (the row has its id by then)."""
    session.add(row)
    session.flush()
    record(
        session,
        actor=actor,
        action=action,
        object_type=object_type,
        object_id=row.id,
        detail=detail,
    )


def list_events(
    session: Session,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    actor_token_id: int | None = None,
    actor_name: str | None = None,
    action: str | None = None,
    limit: int = 100,
    offset: int = 0,
) -> Sequence[AuditEvent]:
    """Audit events, newest first, filtered by time window and actor."""
    stmt = select(AuditEvent)
    if since is not None:
        stmt = stmt.where(col(AuditEvent.at) >= since)
    if until is not None:
        stmt = stmt.where(col(AuditEvent.at) < until)
    if actor_token_id is not None:
        stmt = stmt.where(AuditEvent.actor_token_id == actor_token_id)
    if actor_name is not None:
        stmt = stmt.where(AuditEvent.actor_name == actor_name)
    if action is not None:
        stmt = stmt.where(AuditEvent.action == action)
    stmt = stmt.order_by(col(AuditEvent.at).desc(), col(AuditEvent.id).desc())
    return session.exec(stmt.offset(offset).limit(limit)).all()


def purge_older_than(session: Session, *, cutoff: datetime) -> int:
    """Delete audit events past their retention; returns how many went."""
    result = session.execute(delete(AuditEvent).where(col(AuditEvent.at) < cutoff))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]
