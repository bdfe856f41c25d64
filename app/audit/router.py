"""Read the audit trail (admin)."""

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import AwareDatetime, BaseModel, ConfigDict

from app.audit import service
from app.auth.dependencies import AdminDep
from app.db import SessionDep
from app.ids import DbId, Offset

router = APIRouter(prefix="/api/v1/audit", tags=["Audit"])


class AuditEventPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    at: datetime
    actor_token_id: int | None
    actor_name: str
    action: str
    object_type: str | None
    object_id: str | None
    outcome: str
    detail: dict[str, object] | None


@router.get("", response_model=list[AuditEventPublic])
def list_audit_events(
    session: SessionDep,
    _admin: AdminDep,
    since: AwareDatetime | None = None,
    until: AwareDatetime | None = None,
    actor_token_id: DbId | None = None,
    actor_name: str | None = None,
    action: str | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Offset = 0,
) -> list[AuditEventPublic]:
    """Audit events, newest first, filterable by time window, actor and action (admin)."""
    events = service.list_events(
        session,
        since=since,
        until=until,
        actor_token_id=actor_token_id,
        actor_name=actor_name,
        action=action,
        limit=limit,
        offset=offset,
    )
    return [AuditEventPublic.model_validate(e) for e in events]
