"""DAFTAR + YA: the number's owner enrols themselves on WhatsApp.

DAFTAR + YA, both sent from the number itself, is a fresh and explicit consent by its owner:
it lifts any suppression, including one left by HAPUS, and the listings kept without the
number get it back. If that OPD already lists the number, its row is left as the coordinator
made it: the owner's act is recorded on nobody's row and in no audit event (invariant 6).
Otherwise a new listing starts, with consent method whatsapp.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from app.enrolment import service as enrolment_service
from app.enrolment.models import ConsentMethod, Enrolment
from app.enrolment.optout import lift_listings
from app.enrolment.phones import InvalidPhone, mask_phone, normalise_phone
from app.enrolment.suppression_list import HELD, held_enrolments, listing_opd, suppression_of
from app.opds.models import Opd
from app.security import PhoneVault

OWNER_ACTOR_NAME = "whatsapp:owner"


class SelfEnrolOutcome(StrEnum):
    enrolled = "enrolled"
    already_enrolled = "already_enrolled"
    not_eligible = "not_eligible"  # not a mobile number of an allowed region


@dataclass(frozen=True)
class SelfEnrolResult:
    outcome: SelfEnrolOutcome
    opd_id: int | None = None


def enrol_self(
    session: Session,
    *,
    vault: PhoneVault,
    opd: Opd,
    e164: str,
    now: datetime,
    notice_version: str,
    regions: frozenset[str],
) -> SelfEnrolResult:
    """YA after DAFTAR: lift any suppression and list the number in this OPD if it is not."""
    assert opd.id is not None
    try:
        number = normalise_phone(e164, allowed_regions=regions)
    except InvalidPhone:
        return SelfEnrolResult(SelfEnrolOutcome.not_eligible)
    index = vault.blind_index(number)
    row = suppression_of(session, index, lock=True)
    listed = held_enrolments(session, index, statuses=HELD)
    if row is None and listed:
        return SelfEnrolResult(SelfEnrolOutcome.already_enrolled, listed[0].opd_id)
    if row is not None:
        session.delete(row)
        session.flush()
        lift_listings(session, vault=vault, listed=listed, e164=number, now=now)
    if any(e.opd_id == opd.id for e in listed):
        return SelfEnrolResult(SelfEnrolOutcome.enrolled, opd.id)
    enrolment = Enrolment(
        public_id=enrolment_service.new_public_id(),
        opd_id=opd.id,
        phone_ciphertext=vault.encrypt(number),
        phone_masked=mask_phone(number),
        phone_index=index,
        consent_method=ConsentMethod.whatsapp,
        consent_recorded_at=now,
        consent_notice_version=notice_version,
        consent_recorded_by=OWNER_ACTOR_NAME,
        enrolled_at=now,
    )
    session.add(enrolment)
    try:
        with session.begin_nested():  # the partial unique index settles a race
            session.flush()
    except IntegrityError:
        return SelfEnrolResult(SelfEnrolOutcome.already_enrolled, listing_opd(session, index))
    enrolment_service.tally(session, opd_id=opd.id, event="enrolled", at=now)
    return SelfEnrolResult(SelfEnrolOutcome.enrolled, opd.id)
