"""What Meta's account, number and template notices mean here, applied in the caller's
transaction before the webhook answers 200.

- a template paused, disabled, rejected or moved to MARKETING pauses every active campaign
  using it, with the reason, and raises an alert; only an admin resumes them;
- a lower messaging limit, a flag, a quality drop, a restriction or a ban updates the sender
  state (`app.sender.changes`), which raises its own alerts.
A notice older than what was applied, or delivered again, changes nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session

from app.auth.principal import cli_principal
from app.campaigns import service as campaign_service
from app.messaging.account_events import (
    AccountEvent,
    AccountUpdate,
    CapabilityUpdate,
    PhoneQualityUpdate,
    TemplateCategoryUpdate,
    TemplateQualityUpdate,
    TemplateStatusUpdate,
)
from app.sender import alerts, changes
from app.templates import lifecycle
from app.templates.lifecycle import TemplateChange

logger = logging.getLogger(__name__)

META = cli_principal("meta")
_HALT_SUFFIX = "; pengiriman dihentikan sampai admin melanjutkan kampanye"


@dataclass
class AccountOutcome:
    """Counts of what the notices did."""

    templates_changed: int = 0
    campaigns_paused: int = 0
    ignored: int = 0


def apply_account_events(
    session: Session, *, events: Sequence[AccountEvent], now: datetime
) -> AccountOutcome:
    """Apply each notice in order of Meta's time (a notice without one counts as now)."""
    outcome = AccountOutcome()
    for event in sorted(events, key=lambda e: e.at or now):
        at = event.at or now
        if isinstance(event, PhoneQualityUpdate):
            changes.apply_phone_quality(session, event=event, at=at)
        elif isinstance(event, CapabilityUpdate):
            changes.apply_capability(session, event=event, at=at)
        elif isinstance(event, AccountUpdate):
            changes.apply_account_update(session, event=event, at=at)
        else:
            change = _template_change(session, event, at)
            if change is None:
                outcome.ignored += 1
                continue
            outcome.templates_changed += 1
            outcome.campaigns_paused += _act_on(session, change, at=at, now=now)
    return outcome


def _template_change(
    session: Session,
    event: TemplateStatusUpdate | TemplateCategoryUpdate | TemplateQualityUpdate,
    at: datetime,
) -> TemplateChange | None:
    if isinstance(event, TemplateStatusUpdate):
        return lifecycle.apply_status(session, event=event, at=at)
    if isinstance(event, TemplateCategoryUpdate):
        return lifecycle.apply_category(session, event=event, at=at)
    return lifecycle.apply_quality(session, event=event, at=at)


def _act_on(session: Session, change: TemplateChange, *, at: datetime, now: datetime) -> int:
    if change.stopped is None:
        if change.warning is not None:
            kind = (
                alerts.TEMPLATE_RECATEGORISED
                if change.what == "category_announced"
                else alerts.TEMPLATE_QUALITY_LOW
            )
            alerts.raise_alert(
                session, kind=kind, message=change.warning, event_at=at, subject=change.label
            )
        return 0
    paused = campaign_service.pause_for_template(
        session,
        actor=META,
        template_id=change.template_id,
        reason=change.stopped + _HALT_SUFFIX,
        now=now,
    )
    kind = alerts.TEMPLATE_RECATEGORISED if change.what == "category" else alerts.TEMPLATE_STOPPED
    campaigns = (
        f"{len(paused)} kampanye aktif yang memakainya dijeda; lanjutkan setelah templat "
        "dapat dipakai lagi (atau admin menerima kategorinya)."
        if paused
        else "Tidak ada kampanye aktif yang memakainya."
    )
    alerts.raise_alert(
        session,
        kind=kind,
        message=f"{change.stopped}. {campaigns}",
        event_at=at,
        subject=change.label,
    )
    logger.warning(
        "webhook.template_stopped template=%s campaigns_paused=%d", change.template_id, len(paused)
    )
    return len(paused)
