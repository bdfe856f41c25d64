"""user_changed_number: the held enrolments and the suppression follow the owner's new number."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session

from app.enrolment.erasure import erase_enrolments
from app.enrolment.models import Enrolment, EnrolmentStatus, SuppressionSource
from app.enrolment.optout import opt_out
from app.enrolment.suppression_list import (
    HELD,
    active_enrolment_opd,
    held_enrolments,
    suppress,
    suppression_of,
)
from app.security import PhoneVault


def change_number(
    session: Session, *, vault: PhoneVault, old_index: str, new_e164: str, now: datetime
) -> int:
    """user_changed_number: move held enrolments to the new number; returns how many moved.

    The old number's suppression is carried over to the new one. An active enrolment that lands
    on a suppressed new number is opted out (erased if the new number was erased by HAPUS); if
    the new number already has an active enrolment, the moved one is erased as a duplicate.
    """
    new_index = vault.blind_index(new_e164)
    if new_index == old_index:
        return 0
    old_suppression = suppression_of(session, old_index)
    if old_suppression is not None:
        suppress(
            session, index=new_index, source=SuppressionSource(old_suppression.source), now=now
        )
    enrolments = held_enrolments(session, old_index, statuses=HELD)
    if not enrolments:
        return 0
    new_suppression = suppression_of(session, new_index)
    new_is_active = active_enrolment_opd(session, new_index) is not None
    to_opt_out: list[Enrolment] = []
    to_erase: list[Enrolment] = []
    for enrolment in enrolments:
        erased_there = new_suppression is not None and new_suppression.source == "erase"
        if erased_there or (enrolment.status == EnrolmentStatus.active and new_is_active):
            to_erase.append(enrolment)  # erased where it stands; never moved
            continue
        enrolment.phone_ciphertext = vault.encrypt(new_e164)
        enrolment.phone_index = new_index
        session.add(enrolment)
        if enrolment.status == EnrolmentStatus.active and new_suppression is not None:
            to_opt_out.append(enrolment)
    # opt_out sets the status before it flushes, so the partial unique index on active
    # numbers never sees a moved active row next to the new number's own.
    opt_out(session, to_opt_out, now=now)
    erase_enrolments(session, to_erase, now=now)
    session.flush()
    return len(enrolments)
