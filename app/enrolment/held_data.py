"""DATA: what is held about a number, for its owner and nothing about any other."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session, col, select

from app.enrolment.models import Enrolment
from app.enrolment.suppression_list import HELD, suppression_of
from app.opds.models import Opd
from app.outbox import service as outbox_service
from app.security import PhoneVault


@dataclass(frozen=True)
class HeldEnrolment:
    """One enrolment as its owner may see it (DATA)."""

    opd_name: str
    opd_timezone: str
    enrolled_at: datetime
    consent_method: str
    status: str
    reminders_sent: int
    label: str | None
    unreachable: bool


@dataclass(frozen=True)
class HeldData:
    enrolments: list[HeldEnrolment]
    suppression: str | None


def describe(session: Session, *, vault: PhoneVault, index: str) -> HeldData:
    """DATA: what is held about this number and nothing about any other."""
    rows = session.exec(
        select(Enrolment, Opd)
        .join(Opd, col(Opd.id) == col(Enrolment.opd_id))
        .where(Enrolment.phone_index == index, col(Enrolment.status).in_(list(HELD)))
        .order_by(col(Enrolment.enrolled_at))
    ).all()
    held = []
    for enrolment, opd in rows:
        sent = outbox_service.reminders_sent(session, enrolment_id=enrolment.id)
        label = vault.decrypt(enrolment.label_ciphertext) if enrolment.label_ciphertext else None
        held.append(
            HeldEnrolment(
                opd_name=opd.name,
                opd_timezone=opd.timezone,
                enrolled_at=enrolment.enrolled_at,
                consent_method=enrolment.consent_method,
                status=enrolment.status,
                reminders_sent=sent,
                label=label,
                unreachable=enrolment.unreachable_at is not None,
            )
        )
    row = suppression_of(session, index)
    return HeldData(enrolments=held, suppression=row.source if row else None)
