"""Skipped for an opt-out, detached or deleted for an erasure, deleted by a purge."""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection
from datetime import datetime

from sqlalchemy import (
    delete,
    update,
)
from sqlmodel import Session, col

from app.outbox import queries, tally
from app.outbox.lifecycle.transitions import (
    _Q,
    _SENDING,
    _SKIPPED,
    count_moves,
    require,
)
from app.outbox.models import Delivery
from app.outbox.status_moves import DEFAULT_ZONE


def skip_for_opt_out(session: Session, *, enrolment_ids: Collection[int], now: datetime) -> int:
    """Queued deliveries of these enrolments become `skipped`, each counted once."""
    if not enrolment_ids:
        return 0
    require(_Q, _SKIPPED)
    stmt = (
        update(Delivery)
        .where(col(Delivery.enrolment_id).in_(list(enrolment_ids)), col(Delivery.state) == _Q)
        .values(state=_SKIPPED, error_class="suppressed", updated_at=now)
        .returning(col(Delivery.campaign_id), col(Delivery.opd_id), col(Delivery.round_id))
        .execution_options(synchronize_session=False)
    )
    skipped = session.execute(stmt).all()
    # Counted on the round zone's local day, as the worker does.
    zones = queries.round_zones(session, {round_id for _, _, round_id in skipped})
    counts = Counter(
        (campaign_id, opd_id, zones.get(round_id, DEFAULT_ZONE), tally.SKIPPED)
        for campaign_id, opd_id, round_id in skipped
    )
    count_moves(session, counts, at=now)
    return sum(counts.values())


def erase_for_enrolments(
    session: Session, *, enrolment_ids: Collection[int], now: datetime
) -> None:
    """Remove the delivery rows of erased enrolments; the tallies stay as counted.

    A queued one is first counted as skipped, so figures stay whole; one a worker is sending
    right now is detached from the enrolment and left for the retention purge.
    """
    if not enrolment_ids:
        return
    ids = list(enrolment_ids)
    skip_for_opt_out(session, enrolment_ids=ids, now=now)
    require(_SENDING, _SENDING)
    session.execute(
        update(Delivery)
        .where(col(Delivery.enrolment_id).in_(ids), col(Delivery.state) == _SENDING)
        .values(enrolment_id=None, updated_at=now)
        .execution_options(synchronize_session=False)
    )
    session.execute(
        delete(Delivery)
        .where(col(Delivery.enrolment_id).in_(ids))
        .execution_options(synchronize_session=False)
    )


def purge_campaign(session: Session, *, campaign_id: int) -> None:
    """Delete every delivery row of a campaign (retention); its tallies stay."""
    session.execute(
        delete(Delivery)
        .where(col(Delivery.campaign_id) == campaign_id)
        .execution_options(synchronize_session=False)
    )
