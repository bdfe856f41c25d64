"""Message templates: registration, neutrality findings and their acknowledgement, rendering.

A template is usable by a campaign only when its status is APPROVED or SANDBOX, its body has no
link finding (refused outright, product invariant 7), every other finding was acknowledged by an
admin with a reason (audited), and it has exactly one parameter mapping per ``{{n}}``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date
from importlib import resources
from typing import Any

import yaml
from pydantic import TypeAdapter, ValidationError
from sqlalchemy import func
from sqlmodel import Session, col, select

from app.audit import service as audit_service
from app.auth.principal import Principal
from app.campaigns.models import Campaign
from app.config import Settings
from app.db import utcnow
from app.errors import Conflict, Invalid, NotFound
from app.messaging.client import TemplateInfo
from app.templates.models import MessageTemplate, TemplateStatus
from app.templates.neutrality import Finding, check_text
from app.templates.rendering import format_date_id, placeholder_count, render_body
from app.templates.schemas import (
    CAMPAIGN_FIELDS,
    FindingPublic,
    ParameterSpec,
    TemplatePreview,
    TemplatePublic,
)

USABLE_STATUSES = frozenset({TemplateStatus.approved.value, TemplateStatus.sandbox.value})
MARKETING_WARNING = (
    "category MARKETING: WhatsApp users can block marketing messages from a business, and Meta "
    "may limit their delivery; reminders should be registered as UTILITY"
)
_SEED_FILE = "seed_templates.yaml"
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_PARAMETERS = TypeAdapter(list[ParameterSpec])
# What a sample preview shows for a campaign field it cannot know without a campaign.
SAMPLE_FIRST_DAY = (8, 1)
SAMPLE_LAST_DAY = (10, 31)


class LinkRefused(Invalid):
    """A 422 for a body with links; the body of the error lists every link with its position."""

    code = "template_contains_link"

    def __init__(self, message: str, *, links: list[dict[str, Any]]) -> None:
        super().__init__(message)
        self.links = links

    def to_body(self) -> dict[str, Any]:
        body = super().to_body()
        body["error"]["findings"] = self.links
        return body


# --- findings and acknowledgements ----------------------------------------------------------


def _finding_dict(f: Finding) -> dict[str, Any]:
    return {
        "family": f.family,
        "term": f.term,
        "start": f.start,
        "end": f.end,
        "matched": f.matched,
    }


def compute_findings(body: str) -> list[dict[str, Any]]:
    """The neutrality findings of a body, as stored on the template (ordered by position)."""
    return [_finding_dict(f) for f in check_text(body).findings]


def _same_finding(a: dict[str, Any], b: dict[str, Any]) -> bool:
    return all(a.get(k) == b.get(k) for k in ("family", "term", "start", "end"))


def _acknowledgement_for(
    template: MessageTemplate, finding: dict[str, Any]
) -> dict[str, Any] | None:
    for ack in template.acknowledgements or []:
        if _same_finding(ack, finding):
            return ack
    return None


def current_findings(template: MessageTemplate) -> list[dict[str, Any]]:
    """Findings recomputed from the body now, so a changed term list takes effect at once."""
    return compute_findings(template.body)


def _placeholder_problem(template: MessageTemplate) -> str | None:
    try:
        count = placeholder_count(template.body)
    except ValueError as exc:
        return f"the body's placeholders are malformed: {exc}"
    if count != len(template.parameters or []):
        return (
            f"the body has {count} placeholder(s) but {len(template.parameters or [])} "
            "parameter mapping(s); set one parameter per placeholder"
        )
    return None


def usable_problem(template: MessageTemplate) -> str | None:
    """None if a campaign may use this template, otherwise the reason in plain English."""
    if template.status not in USABLE_STATUSES:
        return (
            f"template status is {template.status}; only APPROVED (or SANDBOX) templates "
            "can be used"
        )
    findings = current_findings(template)
    links = [f for f in findings if f["family"] == "link"]
    if links:
        shown = ", ".join(f"{f['matched']!r} at {f['start']}" for f in links)
        return f"the body contains a link ({shown}); templates with links are refused outright"
    open_findings = [
        (i, f)
        for i, f in enumerate(findings)
        if f["family"] != "link" and _acknowledgement_for(template, f) is None
    ]
    if open_findings:
        shown = ", ".join(
            f"#{i} {f['family']} {f['matched']!r} at {f['start']}" for i, f in open_findings
        )
        return f"{len(open_findings)} neutrality finding(s) not acknowledged by an admin: {shown}"
    return _placeholder_problem(template)


# --- parameters and rendering ---------------------------------------------------------------


def _as_date(value: Any) -> date | None:
    if isinstance(value, date):
        return value
    if isinstance(value, str) and _ISO_DATE.fullmatch(value.strip()):
        try:
            return date.fromisoformat(value.strip())
        except ValueError:
            return None
    return None


def _format_value(raw: Any, *, fmt: str | None, position: int) -> str:
    as_date = _as_date(raw)
    if fmt == "date_id" and as_date is None:
        raise Invalid(
            f"value for {{{{{position}}}}} must be a date (YYYY-MM-DD) to format it as a date",
            code="template_parameter_invalid",
        )
    # Dates always read the Indonesian way ("31 Oktober 2026"), formatted or not.
    if as_date is not None:
        return format_date_id(as_date)
    return str(raw)


def _campaign_value(key: str, *, campaign: Campaign, position: int) -> Any:
    if key == "window_start":
        return campaign.first_day
    if key == "window_end":
        return campaign.last_day
    if key == "spi_year":
        return campaign.spi_year
    if key == "campaign_name":
        return campaign.name
    values = campaign.parameter_values or {}
    value = values.get(key)
    if value is None or (isinstance(value, str) and not value.strip()):
        raise Invalid(
            f"campaign has no value for template parameter {key!r} (placeholder "
            f"{{{{{position}}}}}); set parameter_values.{key}",
            code="template_parameter_missing",
        )
    return value


def _check_values(template: MessageTemplate, values: list[str]) -> list[str]:
    """Values must fit Meta's rules and carry no link or flagged wording of their own."""
    try:
        render_body(template.body, values)
    except ValueError as exc:
        raise Invalid(
            f"template {template.name!r}: {exc}", code="template_parameter_invalid"
        ) from exc
    for position, value in enumerate(values, start=1):
        report = check_text(value)
        if report.findings:
            f = report.findings[0]
            raise Invalid(
                f"value for {{{{{position}}}}} contains {f.family} wording {f.matched!r}; "
                "parameter values cannot be acknowledged, so they must be neutral",
                code="template_parameter_not_neutral",
            )
    return values


