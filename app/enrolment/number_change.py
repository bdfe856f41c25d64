"""user_changed_number: the listings and the suppression follow the owner's new number."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session

from app.enrolment.erasure import erase_enrolments
from app.enrolment.models import Enrolment, SuppressionSource
from app.enrolment.suppression_list import HELD, held_enrolments, suppress, suppression_of
from app.security import PhoneVault


def change_number(
    session: Session, *, vault: PhoneVault, old_index: str, new_e164: str, now: datetime
) -> int:
    """user_changed_number: move the number's listings to the new one; returns how many moved.

    The old number's suppression is carried over to the new one. A listing moved onto a
    suppressed new number keeps no ciphertext (it is never messaged); one moved onto a number
    erased by HAPUS, or into an OPD that already lists the new number, is erased instead.
    """
    new_index = vault.blind_index(new_e164)
    if new_index == old_index:
        return 0
    old_suppression = suppression_of(session, old_index)
    if old_suppression is not None:
        suppress(session, index=new_index, source=SuppressionSource(old_suppression.source))
    enrolments = held_enrolments(session, old_index, statuses=HELD)
    if not enrolments:
        return 0
    new_suppression = suppression_of(session, new_index)
    erased_there = new_suppression is not None and new_suppression.source == "erase"
    listed_there = {e.opd_id for e in held_enrolments(session, new_index, statuses=HELD)}
    to_erase: list[Enrolment] = []
    for enrolment in enrolments:
        if erased_there or enrolment.opd_id in listed_there:
            to_erase.append(enrolment)  # erased where it stands; never moved
            continue
        sealed = vault.encrypt(new_e164)
        enrolment.phone_ciphertext = None if new_suppression is not None else sealed
        enrolment.phone_index = new_index  # phone_masked stays what the coordinator typed
        session.add(enrolment)
    erase_enrolments(session, to_erase, now=now)
    session.flush()
    return len(enrolments)
