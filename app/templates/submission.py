"""Submitting a template to Meta: a UTILITY body with examples and a time-to-live that fits
the send window, then Meta's review arrives by webhook (`app.templates.lifecycle`).

The time-to-live is how long Meta keeps trying to deliver a reminder: a reminder that could
not reach a phone while the send window is open is dropped rather than arriving late in the
evening. It is the window's length (e.g. 08:00–15:00 gives 7 h), within Meta's 30 s to 12 h.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time
from typing import Any

from sqlmodel import Session, col, select

from app.auth.principal import Principal
from app.campaigns.models import Campaign, CampaignState
from app.config import Settings
from app.errors import Conflict, Invalid, NotFound
from app.messaging.health import TemplateCreated
from app.messaging.wire import (
    MAX_TEMPLATE_TTL_SECONDS,
    MIN_TEMPLATE_TTL_SECONDS,
    UTILITY_CATEGORY,
    template_creation_body,
)
from app.templates.acknowledgements import usable_problem
from app.templates.lifecycle import lifecycle_of
from app.templates.models import MessageTemplate, TemplateStatus
from app.templates.parameters import body_parameters, sample_parameters
from app.templates.store import save_and_audit

_FINISHED = (CampaignState.finished, CampaignState.purged)


@dataclass(frozen=True)
class Submission:
    """What will be sent to Meta."""

    body: dict[str, Any]
    ttl_seconds: int
    examples: list[str]


def window_ttl(send_start: time, send_end: time) -> int:
    """The send window's length in seconds, within Meta's 30 s to 12 h."""
    seconds = (send_end.hour * 3600 + send_end.minute * 60 + send_end.second) - (
        send_start.hour * 3600 + send_start.minute * 60 + send_start.second
    )
    return max(MIN_TEMPLATE_TTL_SECONDS, min(MAX_TEMPLATE_TTL_SECONDS, seconds))


def _campaigns_using(session: Session, template: MessageTemplate) -> list[Campaign]:
    stmt = select(Campaign).where(
        Campaign.template_id == template.id, col(Campaign.state).not_in(_FINISHED)
    )
    return list(session.exec(stmt).all())


def prepare(
    session: Session,
    *,
    template: MessageTemplate,
    campaign_id: int | None,
    ttl_seconds: int | None,
    settings: Settings,
) -> Submission:
    """The submission body for a template registered here; 409/422 when it cannot be sent."""
    if template.meta_template_id is not None:
        raise Conflict(
            "the template was already submitted to Meta; change it there, or run "
            "`spi-reminder templates sync` to read its state",
            code="template_already_submitted",
        )
    if template.status != TemplateStatus.sandbox:
        raise Conflict(
            f"only a template registered here (SANDBOX) is submitted; this one is "
            f"{template.status}",
            code="template_not_local",
        )
    problem = usable_problem(template)
    if problem is not None:
        # Links, unacknowledged findings or a parameter mismatch: Meta must never see them.
        raise Invalid(f"the template cannot be submitted: {problem}", code="template_unusable")
    campaign: Campaign | None = None
    if campaign_id is not None:
        campaign = session.get(Campaign, campaign_id)
        if campaign is None:
            raise NotFound("no such campaign", code="campaign_not_found")
    if ttl_seconds is None:
        windows = [campaign] if campaign is not None else _campaigns_using(session, template)
        if not windows:
            raise Invalid(
                "give ttl_seconds, or a campaign_id whose send window sets it",
                code="template_ttl_missing",
            )
        ttl_seconds = min(window_ttl(c.send_start, c.send_end) for c in windows)
    examples = (
        body_parameters(template, campaign=campaign, settings=settings)
        if campaign is not None
        else sample_parameters(template, settings=settings)
    )
    try:
        body = template_creation_body(
            name=template.name,
            language=template.language,
            body_text=template.body,
            examples=examples,
            ttl_seconds=ttl_seconds,
        )
    except ValueError as exc:
        raise Invalid(f"Meta would refuse this template: {exc}", code="template_invalid") from exc
    return Submission(body=body, ttl_seconds=ttl_seconds, examples=examples)


def record(
    session: Session,
    *,
    actor: Principal,
    template_id: int,
    submission: Submission,
    created: TemplateCreated,
    now: datetime,
) -> MessageTemplate:
    """Meta took the template: from now on Meta owns its status, category and body (audited).

    Meta may review in seconds: when its verdict arrived (and was applied) before this runs,
    in a transaction of its own, that verdict stands over the submission's PENDING.
    """
    template = session.exec(
        select(MessageTemplate).where(MessageTemplate.id == template_id).with_for_update()
    ).one()
    before = {"status": template.status, "category": template.category}
    row = lifecycle_of(session, template)
    if row.status_event is None:
        template.status = (created.status or TemplateStatus.pending.value)[:16]
    if row.category_at is None:
        template.category = (created.category or UTILITY_CATEGORY)[:20]
    template.meta_template_id = created.template_id
    template.source = "meta"
    row.submitted_at, row.send_ttl_seconds = now, submission.ttl_seconds
    session.add(row)
    save_and_audit(
        session,
        actor=actor,
        template=template,
        action="template.submit",
        detail={
            "before": before,
            "status": template.status,
            "category": template.category,
            "meta_template_id": template.meta_template_id,
            "ttl_seconds": submission.ttl_seconds,
        },
    )
    return template