def body_parameters(
    template: MessageTemplate, *, campaign: Campaign, settings: Settings
) -> list[str]:
    """The values for {{1}}..{{n}} in order, for this campaign; Invalid if one is missing."""
    values: list[str] = []
    for position, spec in enumerate(template.parameters or [], start=1):
        source = spec.get("source")
        fmt = spec.get("format")
        raw: Any
        if source == "setting":
            key = spec.get("key")
            if key != "institution_name":
                raise Invalid(
                    f"template parameter {{{{{position}}}}} reads unknown setting {key!r}",
                    code="template_parameter_invalid",
                )
            raw = settings.institution_name
            if not raw.strip():
                raise Invalid(
                    "the institution name is not configured (SPI_INSTITUTION_NAME)",
                    code="template_parameter_missing",
                )
        elif source == "campaign":
            raw = _campaign_value(str(spec.get("key", "")), campaign=campaign, position=position)
        elif source == "fixed":
            raw = spec.get("value")
            if raw is None or not str(raw).strip():
                raise Invalid(
                    f"fixed template parameter {{{{{position}}}}} has no value",
                    code="template_parameter_missing",
                )
        else:
            raise Invalid(
                f"template parameter {{{{{position}}}}} has unknown source {source!r}",
                code="template_parameter_invalid",
            )
        values.append(_format_value(raw, fmt=fmt, position=position))
    return _check_values(template, values)


def render_for_campaign(
    template: MessageTemplate, *, campaign: Campaign, settings: Settings
) -> str:
    """The message exactly as the employee reads it for this campaign."""
    values = body_parameters(template, campaign=campaign, settings=settings)
    return render_body(template.body, values)


