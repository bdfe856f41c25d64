"""The moves a delivery may make (`TRANSITIONS`), the check every write makes, and the tallies.

Every module of this package asks `require` before it writes a move; a move outside the table is
a bug and raises `ForbiddenTransition`.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import (
    bindparam,
    update,
)
from sqlalchemy.sql.dml import Update
from sqlmodel import Session, col

from app.outbox import tally
from app.outbox.models import Delivery, DeliveryState

_Q, _SENDING = DeliveryState.queued, DeliveryState.sending
_ACCEPTED, _DELIVERED = DeliveryState.accepted, DeliveryState.delivered
_FAILED, _UNKNOWN, _SKIPPED = DeliveryState.failed, DeliveryState.unknown, DeliveryState.skipped
_EXPIRED = DeliveryState.expired
# from-state → to-states. None is "no row": created for a round, or deleted (erased, purged).
TRANSITIONS: dict[str | None, frozenset[str | None]] = {
    # Round creation.
    None: frozenset({_Q}),
    # Claimed, deferred (queued again), skipped (claim, opt-out, erasure), undecryptable
    # (failed), or settled by a status that arrived first; deleted by a purge.
    _Q: frozenset({_Q, _SENDING, _SKIPPED, _FAILED, _ACCEPTED, _DELIVERED, None}),
    # Recorded (never sent, halted or retried → queued; accepted, failed, unknown), settled by
    # a status, lease expired (unknown), detached from an erased enrolment (sending); purged.
    _SENDING: frozenset({_SENDING, _Q, _ACCEPTED, _DELIVERED, _FAILED, _UNKNOWN, None}),
    # A status proves Meta accepted the message, whatever this side thought had happened.
    _UNKNOWN: frozenset({_ACCEPTED, _DELIVERED, _FAILED, None}),
    _SKIPPED: frozenset({_ACCEPTED, _DELIVERED, _FAILED, None}),
    _ACCEPTED: frozenset({_DELIVERED, _FAILED, _EXPIRED, None}),
    _DELIVERED: frozenset({_FAILED, None}),
    _FAILED: frozenset({None}),
    # No delivered status before the send window ended; a late status changes nothing.
    _EXPIRED: frozenset({None}),
}


class ForbiddenTransition(RuntimeError):
    """A delivery was asked to make a move `TRANSITIONS` does not allow (a bug)."""


def require(before: str | None, after: str | None) -> None:
    """Raise unless `TRANSITIONS` allows a delivery to move from `before` to `after`."""
    if after not in TRANSITIONS.get(before, frozenset()):
        raise ForbiddenTransition(f"delivery may not move from {before} to {after}")


TallyKey = tuple[int, int, str, str]  # campaign, OPD, time zone, outcome


def count_moves(session: Session, counts: Mapping[TallyKey, int], *, at: datetime) -> None:
    """Add these outcome counts to the tallies, in key order (the counters are the hot spot)."""
    for (campaign_id, opd_id, timezone, outcome), amount in sorted(counts.items()):
        tally.count_outcome(
            session,
            campaign_id=campaign_id,
            opd_id=opd_id,
            timezone=timezone,
            outcome=outcome,
            at=at,
            amount=amount,
        )


def update_by_id(**columns: Any) -> Update:
    """UPDATE of one delivery by :d_id, for Core executemany (one round trip, no ORM)."""
    return (
        update(Delivery)
        .where(col(Delivery.id) == bindparam("d_id"))
        .values(lease_expires_at=None, updated_at=bindparam("d_now"), **columns)
    )
