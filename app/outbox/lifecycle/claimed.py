"""Claimed: reserved for a worker, marked `sending` just before the request leaves, released,
or found `unknown` when a lease expired."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Collection, Mapping, Sequence
from datetime import datetime

from sqlalchemy import (
    update,
)
from sqlmodel import Session, col

from app.outbox import metrics, queries, tally
from app.outbox.lifecycle.transitions import (
    _FAILED,
    _Q,
    _SENDING,
    _SKIPPED,
    _UNKNOWN,
    TallyKey,
    count_moves,
    require,
)
from app.outbox.models import Delivery

logger = logging.getLogger(__name__)


def settle_claim(
    session: Session,
    *,
    worker_id: str,
    now: datetime,
    lease_until: datetime,
    reserved: Sequence[int],
    skipped: Mapping[str, list[int]],
    deferred: Mapping[datetime, list[int]],
    undecryptable: Sequence[int],
    counts: Mapping[TallyKey, int],
) -> None:
    """Write what a claim decided about queued deliveries, then its tallies.

    Reserved ones stay `queued` under the worker's name until `lease_until`: nothing has left
    yet, so if the worker dies they are simply claimed again once the lease has passed.
    """
    if reserved:
        _move(session, now, reserved, _Q, _Q, claimed_by=worker_id, lease_expires_at=lease_until)
    for reason, batch in skipped.items():
        _move(session, now, batch, _Q, _SKIPPED, state=_SKIPPED, error_class=reason)
    for when, batch in deferred.items():
        _move(session, now, batch, _Q, _Q, next_attempt_at=when)
    if undecryptable:
        _move(session, now, undecryptable, _Q, _FAILED, state=_FAILED, error_class="undecryptable")
    count_moves(session, counts, at=now)


def _move(
    session: Session,
    now: datetime,
    ids: Collection[int],
    before: str,
    after: str,
    **values: object,
) -> None:
    """One allowed transition for these deliveries, stamped `now`."""
    require(before, after)
    session.execute(
        update(Delivery).where(col(Delivery.id).in_(list(ids))).values(**values, updated_at=now)
    )


def mark_sending(
    session: Session,
    *,
    worker_id: str,
    ids: Collection[int],
    now: datetime,
    lease_until: datetime,
) -> set[int]:
    """Move this worker's reserved deliveries to `sending` right before sending; which moved.

    Only the ones still queued under this worker's name move (an opt-out, a status, or another
    worker's claim after a lapsed reservation may have taken the others): only those are sent.
    """
    if not ids:
        return set()
    require(_Q, _SENDING)
    stmt = (
        update(Delivery)
        .where(
            col(Delivery.id).in_(list(ids)),
            col(Delivery.state) == _Q,
            col(Delivery.claimed_by) == worker_id,
        )
        .values(state=_SENDING, lease_expires_at=lease_until, updated_at=now)
        .returning(col(Delivery.id))
        .execution_options(synchronize_session=False)
    )
    return {int(i) for i in session.execute(stmt).scalars().all()}


def release_reservations(
    session: Session, *, worker_id: str, ids: Collection[int], now: datetime
) -> None:
    """Hand back reservations this worker will not send (stopping, halted): due again at once."""
    if not ids:
        return
    require(_Q, _Q)
    session.execute(
        update(Delivery)
        .where(
            col(Delivery.id).in_(list(ids)),
            col(Delivery.state) == _Q,
            col(Delivery.claimed_by) == worker_id,
        )
        .values(claimed_by=None, lease_expires_at=None, updated_at=now)
        .execution_options(synchronize_session=False)
    )


def recover_expired_leases(session: Session, *, now: datetime) -> int:
    """Deliveries left in `sending` past their lease become `unknown` (never re-sent)."""
    rows = queries.expired_leases(session, now=now)
    if not rows:
        return 0
    require(_SENDING, _UNKNOWN)
    session.execute(
        update(Delivery)
        .where(col(Delivery.id).in_([r[0] for r in rows]))
        .values(
            state=_UNKNOWN,
            error_class="lease_expired",
            lease_expires_at=None,
            claimed_by=None,
            updated_at=now,
        )
    )
    count_moves(session, Counter((c, o, tz, tally.UNKNOWN) for _, c, o, tz in rows), at=now)
    metrics.LEASES_EXPIRED.inc(len(rows))
    logger.warning("outbox.leases_expired count=%d (now unknown, not re-sent)", len(rows))
    return len(rows)
