"""HAPUS: remove a number's listings and their delivery rows; keep only the blind index.

HAPUS deletes every listing of the number, in every OPD, and their per-person delivery rows
(`app.outbox.lifecycle.erase_for_enrolments`: a queued delivery is first counted as skipped,
so figures stay whole; one a worker is sending right now is detached and left for the
retention purge). What survives is the suppression's blind index and source, and the
aggregate tallies; no id or timestamp a coordinator saw. Nothing goes to the audit trail
(invariant 5).
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime

from sqlalchemy import delete
from sqlmodel import Session, col

from app.enrolment.models import Enrolment, EnrolmentStatus, SuppressionSource
from app.enrolment.optout import tally_per_listing
from app.enrolment.suppression_list import HELD, held_enrolments, suppress
from app.outbox import lifecycle as delivery_lifecycle

_CHUNK = 1000


def delete_enrolments(session: Session, *, enrolment_ids: Collection[int], now: datetime) -> None:
    """Delete these enrolment rows after their delivery rows (no tally: the caller counts)."""
    ids = sorted(set(enrolment_ids))
    # In chunks: a purge may remove many thousands, past SQLite's bound-parameter limit.
    for start in range(0, len(ids), _CHUNK):
        chunk = ids[start : start + _CHUNK]
        delivery_lifecycle.erase_for_enrolments(session, enrolment_ids=chunk, now=now)
        session.execute(
            delete(Enrolment)
            .where(col(Enrolment.id).in_(chunk))
            .execution_options(synchronize_session=False)
        )


def erase_enrolments(session: Session, enrolments: list[Enrolment], *, now: datetime) -> None:
    """Remove these (locked) listings and their delivery rows, counting each as erased."""
    listed = [e for e in enrolments if e.status == EnrolmentStatus.active]
    tally_per_listing(session, listed, event="erased", now=now)
    delete_enrolments(session, enrolment_ids=[e.id for e in enrolments if e.id], now=now)
    for enrolment in enrolments:
        session.expunge(enrolment)


def erase(session: Session, *, index: str, now: datetime) -> int:
    """HAPUS: remove every listing of the number and its delivery rows; keep the index only.

    Returns how many listings were removed. The suppression (source erase) remains, so that the
    number is never messaged even if a coordinator lists it again (without its ciphertext);
    only the owner's DAFTAR + YA lifts it.
    """
    enrolments = held_enrolments(session, index, statuses=HELD)
    erase_enrolments(session, enrolments, now=now)
    suppress(session, index=index, source=SuppressionSource.erase)
    return len(enrolments)
