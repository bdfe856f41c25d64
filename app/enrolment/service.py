"""Enrol, list and withdraw staff; every check the API and the importer share lives here."""

import secrets
from collections.abc import Collection
from datetime import datetime

from sqlalchemy import func
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from app.audit import service as audit_service
from app.auth.principal import Principal
from app.db import increment_counter, one_of, utcnow
from app.enrolment.models import Enrolment, EnrolmentStatus, EnrolmentTally, Suppression
from app.enrolment.phones import InvalidPhone, mask_phone, normalise_phone
from app.enrolment.schemas import EnrolmentPage, EnrolmentPublic
from app.errors import Conflict, Invalid, NotFound
from app.opds.models import Opd
from app.security import PhoneVault

# The only refusal that depends on the number: the coordinator knows their own list.
ALREADY_LISTED = "nomor ini sudah ada di daftar OPD ini"


def new_public_id() -> str:
    """A random, non-sequential id for URLs (reveals nothing about counts)."""
    return secrets.token_urlsafe(12)


def normalise_or_422(raw: str, *, regions: frozenset[str]) -> str:
    """E.164 for a phone as written, or a 422 with the reason."""
    try:
        return normalise_phone(raw, allowed_regions=regions)
    except InvalidPhone as exc:
        raise Invalid(f"phone: {exc}", code=f"invalid_phone.{exc.reason}") from exc


def suppressed_among(session: Session, indexes: Collection[str]) -> set[str]:
    """Which of these blind indexes are on the suppression list."""
    if not indexes:
        return set()
    rows = session.exec(
        select(Suppression.phone_index).where(one_of(session, Suppression.phone_index, indexes))
    )
    return set(rows.all())


def listed_in_opd_among(session: Session, *, opd_id: int, indexes: Collection[str]) -> set[str]:
    """Which of these blind indexes this OPD already lists."""
    if not indexes:
        return set()
    # The status is filtered here, not in SQL: with a long IN list plus `status = 'active'`,
    # SQLite (and PostgreSQL before its first statistics) pick a poor index and scan every
    # active enrolment per batch, which made large imports quadratic.
    rows = session.exec(
        select(Enrolment.phone_index, Enrolment.status).where(
            one_of(session, Enrolment.phone_index, indexes), Enrolment.opd_id == opd_id
        )
    )
    return {index for index, status in rows if index and status == EnrolmentStatus.active}


def seal_number(vault: PhoneVault, e164: str, *, suppressed: bool) -> str | None:
    """The ciphertext to store for a listed number: none while it is suppressed.

    It is always computed, so that listing a suppressed number costs the same time.
    """
    ciphertext = vault.encrypt(e164)
    return None if suppressed else ciphertext


def enrol(
    session: Session,
    *,
    vault: PhoneVault,
    actor: Principal,
    opd: Opd,
    phone: str,
    label: str | None,
    consent_method: str,
    consent_recorded_at: datetime | None,
    notice_version: str,
    regions: frozenset[str],
) -> Enrolment:
    """List one consenting person; the answer is the same for every number not yet listed here.

    A suppressed number is listed without its ciphertext and never messaged; another OPD's
    listing of it is not this coordinator's to know.
    """
    e164 = normalise_or_422(phone, regions=regions)
    now = utcnow()
    if consent_recorded_at is not None and consent_recorded_at > now:
        raise Invalid(
            "consent.recorded_at: tanggal persetujuan tidak boleh di masa depan",
            code="consent_in_future",
        )
    index = vault.blind_index(e164)
    assert opd.id is not None
    suppressed = bool(suppressed_among(session, [index]))
    if listed_in_opd_among(session, opd_id=opd.id, indexes=[index]):
        raise Conflict(ALREADY_LISTED, code="already_enrolled")
    enrolment = Enrolment(
        public_id=new_public_id(),
        opd_id=opd.id,
        phone_ciphertext=seal_number(vault, e164, suppressed=suppressed),
        phone_masked=mask_phone(e164),
        phone_index=index,
        label_ciphertext=vault.encrypt(label) if label else None,
        consent_method=consent_method,
        consent_recorded_at=consent_recorded_at or now,
        consent_notice_version=notice_version,
        consent_recorded_by=actor.name,
        enrolled_at=now,
    )
    session.add(enrolment)
    try:
        # The partial unique index settles a race between two concurrent enrolments.
        with session.begin_nested():
            session.flush()
    except IntegrityError as exc:
        raise Conflict(ALREADY_LISTED, code="already_enrolled") from exc
    tally(session, opd_id=opd.id, event="enrolled", at=now)
    # Keyed by the OPD, not the listing's id: an id in the audit trail would outlive the row's
    # erasure (HAPUS, purge) and show which listing vanished without a withdrawal.
    audit_service.record(
        session,
        actor=actor,
        action="enrolment.create",
        object_type="opd",
        object_id=opd.code,
        detail={"consent_method": consent_method},
    )
    return enrolment