def sample_campaign(*, year: int | None = None) -> Campaign:
    """A stand-in campaign for previews without one: 1 August – 31 October of this year."""
    year = year or utcnow().year
    return Campaign(
        name=f"SPI {year}",
        spi_year=year,
        first_day=date(year, *SAMPLE_FIRST_DAY),
        last_day=date(year, *SAMPLE_LAST_DAY),
        template_id=0,
        parameter_values={},
    )


def sample_parameters(template: MessageTemplate, *, settings: Settings) -> list[str]:
    """Preview values without a campaign: the sample window (1 August – 31 October of this
    year), the configured institution name, fixed values, and ``[key]`` for any other
    campaign value (a date-formatted one shows the sample closing date)."""
    campaign = sample_campaign()
    campaign.parameter_values = {
        str(spec["key"]): (
            campaign.last_day.isoformat() if spec.get("format") == "date_id" else f"[{spec['key']}]"
        )
        for spec in template.parameters or []
        if spec.get("source") == "campaign" and spec.get("key") not in CAMPAIGN_FIELDS
    }
    return body_parameters(template, campaign=campaign, settings=settings)


def preview(
    session: Session, *, template: MessageTemplate, campaign_id: int | None, settings: Settings
) -> TemplatePreview:
    """The message as an employee would read it, for a campaign or with sample values."""
    if campaign_id is None:
        values = sample_parameters(template, settings=settings)
    else:
        campaign = session.get(Campaign, campaign_id)
        if campaign is None:
            raise NotFound("no such campaign", code="campaign_not_found")
        values = body_parameters(template, campaign=campaign, settings=settings)
    problem = usable_problem(template)
    assert template.id is not None
    return TemplatePreview(
        template_id=template.id,
        campaign_id=campaign_id,
        sample=campaign_id is None,
        parameters=values,
        text=render_body(template.body, values),
        usable=problem is None,
        usable_problem=problem,
    )


# --- validation -----------------------------------------------------------------------------


def validate_parameters(body: str, parameters: list[Any]) -> list[dict[str, Any]]:
    """Check the placeholders and the parameter mappings together; 422 with the reason."""
    try:
        count = placeholder_count(body)
    except ValueError as exc:
        raise Invalid(f"body: {exc}", code="template_placeholders_invalid") from exc
    try:
        specs = _PARAMETERS.validate_python(parameters)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise Invalid(
            f"parameters.{where}: {first['msg']}", code="template_parameter_invalid"
        ) from exc
    if count != len(specs):
        raise Invalid(
            f"the body has {count} placeholder(s) but {len(specs)} parameter(s) were given; "
            "give one parameter per {{n}}, in order",
            code="template_placeholder_mismatch",
        )
    for position, spec in enumerate(specs, start=1):
        value = getattr(spec, "value", None)
        if value is not None:
            report = check_text(value)
            if report.findings:
                f = report.findings[0]
                raise Invalid(
                    f"fixed value for {{{{{position}}}}} contains {f.family} wording "
                    f"{f.matched!r}; fixed values must be neutral",
                    code="template_parameter_not_neutral",
                )
    return [s.model_dump(exclude_none=True) for s in specs]


def refuse_links(body: str) -> list[dict[str, Any]]:
    """The body's findings, or a 422 listing every link in it (links are never allowed)."""
    findings = compute_findings(body)
    links = [f for f in findings if f["family"] == "link"]
    if links:
        shown = "; ".join(
            f"{f['matched']!r} at {f['start']}-{f['end']} ({f['term']})" for f in links
        )
        raise LinkRefused(
            f"the body contains a link, which reminders never carry: {shown}", links=links
        )
    return findings


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


def find(session: Session, *, name: str, language: str) -> MessageTemplate | None:
    """The template with this name and language, if any."""
    stmt = select(MessageTemplate).where(
        MessageTemplate.name == name, MessageTemplate.language == language
    )
    return session.exec(stmt).first()


