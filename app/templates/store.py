"""Finding a template row, and saving one together with its audit record."""

from typing import Any

from sqlmodel import Session, select

from app.audit import service as audit_service
from app.auth.principal import Principal
from app.db import utcnow
from app.templates.models import MessageTemplate


def find(session: Session, *, name: str, language: str) -> MessageTemplate | None:
    """The template with this name and language, if any."""
    stmt = select(MessageTemplate).where(
        MessageTemplate.name == name, MessageTemplate.language == language
    )
    return session.exec(stmt).first()


def save_and_audit(
    session: Session,
    *,
    actor: Principal,
    template: MessageTemplate,
    action: str,
    detail: dict[str, Any],
    touch: bool = True,
) -> None:
    """Flush the template (stamping updated_at when `touch`) and audit the change."""
    if touch:
        template.updated_at = utcnow()
    audit_service.save_and_record(
        session,
        actor=actor,
        row=template,
        action=action,
        object_type="template",
        detail=detail,
    )
