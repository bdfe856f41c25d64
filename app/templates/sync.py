"""Sync templates from Meta: Meta owns a synced template's status, category and body."""

from dataclasses import dataclass, field
from typing import Any

from sqlmodel import Session, select

from app.auth.principal import Principal
from app.db import utcnow
from app.messaging.client import TemplateInfo
from app.templates.acknowledgements import compute_findings
from app.templates.lifecycle import stamp_read
from app.templates.models import MessageTemplate
from app.templates.store import find, save_and_audit

MISSING_STATUS = "DELETED"


@dataclass
class SyncSummary:
    """What a sync changed, by template name (``name/language``)."""

    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)

    def line(self) -> str:
        """One line for the CLI."""
        return (
            f"created {len(self.created)}, updated {len(self.updated)}, "
            f"unchanged {len(self.unchanged)}, no longer listed {len(self.missing)}, "
            f"skipped {len(self.skipped)}"
        )


def sync_from_meta(
    session: Session, *, templates: list[TemplateInfo], actor: Principal
) -> SyncSummary:
    """Upsert Meta's templates by (name, language), keeping Meta's status and body.

    Findings are recomputed; acknowledgements are cleared when the body changed. Parameter
    mappings are kept (Meta does not know them). Synced templates Meta no longer lists are
    marked DELETED, so no campaign can use them. A listed template without a body is skipped.
    """
    summary = SyncSummary()
    seen: set[tuple[str, str]] = set()
    # Meta's notices older than this reading must not undo what it says.
    read_at = utcnow()
    for info in templates:
        name, language = info["name"].strip(), info["language"].strip()
        label = f"{name}/{language}"
        body = info.get("body")
        if not name or not language or not body or (name, language) in seen:
            summary.skipped.append(label)
            continue
        seen.add((name, language))
        status = (info["status"] or "UNKNOWN").strip().upper()[:16]
        category = (info["category"] or "UTILITY").strip().upper()[:20]
        existing = find(session, name=name, language=language)
        if existing is None:
            template = MessageTemplate(
                name=name,
                language=language,
                category=category,
                body=body,
                status=status,
                source="meta",
                parameters=[],
                findings=compute_findings(body),
                acknowledgements=[],
            )
            summary.created.append(label)
            _save_synced(session, actor, template, change="created", before=None)
            stamp_read(session, template=template, at=read_at)
            continue
        before = {
            "status": existing.status,
            "category": existing.category,
            "source": existing.source,
            "body_changed": existing.body != body,
        }
        if (
            existing.status == status
            and existing.category == category
            and existing.source == "meta"
            and existing.body == body
        ):
            existing.findings = compute_findings(body)
            session.add(existing)
            stamp_read(session, template=existing, at=read_at)
            summary.unchanged.append(label)
            continue
        if existing.body != body:
            existing.body = body
            existing.acknowledgements = []
        existing.findings = compute_findings(body)
        existing.status = status
        existing.category = category
        existing.source = "meta"
        summary.updated.append(label)
        _save_synced(session, actor, existing, change="updated", before=before)
        stamp_read(session, template=existing, at=read_at)
    stale = select(MessageTemplate).where(
        MessageTemplate.source == "meta", MessageTemplate.status != MISSING_STATUS
    )
    for template in session.exec(stale).all():
        if (template.name, template.language) in seen:
            continue
        before = {"status": template.status}
        template.status = MISSING_STATUS
        summary.missing.append(f"{template.name}/{template.language}")
        _save_synced(session, actor, template, change="missing", before=before)
    return summary


def _save_synced(
    session: Session,
    actor: Principal,
    template: MessageTemplate,
    *,
    change: str,
    before: dict[str, Any] | None,
) -> None:
    detail: dict[str, Any] = {
        "change": change,
        "name": template.name,
        "language": template.language,
        "status": template.status,
        "findings": len(template.findings or []),
    }
    if before is not None:
        detail["before"] = before
    # A new row keeps the updated_at it was created with.
    save_and_audit(
        session,
        actor=actor,
        template=template,
        action="template.sync",
        detail=detail,
        touch=change != "created",
    )