def to_public(template: MessageTemplate) -> TemplatePublic:
    """The API view: findings with positions and acknowledgements, usability, warnings."""
    assert template.id is not None
    findings: list[FindingPublic] = []
    for index, f in enumerate(current_findings(template)):
        ack = _acknowledgement_for(template, f) if f["family"] != "link" else None
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
    session.add(template)
    session.flush()
    audit_service.record(
        session,
        actor=actor,
        action="template.create",
        object_type="template",
        object_id=template.id,
        detail={
            "name": name,
            "language": language,
            "category": category,
            "status": status,
            "findings": len(findings),
        },
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
    template.updated_at = utcnow()
    session.add(template)
    session.flush()
    audit_service.record(
        session,
        actor=actor,
        action="template.update",
        object_type="template",
        object_id=template.id,
        detail={
            "changed": changed,
            "findings": len(template.findings),
            "acknowledgements_cleared": "body" in changed,
        },
    )
    return template


def acknowledge(
    session: Session,
    *,
    actor: Principal,
    template: MessageTemplate,
    finding_index: int,
    reason: str,
) -> MessageTemplate:
    """Acknowledge one non-link finding with a reason (audited); links cannot be acknowledged."""
    findings = current_findings(template)
    if not 0 <= finding_index < len(findings):
        raise Invalid(
            f"finding_index {finding_index} is out of range: the template has "
            f"{len(findings)} finding(s)",
            code="finding_not_found",
        )
    finding = findings[finding_index]
    if finding["family"] == "link":
        raise Invalid(
            "a link cannot be acknowledged: templates with links are refused outright",
            code="link_not_acknowledgeable",
        )
    if _acknowledgement_for(template, finding) is not None:
        raise Conflict("this finding is already acknowledged", code="already_acknowledged")
    reason = reason.strip()
    ack = {
        **{k: finding[k] for k in ("family", "term", "start", "end", "matched")},
        "reason": reason,
        "by": actor.name,
        "at": utcnow().isoformat(),
    }
    # A new list, so the JSON column is seen as changed.
    template.acknowledgements = [*(template.acknowledgements or []), ack]
    template.findings = findings
    template.updated_at = utcnow()
    session.add(template)
    session.flush()
    audit_service.record(
        session,
        actor=actor,
        action="template.acknowledge",
        object_type="template",
        object_id=template.id,
        detail={
            "finding_index": finding_index,
            "family": finding["family"],
            "term": finding["term"],
            "start": finding["start"],
            "matched": finding["matched"],
            "reason": reason,
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
        session.add(template)
        session.flush()
        audit_service.record(
            session,
            actor=actor,
            action="template.seed",
            object_type="template",
            object_id=template.id,
            detail={"name": name, "language": language, "findings": len(template.findings)},
        )
        added += 1
    return added


# --- sync from Meta -------------------------------------------------------------------------


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


MISSING_STATUS = "DELETED"


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
            session.add(template)
            session.flush()
            summary.created.append(label)
            _audit_sync(session, actor, template, change="created", before=None)
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
            summary.unchanged.append(label)
            continue
        if existing.body != body:
            existing.body = body
            existing.acknowledgements = []
        existing.findings = compute_findings(body)
        existing.status = status
        existing.category = category
        existing.source = "meta"
        existing.updated_at = utcnow()
        session.add(existing)
        session.flush()
        summary.updated.append(label)
        _audit_sync(session, actor, existing, change="updated", before=before)
    stale = select(MessageTemplate).where(
        MessageTemplate.source == "meta", MessageTemplate.status != MISSING_STATUS
    )
    for template in session.exec(stale).all():
        if (template.name, template.language) in seen:
            continue
        before = {"status": template.status}
        template.status = MISSING_STATUS
        template.updated_at = utcnow()
        session.add(template)
        session.flush()
        summary.missing.append(f"{template.name}/{template.language}")
        _audit_sync(session, actor, template, change="missing", before=before)
    return summary


def _audit_sync(
    session: Session,
    actor: Principal,
    template: MessageTemplate,
    *,
    change: str,
    before: dict[str, Any] | None,
) -> None:
    detail: dict[str, object] = {
        "change": change,
        "name": template.name,
        "language": template.language,
        "status": template.status,
        "findings": len(template.findings or []),
    }
    if before is not None:
        detail["before"] = before
    audit_service.record(
        session,
        actor=actor,
        action="template.sync",
        object_type="template",
        object_id=template.id,
        detail=detail,
    )
