"""DAFTAR + YA: the number's owner enrols themselves on WhatsApp.

DAFTAR + YA, both sent from the number itself, is a fresh and explicit consent by its owner:
it lifts any suppression, including one left by HAPUS. If an opted-out enrolment of the
number is still held, that one is re-activated with the new consent (and OPD), so that its
delivery history keeps counting against the per-person budget; after HAPUS nothing is held
and a new enrolment starts.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from app.audit import service as audit_service
from app.auth.models import Role
from app.auth.principal import Principal
from app.enrolment import service as enrolment_service
from app.enrolment.erasure import erase_enrolments
from app.enrolment.models import ConsentMethod, Enrolment, EnrolmentStatus
from app.enrolment.phones import InvalidPhone, normalise_phone
from app.enrolment.suppression_list import active_enrolment_opd, held_enrolments, suppression_of
from app.errors import Conflict, Invalid
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


def owner_principal(opd: Opd) -> Principal:
    """The number's owner, acting on WhatsApp for this OPD (recorded as consent_recorded_by)."""
    return Principal(name=OWNER_ACTOR_NAME, role=Role.coordinator, opd_id=opd.id, opd_code=opd.code)


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
    """YA after DAFTAR: enrol with consent method whatsapp, recorded at the time of the YA."""
    try:
        number = normalise_phone(e164, allowed_regions=regions)
    except InvalidPhone:
        return SelfEnrolResult(SelfEnrolOutcome.not_eligible)
    index = vault.blind_index(number)
    existing = active_enrolment_opd(session, index)
    if existing is not None:
        return SelfEnrolResult(SelfEnrolOutcome.already_enrolled, existing)
    try:
        with session.begin_nested():
            row = suppression_of(session, index, lock=True)
            if row is not None:
                session.delete(row)
                session.flush()
            held = held_enrolments(session, index, statuses=[EnrolmentStatus.opted_out])
            held = [e for e in held if e.phone_ciphertext is not None]
            if held:
                # Re-use the most recent held enrolment: its delivery history keeps counting
                # against max_reminders and min_gap_days (invariant 9). Older ones go.
                erase_enrolments(session, held[:-1], now=now)
                _reenrol(
                    session,
                    held[-1],
                    vault=vault,
                    opd=opd,
                    number=number,
                    now=now,
                    notice_version=notice_version,
                )
            else:
                enrolment_service.enrol(
                    session,
                    vault=vault,
                    actor=owner_principal(opd),
                    opd=opd,
                    phone=number,
                    label=None,
                    consent_method=ConsentMethod.whatsapp,
                    consent_recorded_at=now,
                    notice_version=notice_version,
                    regions=regions,
                )
    except (Conflict, IntegrityError):
        return SelfEnrolResult(
            SelfEnrolOutcome.already_enrolled, active_enrolment_opd(session, index)
        )
    except Invalid:
        return SelfEnrolResult(SelfEnrolOutcome.not_eligible)
    return SelfEnrolResult(SelfEnrolOutcome.enrolled, opd.id)


def _reenrol(
    session: Session,
    enrolment: Enrolment,
    *,
    vault: PhoneVault,
    opd: Opd,
    number: str,
    now: datetime,
    notice_version: str,
) -> None:
    """A held (opted-out) enrolment becomes active again on fresh WhatsApp consent."""
    assert opd.id is not None
    if enrolment.opd_id != opd.id:
        enrolment.label_ciphertext = None  # the old OPD coordinator's note is not the new one's
    enrolment.opd_id = opd.id
    enrolment.phone_ciphertext = vault.encrypt(number)
    enrolment.status = EnrolmentStatus.active
    enrolment.consent_method = ConsentMethod.whatsapp
    enrolment.consent_recorded_at = now
    enrolment.consent_notice_version = notice_version
    enrolment.consent_recorded_by = OWNER_ACTOR_NAME
    enrolment.enrolled_at = now
    enrolment.ended_at = None
    enrolment.unreachable_at = None
    session.add(enrolment)
    with session.begin_nested():  # the partial unique index settles a race
        session.flush()
    enrolment_service.tally(session, opd_id=opd.id, event="enrolled", at=now)
    audit_service.record(
        session,
        actor=owner_principal(opd),
        action="enrolment.create",
        object_type="enrolment",
        object_id=enrolment.public_id,
        detail={"opd": opd.code, "consent_method": ConsentMethod.whatsapp.value},
    )
