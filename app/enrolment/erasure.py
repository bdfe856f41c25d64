"""HAPUS: erase a number's enrolments and their delivery rows; keep only the blind index.

HAPUS erases the enrolments (ciphertext, label, index) and their per-person delivery rows
(`app.outbox.lifecycle.erase_for_enrolments`: a queued delivery is first counted as skipped,
so figures stay whole; one a worker is sending right now is detached and left for the
retention purge). Nothing is written to the audit trail (invariant 5).
"""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session

from app.enrolment import service as enrolment_service
from app.enrolment.models import Enrolment, EnrolmentStatus, SuppressionSource
from app.enrolment.suppression_list import HELD, held_enrolments, suppress
from app.outbox import lifecycle as delivery_lifecycle


def erase_enrolments(session: Session, enrolments: list[Enrolment], *, now: datetime) -> None:
    """Erase these (locked) enrolments and remove their delivery rows."""
    for enrolment in enrolments:
        if enrolment.status == EnrolmentStatus.active:
            enrolment_service.tally(session, opd_id=enrolment.opd_id, event="erased", at=now)
            enrolment.ended_at = now
        enrolment.status = EnrolmentStatus.erased
        enrolment.phone_ciphertext = None
        enrolment.phone_index = None
        enrolment.label_ciphertext = None
        session.add(enrolment)
    session.flush()
    delivery_lifecycle.erase_for_enrolments(
        session, enrolment_ids=[e.id for e in enrolments if e.id], now=now
    )


def erase(session: Session, *, index: str, now: datetime) -> int:
    """HAPUS: erase every enrolment of the number and its delivery rows; keep the index only.

    Returns how many enrolments were erased. The suppression (source erase) remains so that no
    coordinator can enrol the number again; the owner can, with DAFTAR + YA.
    """
    enrolments = held_enrolments(session, index, statuses=HELD)
    erase_enrolments(session, enrolments, now=now)
    suppress(session, index=index, source=SuppressionSource.erase, now=now)
    return len(enrolments)