def tally(session: Session, *, opd_id: int, event: str, at: datetime, amount: int = 1) -> None:
    """Count an enrolment event for the OPD's aggregate history."""
    increment_counter(
        session,
        EnrolmentTally,
        keys={"opd_id": opd_id, "day": at.date(), "event": event},
        amount=amount,
    )


def to_public(enrolment: Enrolment, *, opd_code: str, vault: PhoneVault) -> EnrolmentPublic:
    """The API view of a listing: masked number, never the number, nothing about messaging."""
    masked = enrolment.phone_masked
    if masked is None and enrolment.phone_ciphertext:
        # Rows listed before the masked column existed.
        masked = mask_phone(vault.decrypt(enrolment.phone_ciphertext))
    label = vault.decrypt(enrolment.label_ciphertext) if enrolment.label_ciphertext else None
    return EnrolmentPublic(
        id=enrolment.public_id,
        opd_code=opd_code,
        phone_masked=masked,
        label=label,
        consent_method=enrolment.consent_method,
        consent_recorded_at=enrolment.consent_recorded_at,
        consent_notice_version=enrolment.consent_notice_version,
        enrolled_at=enrolment.enrolled_at,
    )


def list_enrolments(
    session: Session,
    *,
    vault: PhoneVault,
    opd: Opd,
    limit: int,
    offset: int,
) -> EnrolmentPage:
    """A page of one OPD's list with masked numbers; withdrawn rows are off the list."""
    where = [Enrolment.opd_id == opd.id, Enrolment.status == EnrolmentStatus.active]
    total = session.exec(select(func.count()).select_from(Enrolment).where(*where)).one()
    rows = session.exec(
        select(Enrolment)
        .where(*where)
        .order_by(col(Enrolment.enrolled_at).desc(), col(Enrolment.id).desc())
        .offset(offset)
        .limit(limit)
    ).all()
    return EnrolmentPage(
        items=[to_public(r, opd_code=opd.code, vault=vault) for r in rows],
        total=int(total),
        limit=limit,
        offset=offset,
    )


def withdraw(session: Session, *, actor: Principal, public_id: str) -> Enrolment:
    """Withdraw an enrolment: its number and label are erased, a tally remembers it."""
    stmt = select(Enrolment).where(Enrolment.public_id == public_id)
    if actor.opd_id is not None:
        stmt = stmt.where(Enrolment.opd_id == actor.opd_id)
    enrolment = session.exec(stmt).first()
    # Another OPD's enrolment is "not found" for a coordinator: its existence is not theirs to know.
    if enrolment is None or (not actor.is_admin and actor.opd_id is None):
        raise NotFound("pegawai ini tidak ada di daftar", code="enrolment_not_found")
    if enrolment.status != EnrolmentStatus.active:
        return enrolment
    now = utcnow()
    enrolment.status = EnrolmentStatus.withdrawn
    enrolment.phone_ciphertext = None
    enrolment.phone_masked = None
    enrolment.phone_index = None
    enrolment.label_ciphertext = None
    session.add(enrolment)
    tally(session, opd_id=enrolment.opd_id, event="withdrawn", at=now)
    opd = session.get(Opd, enrolment.opd_id)
    audit_service.record(
        session,
        actor=actor,
        action="enrolment.withdraw",
        object_type="opd",
        object_id=opd.code if opd else None,
    )
    return enrolment
