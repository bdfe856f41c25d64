"""For routers: keep an audit record of a refused change, which the request would roll back."""

from collections.abc import Iterator
from contextlib import contextmanager

from sqlmodel import Session

from app.audit import service as audit_service
from app.auth.principal import Principal
from app.errors import AppError


@contextmanager
def audited_refusal(
    session: Session,
    actor: Principal,
    action: str,
    *,
    object_type: str,
    object_id: str | int | None,
) -> Iterator[None]:
    """Roll back a refused attempt, commit only its audit row, and re-raise the error.

    It commits, so it belongs to routers, which own the request's transaction.
    """
    try:
        yield
    except AppError as exc:
        session.rollback()
        audit_service.record(
            session,
            actor=actor,
            action=action,
            object_type=object_type,
            object_id=object_id,
            outcome="refused",
            detail={"reason": exc.code},
        )
        session.commit()
        raise
