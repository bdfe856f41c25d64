"""What delivery statuses mean for the people behind them.

The deliveries themselves move in `app.outbox.lifecycle` (monotonic states, tallies counted
once per outcome). Here a failure is handed to enrolment: "not on WhatsApp" marks the
enrolment unreachable, "stopped marketing" suppresses the number (also when no delivery
matches any more, through the recipient's number).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlmodel import Session, select

from app.enrolment import optout
from app.enrolment.models import Enrolment, SuppressionSource
from app.messaging.inbound import StatusEvent
from app.outbox import lifecycle as delivery_lifecycle
from app.security import PhoneVault


@dataclass
class StatusSummary:
    applied: int = 0  # moved a delivery forward
    unchanged: int = 0  # duplicate, older than the current state, or not a state we keep
    unmatched: int = 0  # no such delivery (unknown or already purged)
    suppressed: int = 0  # Meta said the person stopped marketing: suppressed
    unreachable: int = 0  # Meta said not on WhatsApp: enrolment marked unreachable
    outcomes: dict[str, int] = field(default_factory=lambda: defaultdict(int))


def apply_statuses(
    session: Session,
    events: Sequence[StatusEvent],
    *,
    vault: PhoneVault,
    now: datetime,
) -> StatusSummary:
    """Apply a batch of statuses in the caller's transaction."""
    summary = StatusSummary()
    if not events:
        return summary
    moves = delivery_lifecycle.apply_statuses(session, events, now=now)
    summary.applied, summary.unchanged = moves.applied, moves.unchanged
    summary.unmatched, summary.outcomes = moves.unmatched, moves.outcomes
    unreachable: list[int] = []
    marketing_stopped: list[str] = []
    for event in moves.unmatched_events:
        if event.status == "failed" and event.meaning.stopped_marketing and event.recipient:
            marketing_stopped.append(vault.blind_index("+" + event.recipient))
    for event, enrolment_id in moves.failed:
        if event.meaning.not_on_whatsapp and enrolment_id is not None:
            unreachable.append(enrolment_id)
        if event.meaning.stopped_marketing:
            index = _index_of(session, enrolment_id, event, vault)
            if index is not None:
                marketing_stopped.append(index)
    for enrolment_id in sorted(set(unreachable)):
        if optout.mark_unreachable(session, enrolment_id=enrolment_id, now=now):
            summary.unreachable += 1
    for index in sorted(set(marketing_stopped)):
        optout.stop(session, index=index, now=now, source=SuppressionSource.marketing_optout)
        summary.suppressed += 1
    return summary


def _index_of(
    session: Session, enrolment_id: int | None, event: StatusEvent, vault: PhoneVault
) -> str | None:
    """The blind index of the delivery's number: from its enrolment, else the recipient id."""
    if enrolment_id is not None:
        index = session.exec(
            select(Enrolment.phone_index).where(Enrolment.id == enrolment_id)
        ).first()
        if index:
            return index
    return vault.blind_index("+" + event.recipient) if event.recipient else None
