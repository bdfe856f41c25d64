"""The suppression list and what is held for one number, keyed by its blind index.

Suppression sources have a precedence, erase > stop > marketing_optout: a later, weaker source
never replaces a stronger one (a STOP after HAPUS stays an erase). The suppression list is the
only thing a STOP changes about a listed number: the coordinators' lists stay as they are.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import update
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, col, select

from app.db import is_postgresql
from app.enrolment.models import Enrolment, EnrolmentStatus, Suppression, SuppressionSource
from app.security import PhoneVault

_PRECEDENCE = {
    SuppressionSource.marketing_optout: 1,
    SuppressionSource.stop: 2,
    SuppressionSource.erase: 3,
}
# Enrolments that hold a number: listed ones (withdrawn rows keep no index).
HELD = (EnrolmentStatus.active,)


def insert_if_absent(session: Session, model: Any, values: dict[str, Any]) -> bool:
    """INSERT … ON CONFLICT DO NOTHING on the primary key; True when the row was new."""
    dialect_insert = postgresql.insert if is_postgresql(session) else sqlite.insert
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


def suppress(session: Session, *, index: str, source: SuppressionSource) -> bool:
    """Put a number on the suppression list (or raise its source); True if it was not on it."""
    if insert_if_absent(session, Suppression, {"phone_index": index, "source": source.value}):
        return True
    row = suppression_of(session, index, lock=True)
    if row is None:  # deleted between the two statements: insert again
        session.add(Suppression(phone_index=index, source=source.value))
        session.flush()
        return True
    if _PRECEDENCE.get(SuppressionSource(row.source), 0) < _PRECEDENCE[source]:
        row.source = source.value
        session.add(row)
        session.flush()
    return False


def held_enrolments(session: Session, index: str, *, statuses: Iterable[str]) -> list[Enrolment]:
    """The number's enrolments in these statuses, locked, oldest first."""
    stmt = (
        select(Enrolment)
        .where(Enrolment.phone_index == index, col(Enrolment.status).in_(list(statuses)))
        .order_by(col(Enrolment.id))
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    return list(session.exec(stmt).all())


def listing_opd(session: Session, index: str) -> int | None:
    """The OPD of the number's earliest listing, if it is listed anywhere."""
    return session.exec(
        select(Enrolment.opd_id)
        .where(Enrolment.phone_index == index, Enrolment.status == EnrolmentStatus.active)
        .order_by(col(Enrolment.id))
    ).first()


def restore_number(session: Session, *, vault: PhoneVault, index: str, e164: str) -> None:
    """The owner wrote from the number: listings kept without it get its ciphertext back."""
    session.execute(
        update(Enrolment)
        .where(
            col(Enrolment.phone_index) == index,
            col(Enrolment.status) == EnrolmentStatus.active,
            col(Enrolment.phone_ciphertext).is_(None),
        )
        .values(phone_ciphertext=vault.encrypt(e164))
        .execution_options(synchronize_session=False)
    )
