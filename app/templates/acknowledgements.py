"""Neutrality findings of a template body, admins' acknowledgements of them, and usability.

A template is usable by a campaign only when its status is APPROVED or SANDBOX, its body has no
link finding (refused outright, product invariant 7), every other finding was acknowledged by an
admin with a reason (audited), and it has exactly one parameter mapping per ``{{n}}``.
"""

from typing import Any

from sqlmodel import Session

from app.auth.principal import Principal
from app.db import utcnow
from app.errors import Conflict, Invalid
from app.templates.models import MessageTemplate, TemplateStatus
from app.templates.neutrality import Finding, check_text
from app.templates.rendering import placeholder_count
from app.templates.store import save_and_audit

USABLE_STATUSES = frozenset({TemplateStatus.approved.value, TemplateStatus.sandbox.value})


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


def acknowledgement_for(
    template: MessageTemplate, finding: dict[str, Any]
) -> dict[str, Any] | None:
    """The admin's acknowledgement of this finding, if there is one."""
    for ack in template.acknowledgements or []:
        if _same_finding(ack, finding):
            return ack
    return None


def current_findings(template: MessageTemplate) -> list[dict[str, Any]]:
    """Findings recomputed from the body now, so a changed term list takes effect at once."""
    return compute_findings(template.body)


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
        if f["family"] != "link" and acknowledgement_for(template, f) is None
    ]
    if open_findings:
        shown = ", ".join(
            f"#{i} {f['family']} {f['matched']!r} at {f['start']}" for i, f in open_findings
        )
        return f"{len(open_findings)} neutrality finding(s) not acknowledged by an admin: {shown}"
    return _placeholder_problem(template)


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
    if acknowledgement_for(template, finding) is not None:
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
    save_and_audit(
        session,
        actor=actor,
        template=template,
        action="template.acknowledge",
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
