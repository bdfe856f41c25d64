"""Message templates: register, read, change and delete them; the seed examples.

This module is the package's face for other domains: besides the CRUD steps it offers
`usable_problem` (may a campaign use this template) and `body_parameters` (the values that fill
{{1}}..{{n}} for a campaign). Findings and acknowledgements live in
`app.templates.acknowledgements`, parameters and previews in `app.templates.parameters`, the
sync from Meta in `app.templates.sync`.
"""

from importlib import resources
from typing import Any

import yaml
from sqlalchemy import func
from sqlmodel import Session, col, select

from app.audit import service as audit_service
from app.auth.principal import Principal
from app.campaigns.models import Campaign
from app.errors import Conflict, Invalid, NotFound
from app.templates.acknowledgements import (
    USABLE_STATUSES,
    acknowledgement_for,
    compute_findings,
    current_findings,
    refuse_links,
)
from app.templates.acknowledgements import usable_problem as usable_problem
from app.templates.models import MessageTemplate, TemplateStatus
from app.templates.parameters import body_parameters as body_parameters
from app.templates.parameters import validate_parameters
from app.templates.rendering import placeholder_count
from app.templates.schemas import FindingPublic, TemplatePublic
from app.templates.store import find, save_and_audit

MARKETING_WARNING = (
    "category MARKETING: WhatsApp users can block marketing messages from a business, and Meta "
    "may limit their delivery; reminders should be registered as UTILITY"
)
_SEED_FILE = "seed_templates.yaml"


def template_warnings(template: MessageTemplate) -> list[str]:
    """Advisory notes for operators (English; not shown to employees)."""
    warnings: list[str] = []
    if template.category.upper() == "MARKETING":
        warnings.append(MARKETING_WARNING)
    return warnings


# --- reading --------------------------------------------------------------------------------


def get(session: Session, *, template_id: int) -> MessageTemplate:
    """One template by id, or 404."""
    template = session.get(MessageTemplate, template_id)
    if template is None:
        raise NotFound("no such template", code="template_not_found")
    return template


def list_templates(session: Session) -> list[MessageTemplate]:
    """All templates by name and language."""
    stmt = select(MessageTemplate).order_by(
        col(MessageTemplate.name), col(MessageTemplate.language)
    )
    return list(session.exec(stmt).all())


def to_public(template: MessageTemplate) -> TemplatePublic:
    """The API view: findings with positions and acknowledgements, usability, warnings."""
    assert template.id is not None
    findings: list[FindingPublic] = []
    for index, f in enumerate(current_findings(template)):
        ack = acknowledgement_for(template, f) if f["family"] != "link" else None
        findings.append(
            FindingPublic(
                index=index,
                family=f["family"],
                term=f["term"],
                start=f["start"],
                end=f["end"],
                matched=f["matched"],
                refused=f["family"] == "link",
                acknowledged=ack is not None,
                acknowledged_by=ack.get("by") if ack else None,
                acknowledged_at=ack.get("at") if ack else None,
                acknowledgement_reason=ack.get("reason") if ack else None,
            )
        )
    try:
        placeholders: int | None = placeholder_count(template.body)
    except ValueError:
        placeholders = None
    problem = usable_problem(template)
    return TemplatePublic(
        id=template.id,
        name=template.name,
        language=template.language,
        category=template.category,
        status=template.status,
        source=template.source,
        body=template.body,
        placeholders=placeholders,
        parameters=list(template.parameters or []),
        findings=findings,
        usable=problem is None,
        usable_problem=problem,
        warnings=template_warnings(template),
        meta_template_id=template.meta_template_id,
        created_at=template.created_at,
        updated_at=template.updated_at,
    )


# --- writing --------------------------------------------------------------------------------


