"""The employee's own acts on their enrolment: stop, resume, erase, self-enrol, change number.

Everything here is keyed by the number's blind index and runs in the caller's transaction
(flush, never commit), so that the webhook's 200 means it is stored. Nothing here is written
to the audit trail: a per-person record of who stopped or resumed is exactly the opt-out list
invariant 5 forbids. Counts go to `EnrolmentTally` instead, with these events besides the
service's `enrolled`/`withdrawn`: `opted_out`, `resumed`, `erased`, `unreachable`.

Rules decided here:
- Suppression sources have a precedence, erase > stop > marketing_optout: a later, weaker
  source never replaces a stronger one (a STOP after HAPUS stays an erase).
- MULAI lifts `stop` and `marketing_optout` (both were this number's own choice), never
  `erase`. WhatsApp's marketing "resume" lifts only `marketing_optout`.
- DAFTAR + YA, both sent from the number itself, is a fresh and explicit consent by its owner:
  it lifts any suppression, including one left by HAPUS. If an opted-out enrolment of the
  number is still held, that one is re-activated with the new consent (and OPD), so that its
  delivery history keeps counting against the per-person budget; after HAPUS nothing is held
  and a new enrolment starts.
- HAPUS erases the enrolments (ciphertext, label, index) and their per-person delivery rows;
  a queued delivery is first counted as skipped, so figures stay whole; a delivery a worker is
  sending right now is detached from the enrolment and left for the retention purge.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import delete, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, func, select

from app.audit import service as audit_service
from app.auth.models import Role
from app.auth.principal import Principal
from app.campaigns.models import Round
from app.db import is_postgresql
from app.enrolment import service as enrolment_service
from app.enrolment.models import (
    ConsentMethod,
    Enrolment,
    EnrolmentStatus,
    Suppression,
    SuppressionSource,
)
from app.enrolment.phones import InvalidPhone, normalise_phone
from app.errors import Conflict, Invalid
from app.opds.models import Opd
from app.outbox import tally as outbox_tally
from app.outbox.models import Delivery, DeliveryState
from app.security import PhoneVault

OWNER_ACTOR_NAME = "whatsapp:owner"
_PRECEDENCE = {
    SuppressionSource.marketing_optout: 1,
    SuppressionSource.stop: 2,
    SuppressionSource.erase: 3,
}
SENT_STATES = (DeliveryState.accepted, DeliveryState.delivered, DeliveryState.unknown)
_HELD = (EnrolmentStatus.active, EnrolmentStatus.opted_out)


def insert_if_absent(session: Session, model: Any, values: dict[str, Any]) -> bool:
    """INSERT … ON CONFLICT DO NOTHING on the primary key; True when the row was new."""
    if is_postgresql(session):
        from sqlalchemy.dialects.postgresql import insert as dialect_insert
    else:
        from sqlalchemy.dialects.sqlite import insert as dialect_insert  # type: ignore[assignment]
    table = model.__table__
    stmt = (
        dialect_insert(table)
        .values(**values)
        .on_conflict_do_nothing()
        .returning(*table.primary_key.columns)
    )
    # RETURNING, not rowcount: psycopg may report -1 for a skipped row.
    return session.execute(stmt).first() is not None


def suppression_of(session: Session, index: str, *, lock: bool = False) -> Suppression | None:
    """The suppression row of a number, fresh from the database."""
    stmt = select(Suppression).where(Suppression.phone_index == index)
    if lock:
        stmt = stmt.with_for_update()
    return session.exec(stmt.execution_options(populate_existing=True)).first()


def suppress(session: Session, *, index: str, source: SuppressionSource, now: datetime) -> str:
    """Put a number on the suppression list; returns the source in force afterwards."""
    if insert_if_absent(
        session, Suppression, {"phone_index": index, "source": source.value, "since": now}
    ):
        return source.value
    row = suppression_of(session, index, lock=True)
    if row is None:  # deleted between the two statements: insert again
        session.add(Suppression(phone_index=index, source=source.value, since=now))
        session.flush()
        return source.value
    if _PRECEDENCE.get(SuppressionSource(row.source), 0) < _PRECEDENCE[source]:
        row.source = source.value
        row.since = now
        session.add(row)
        session.flush()
    return row.source


def _held_enrolments(session: Session, index: str, *, statuses: Iterable[str]) -> list[Enrolment]:
    stmt = (
        select(Enrolment)
        .where(Enrolment.phone_index == index, col(Enrolment.status).in_(list(statuses)))
        .order_by(col(Enrolment.id))
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    return list(session.exec(stmt).all())


def _round_zones(session: Session, round_ids: Collection[int]) -> dict[int, str]:
    if not round_ids:
        return {}
    rows = session.exec(select(Round.id, Round.timezone).where(col(Round.id).in_(list(round_ids))))
    return {int(i): tz for i, tz in rows.all() if i is not None}


def skip_queued_deliveries(
    session: Session, *, enrolment_ids: Collection[int], now: datetime
) -> int:
    """Queued deliveries of these enrolments become `skipped`, each counted once."""
    if not enrolment_ids:
        return 0
    stmt = (
        update(Delivery)
        .where(
            col(Delivery.enrolment_id).in_(list(enrolment_ids)),
            col(Delivery.state) == DeliveryState.queued,
        )
        .values(state=DeliveryState.skipped, error_class="suppressed", updated_at=now)
        .returning(col(Delivery.campaign_id), col(Delivery.opd_id), col(Delivery.round_id))
        .execution_options(synchronize_session=False)
    )
    counts: dict[tuple[int, int, int], int] = defaultdict(int)
    for campaign_id, opd_id, round_id in session.execute(stmt).all():
        counts[(campaign_id, opd_id, round_id)] += 1
    # Counted on the round zone's local day, as the worker does.
    zones = _round_zones(session, {r for _, _, r in counts})
    for (campaign_id, opd_id, round_id), amount in sorted(counts.items()):
        outbox_tally.count_outcome(
            session,
            campaign_id=campaign_id,
            opd_id=opd_id,
            timezone=zones.get(round_id, "Asia/Jakarta"),
            outcome=outbox_tally.SKIPPED,
            at=now,
            amount=amount,
        )
    return sum(counts.values())


def _purge_deliveries(session: Session, *, enrolment_ids: Collection[int], now: datetime) -> None:
    """Remove the per-person delivery rows of erased enrolments; the tallies stay as counted."""
    if not enrolment_ids:
        return
    ids = list(enrolment_ids)
    skip_queued_deliveries(session, enrolment_ids=ids, now=now)
    session.execute(
        update(Delivery)
        .where(col(Delivery.enrolment_id).in_(ids), col(Delivery.state) == DeliveryState.sending)
        .values(enrolment_id=None, updated_at=now)
        .execution_options(synchronize_session=False)
    )
    session.execute(
        delete(Delivery)
        .where(col(Delivery.enrolment_id).in_(ids))
        .execution_options(synchronize_session=False)
    )


def _erase_enrolments(session: Session, enrolments: list[Enrolment], *, now: datetime) -> None:
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
    _purge_deliveries(session, enrolment_ids=[e.id for e in enrolments if e.id], now=now)


def _opt_out(session: Session, enrolments: list[Enrolment], *, now: datetime) -> int:
    changed = 0
    for enrolment in enrolments:
        if enrolment.status == EnrolmentStatus.active:
            enrolment.status = EnrolmentStatus.opted_out
            enrolment.ended_at = now
            session.add(enrolment)
            enrolment_service.tally(session, opd_id=enrolment.opd_id, event="opted_out", at=now)
            changed += 1
    session.flush()
    skip_queued_deliveries(session, enrolment_ids=[e.id for e in enrolments if e.id], now=now)
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
    return _opt_out(session, _held_enrolments(session, index, statuses=_HELD), now=now)


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
    active = _held_enrolments(session, index, statuses=[EnrolmentStatus.active])
    if active:
        return ResumeResult(ResumeOutcome.already_active, active[0].opd_id)
    held = [
        e
        for e in _held_enrolments(session, index, statuses=[EnrolmentStatus.opted_out])
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


def erase(session: Session, *, index: str, now: datetime) -> int:
    """HAPUS: erase every enrolment of the number and its delivery rows; keep the index only.

    Returns how many enrolments were erased. The suppression (source erase) remains so that no
    coordinator can enrol the number again; the owner can, with DAFTAR + YA.
    """
    enrolments = _held_enrolments(session, index, statuses=_HELD)
    _erase_enrolments(session, enrolments, now=now)
    suppress(session, index=index, source=SuppressionSource.erase, now=now)
    return len(enrolments)


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
        .where(Enrolment.phone_index == index, col(Enrolment.status).in_(list(_HELD)))
        .order_by(col(Enrolment.enrolled_at))
    ).all()
    held = []
    for enrolment, opd in rows:
        sent = session.exec(
            select(func.count())
            .select_from(Delivery)
            .where(
                Delivery.enrolment_id == enrolment.id,
                col(Delivery.state).in_(list(SENT_STATES)),
            )
        ).one()
        label = vault.decrypt(enrolment.label_ciphertext) if enrolment.label_ciphertext else None
        held.append(
            HeldEnrolment(
                opd_name=opd.name,
                opd_timezone=opd.timezone,
                enrolled_at=enrolment.enrolled_at,
                consent_method=enrolment.consent_method,
                status=enrolment.status,
                reminders_sent=int(sent),
                label=label,
                unreachable=enrolment.unreachable_at is not None,
            )
        )
    row = suppression_of(session, index)
    return HeldData(enrolments=held, suppression=row.source if row else None)


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


def active_enrolment_opd(session: Session, index: str) -> int | None:
    """The OPD of the number's active enrolment, if it has one."""
    return session.exec(
        select(Enrolment.opd_id).where(
            Enrolment.phone_index == index, Enrolment.status == EnrolmentStatus.active
        )
    ).first()


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
            held = _held_enrolments(session, index, statuses=[EnrolmentStatus.opted_out])
            held = [e for e in held if e.phone_ciphertext is not None]
            if held:
                # Re-use the most recent held enrolment: its delivery history keeps counting
                # against max_reminders and min_gap_days (invariant 9). Older ones go.
                _erase_enrolments(session, held[:-1], now=now)
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
    enrolments = _held_enrolments(session, old_index, statuses=_HELD)
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
    # _opt_out sets the status before it flushes, so the partial unique index on active
    # numbers never sees a moved active row next to the new number's own.
    _opt_out(session, to_opt_out, now=now)
    _erase_enrolments(session, to_erase, now=now)
    session.flush()
    return len(enrolments)


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
