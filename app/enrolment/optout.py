"""The employee's own acts on their enrolment: stop and resume, and WhatsApp's verdicts on it.

Everything in this module and its siblings (`suppression_list`, `erasure`, `held_data`,
`self_enrol`, `number_change`) is keyed by the number's blind index and runs in the caller's
transaction (flush, never commit), so that the webhook's 200 means it is stored. Nothing here
is written to the audit trail: a per-person record of who stopped or resumed is exactly the
opt-out list invariant 5 forbids. Counts go to `EnrolmentTally` instead, with these events
besides the service's `enrolled`/`withdrawn`: `opted_out`, `resumed`, `erased`, `unreachable`.

Rules decided here:
- MULAI lifts `stop` and `marketing_optout` (both were this number's own choice), never
  `erase`. WhatsApp's marketing "resume" lifts only `marketing_optout`.
- STOP keeps the ciphertext (status opted_out) so that MULAI can resume; the queued
  deliveries are skipped in the same transaction (`app.outbox.lifecycle.skip_for_opt_out`).
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from sqlalchemy import update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col

from app.enrolment import service as enrolment_service
from app.enrolment.models import Enrolment, EnrolmentStatus, SuppressionSource
from app.enrolment.suppression_list import HELD, held_enrolments, suppress, suppression_of
from app.outbox import lifecycle as delivery_lifecycle


def opt_out(session: Session, enrolments: list[Enrolment], *, now: datetime) -> int:
    """Opt these (locked) enrolments out and skip their queued deliveries; how many ended."""
    changed = 0
    for enrolment in enrolments:
        if enrolment.status == EnrolmentStatus.active:
            enrolment.status = EnrolmentStatus.opted_out
            enrolment.ended_at = now
            session.add(enrolment)
            enrolment_service.tally(session, opd_id=enrolment.opd_id, event="opted_out", at=now)
            changed += 1
    session.flush()
    delivery_lifecycle.skip_for_opt_out(
        session, enrolment_ids=[e.id for e in enrolments if e.id], now=now
    )
    return changed


def stop(
    session: Session,
    *,
    index: str,
    now: datetime,
    source: SuppressionSource = SuppressionSource.stop,
) -> int:
    """STOP: suppress the number and opt out every enrolment of it; returns how many ended.

    The ciphertext is kept (status opted_out) so that MULAI can resume; queued deliveries are
    skipped in the same transaction, so no worker can claim them once this commits.
    """
    suppress(session, index=index, source=source, now=now)
    return opt_out(session, held_enrolments(session, index, statuses=HELD), now=now)


class ResumeOutcome(StrEnum):
    resumed = "resumed"
    already_active = "already_active"
    not_enrolled = "not_enrolled"  # suppression (if any) lifted, nothing held to re-activate
    erased = "erased"  # suppressed by HAPUS: only DAFTAR + YA lifts it
    still_suppressed = "still_suppressed"  # a source this request may not lift


@dataclass(frozen=True)
class ResumeResult:
    outcome: ResumeOutcome
    opd_id: int | None = None


def resume(
    session: Session,
    *,
    index: str,
    now: datetime,
    lift: Collection[SuppressionSource] = (
        SuppressionSource.stop,
        SuppressionSource.marketing_optout,
    ),
) -> ResumeResult:
    """MULAI: lift the number's own opt-out and re-activate its held enrolment, if any."""
    row = suppression_of(session, index, lock=True)
    if row is not None:
        if row.source not in {s.value for s in lift}:
            if row.source == SuppressionSource.erase:
                return ResumeResult(ResumeOutcome.erased)
            return ResumeResult(ResumeOutcome.still_suppressed)
        session.delete(row)
        session.flush()
    active = held_enrolments(session, index, statuses=[EnrolmentStatus.active])
    if active:
        return ResumeResult(ResumeOutcome.already_active, active[0].opd_id)
    held = [
        e
        for e in held_enrolments(session, index, statuses=[EnrolmentStatus.opted_out])
        if e.phone_ciphertext is not None
    ]
    if not held:
        return ResumeResult(ResumeOutcome.not_enrolled)
    enrolment = held[-1]  # the most recent one
    enrolment.status = EnrolmentStatus.active
    enrolment.ended_at = None
    enrolment.unreachable_at = None  # they just wrote to us on WhatsApp
    session.add(enrolment)
    try:
        with session.begin_nested():
            session.flush()
    except IntegrityError:
        # The partial unique index: another active enrolment won a race.
        session.expire(enrolment)
        return ResumeResult(ResumeOutcome.already_active)
    enrolment_service.tally(session, opd_id=enrolment.opd_id, event="resumed", at=now)
    return ResumeResult(ResumeOutcome.resumed, enrolment.opd_id)


def mark_unreachable(session: Session, *, enrolment_id: int, now: datetime) -> bool:
    """WhatsApp says the number cannot be reached; set once and counted once."""
    result = session.execute(
        update(Enrolment)
        .where(col(Enrolment.id) == enrolment_id, col(Enrolment.unreachable_at).is_(None))
        .values(unreachable_at=now)
        .returning(col(Enrolment.opd_id))
        .execution_options(synchronize_session=False)
    ).first()
    if result is None:
        return False
    enrolment_service.tally(session, opd_id=result[0], event="unreachable", at=now)
    return True