def register(
    session: Session,
    *,
    actor: Principal,
    name: str,
    language: str,
    category: str,
    body: str,
    parameters: list[Any],
    status: str = TemplateStatus.sandbox.value,
) -> MessageTemplate:
    """Register a template by hand; links are refused, other findings await acknowledgement."""
    if status not in USABLE_STATUSES:
        raise Invalid(
            "a template registered by hand is SANDBOX, or APPROVED when it mirrors a template "
            "Meta approved",
            code="template_status_invalid",
        )
    findings = refuse_links(body)
    specs = validate_parameters(body, parameters)
    if find(session, name=name, language=language) is not None:
        raise Conflict(
            f"a template named {name!r} in language {language!r} already exists",
            code="template_exists",
        )
    template = MessageTemplate(
        name=name,
        language=language,
        category=category,
        body=body,
        status=status,
        source="manual",
        parameters=specs,
        findings=findings,
        acknowledgements=[],
    )
    save_and_audit(
        session,
        actor=actor,
        template=template,
        action="template.create",
        detail={
            "name": name,
            "language": language,
            "category": category,
            "status": status,
            "findings": len(findings),
        },
        touch=False,
    )
    return template


def update(
    session: Session,
    *,
    actor: Principal,
    template: MessageTemplate,
    body: str | None = None,
    parameters: list[Any] | None = None,
    category: str | None = None,
) -> MessageTemplate:
    """Change a template. Body and category only on hand-registered templates (Meta owns a
    synced one's text); parameters on any. A changed body clears every acknowledgement."""
    if template.source != "manual" and (body is not None or category is not None):
        raise Conflict(
            "the body and category of a template synced from Meta come from Meta; change them "
            "there and run `spi-reminder templates sync`",
            code="template_from_meta",
        )
    new_body = body if body is not None else template.body
    changed: list[str] = []
    if body is not None and body != template.body:
        template.findings = refuse_links(new_body)
        template.acknowledgements = []
        template.body = new_body
        changed.append("body")
    if parameters is not None:
        template.parameters = validate_parameters(new_body, parameters)
        changed.append("parameters")
    elif "body" in changed:
        validate_parameters(new_body, list(template.parameters or []))
    if category is not None and category != template.category:
        template.category = category
        changed.append("category")
    template.findings = compute_findings(template.body)
    save_and_audit(
        session,
        actor=actor,
        template=template,
        action="template.update",
        detail={
            "changed": changed,
            "findings": len(template.findings),
            "acknowledgements_cleared": "body" in changed,
        },
    )
    return template


def campaigns_using(session: Session, *, template_id: int) -> int:
    """How many campaigns (in any state) refer to this template."""
    stmt = select(func.count()).select_from(Campaign).where(Campaign.template_id == template_id)
    return int(session.exec(stmt).one())


def delete(session: Session, *, actor: Principal, template: MessageTemplate) -> None:
    """Delete a template no campaign uses; 409 otherwise."""
    assert template.id is not None
    used = campaigns_using(session, template_id=template.id)
    if used:
        raise Conflict(
            f"{used} campaign(s) use this template; it cannot be deleted",
            code="template_in_use",
        )
    detail = {"name": template.name, "language": template.language, "source": template.source}
    template_id = template.id
    session.delete(template)
    session.flush()
    audit_service.record(
        session,
        actor=actor,
        action="template.delete",
        object_type="template",
        object_id=template_id,
        detail=dict(detail),
    )


# --- seed -----------------------------------------------------------------------------------


def seed_definitions() -> list[dict[str, Any]]:
    """The neutral example templates shipped in seed_templates.yaml."""
    text = resources.files("app.templates").joinpath(_SEED_FILE).read_text(encoding="utf-8")
    data = yaml.safe_load(text)
    return list(data["templates"])


def ensure_seed_templates(session: Session, *, actor: Principal) -> int:
    """Add the seed templates as SANDBOX (skipping name+language already present); how many."""
    added = 0
    for item in seed_definitions():
        name = str(item["name"])
        language = str(item.get("language", "id"))
        if find(session, name=name, language=language) is not None:
            continue
        body = str(item["body"])
        template = MessageTemplate(
            name=name,
            language=language,
            category=str(item.get("category", "UTILITY")),
            body=body,
            status=TemplateStatus.sandbox.value,
            source="manual",
            parameters=validate_parameters(body, list(item.get("parameters", []))),
            findings=refuse_links(body),
            acknowledgements=[],
        )
        save_and_audit(
            session,
            actor=actor,
            template=template,
            action="template.seed",
            detail={"name": name, "language": language, "findings": len(template.findings)},
            touch=False,
        )
        added += 1
    return added
