"""The employee's own acts on their number: stop and resume, and WhatsApp's verdicts on it.

Everything in this module and its siblings (`suppression_list`, `erasure`, `held_data`,
`self_enrol`, `number_change`) is keyed by the number's blind index and runs in the caller's
transaction (flush, never commit), so that the webhook's 200 means it is stored. Nothing here
is written to the audit trail, and nothing changes a coordinator's list: a per-person record
of who stopped or resumed is exactly the opt-out list invariants 5 and 6 forbid. Counts go to
`EnrolmentTally` instead, with these events besides the service's `enrolled`/`withdrawn`:
`opted_out` and `resumed` (one per OPD listing the number; counts only, the list is unchanged),
`erased` (one per listing removed), `unreachable`.

Rules decided here:
- STOP puts the blind index on the suppression list; round creation and the claim both skip
  a suppressed number, and its queued deliveries are skipped in the same transaction
  (`app.outbox.lifecycle.skip_for_opt_out`). The listings keep their rows.
- MULAI lifts `stop` and `marketing_optout` (both were this number's own choice), never
  `erase`. WhatsApp's marketing "resume" lifts only `marketing_optout`. Listings kept without
  the number's ciphertext get it back from the message.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from sqlalchemy import update
from sqlmodel import Session, col

from app.enrolment import service as enrolment_service
from app.enrolment.models import Enrolment, SuppressionSource
from app.enrolment.suppression_list import (
    HELD,
    held_enrolments,
    restore_number,
    suppress,
    suppression_of,
)
from app.outbox import lifecycle as delivery_lifecycle
from app.security import PhoneVault


def tally_per_listing(
    session: Session, enrolments: list[Enrolment], *, event: str, now: datetime
) -> None:
    """Count an event of the number once for every OPD that lists it."""
    for opd_id, n in sorted(Counter(e.opd_id for e in enrolments).items()):
        enrolment_service.tally(session, opd_id=opd_id, event=event, at=now, amount=n)


def stop(
    session: Session,
    *,
    index: str,
    now: datetime,
    source: SuppressionSource = SuppressionSource.stop,
) -> int:
    """STOP: suppress the number and skip its queued deliveries; how many listings it has.

    The listings stay as they are, so no coordinator can tell; nothing is sent to a suppressed
    number (the suppression is checked at round creation and again at every claim).
    """
    listed = held_enrolments(session, index, statuses=HELD)
    if suppress(session, index=index, source=source):
        tally_per_listing(session, listed, event="opted_out", now=now)
    delivery_lifecycle.skip_for_opt_out(
        session, enrolment_ids=[e.id for e in listed if e.id], now=now
    )
    return len(listed)


class ResumeOutcome(StrEnum):
    resumed = "resumed"
    already_active = "already_active"
    not_enrolled = "not_enrolled"  # suppression (if any) lifted, not listed anywhere
    erased = "erased"  # suppressed by HAPUS: only DAFTAR + YA lifts it
    still_suppressed = "still_suppressed"  # a source this request may not lift


@dataclass(frozen=True)
class ResumeResult:
    outcome: ResumeOutcome
    opd_id: int | None = None


def resume(
    session: Session,
    *,
    vault: PhoneVault,
    e164: str,
    now: datetime,
    lift: Collection[SuppressionSource] = (
        SuppressionSource.stop,
        SuppressionSource.marketing_optout,
    ),
) -> ResumeResult:
    """MULAI: lift the number's own opt-out; its listings are messaged again."""
    index = vault.blind_index(e164)
    row = suppression_of(session, index, lock=True)
    if row is not None and row.source not in {s.value for s in lift}:
        if row.source == SuppressionSource.erase:
            return ResumeResult(ResumeOutcome.erased)
        return ResumeResult(ResumeOutcome.still_suppressed)
    listed = held_enrolments(session, index, statuses=HELD)
    if row is None:
        if listed:
            return ResumeResult(ResumeOutcome.already_active, listed[0].opd_id)
        return ResumeResult(ResumeOutcome.not_enrolled)
    session.delete(row)
    session.flush()
    if not listed:
        return ResumeResult(ResumeOutcome.not_enrolled)
    lift_listings(session, vault=vault, listed=listed, e164=e164, now=now)
    return ResumeResult(ResumeOutcome.resumed, listed[0].opd_id)


def lift_listings(
    session: Session, *, vault: PhoneVault, listed: list[Enrolment], e164: str, now: datetime
) -> None:
    """The suppression was just lifted: the listings get the number back and count a resume."""
    restore_number(session, vault=vault, index=vault.blind_index(e164), e164=e164)
    for enrolment in listed:
        enrolment.unreachable_at = None  # they just wrote to us on WhatsApp
        session.add(enrolment)
    session.flush()
    tally_per_listing(session, listed, event="resumed", now=now)


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
