"""The outbox's statements other than delivery writes: what is due, who may still be messaged.

Every statement that changes a delivery lives in `app.outbox.lifecycle`. Some reads here take a
row lock, so that the change that follows is decided on what is current. The one write here is
the enrolment's unreachable mark after a send answer.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any, TypeVar, cast

from sqlalchemy import Integer, case, exists, func, update
from sqlalchemy import select as core_select
from sqlmodel import Session, col, or_, select

from app.campaigns.models import Campaign, CampaignState, Round
from app.db import is_postgresql, one_of
from app.enrolment.models import Enrolment, EnrolmentStatus, Suppression
from app.outbox.models import Delivery, DeliveryState

S = TypeVar("S")


def locking(session: Session, stmt: S, *, skip_locked: bool = True) -> S:
    """The statement with FOR UPDATE on its delivery rows where the database needs it."""
    # PostgreSQL: concurrent workers skip each other's rows. SQLite: BEGIN IMMEDIATE (app.db)
    # already serialises writers, so the plain SELECT is safe there.
    if is_postgresql(session):
        locked = cast(Any, stmt).with_for_update(of=Delivery, skip_locked=skip_locked)
        return cast(S, locked)
    return stmt


def expired_leases(session: Session, *, now: datetime) -> Sequence[Any]:
    """(id, campaign, OPD, zone) of `sending` rows past their lease, locked."""
    stmt = (
        select(Delivery.id, Delivery.campaign_id, Delivery.opd_id, Round.timezone)
        .join(Round, col(Round.id) == col(Delivery.round_id))
        .where(
            col(Delivery.state) == DeliveryState.sending,
            col(Delivery.lease_expires_at) < now,
        )
    )
    return session.exec(locking(session, stmt)).all()


def due_ids(
    session: Session, *, now: datetime, limit: int, campaign_states: Sequence[CampaignState]
) -> list[int]:
    """Ids of up to `limit` unreserved queued deliveries due now, oldest first, locked."""
    due = (
        select(Delivery.id)
        .join(Campaign, col(Campaign.id) == col(Delivery.campaign_id))
        .where(
            col(Delivery.state) == DeliveryState.queued,
            col(Delivery.next_attempt_at) <= now,
            # Not reserved by a worker, or its reservation has lapsed (the worker died).
            or_(col(Delivery.lease_expires_at).is_(None), col(Delivery.lease_expires_at) < now),
            col(Campaign.state).in_([s.value for s in campaign_states]),
        )
        .order_by(col(Delivery.next_attempt_at), col(Delivery.id))
        .limit(limit)
    )
    return [i for i in session.exec(locking(session, due)).all() if i is not None]


def claim_rows(session: Session, ids: Sequence[int]) -> Sequence[Any]:
    """What a claim checks of each delivery: its zone and its person's standing."""
    suppressed = exists().where(col(Suppression.phone_index) == col(Enrolment.phone_index))
    return session.exec(
        select(  # type: ignore[call-overload]
            Delivery.id,
            Delivery.public_id,
            Delivery.campaign_id,
            Delivery.opd_id,
            Delivery.enrolment_id,
            Delivery.attempts,
            Round.timezone,
            Enrolment.status,
            Enrolment.phone_ciphertext,
            Enrolment.unreachable_at,
            suppressed.label("suppressed"),
        )
        .join(Round, col(Round.id) == col(Delivery.round_id))
        .outerjoin(Enrolment, col(Enrolment.id) == col(Delivery.enrolment_id))
        .where(col(Delivery.id).in_(ids))
    ).all()


def campaigns_by_id(session: Session, campaign_ids: Iterable[int]) -> Sequence[Campaign]:
    """The campaigns with these ids."""
    return session.exec(select(Campaign).where(col(Campaign.id).in_(set(campaign_ids)))).all()


def still_sendable(session: Session, *, enrolment_ids: Iterable[int]) -> set[int]:
    """Which of these enrolments are still active and off the suppression list."""
    ids = sorted(set(enrolment_ids))
    if not ids:
        return set()
    suppressed = exists().where(col(Suppression.phone_index) == col(Enrolment.phone_index))
    rows = session.exec(
        select(Enrolment.id).where(
            one_of(session, Enrolment.id, ids, item_type=Integer()),
            col(Enrolment.status) == EnrolmentStatus.active,
            ~suppressed,
        )
    )
    return {i for i in rows.all() if i is not None}


def owned_by(session: Session, *, ids: Sequence[int], worker_id: str) -> dict[int, datetime]:
    """Of these deliveries, those still `sending` under this worker: id → next_attempt_at."""
    owned_stmt = (
        select(Delivery.id, Delivery.next_attempt_at)
        .where(
            col(Delivery.id).in_(ids),
            col(Delivery.state) == DeliveryState.sending,
            col(Delivery.claimed_by) == worker_id,
        )
        .order_by(col(Delivery.id))
    )
    # Wait for (never skip) a row the webhook is updating: it may be settling it for us.
    rows = session.exec(locking(session, owned_stmt, skip_locked=False)).all()
    return {int(d_id): at for d_id, at in rows if d_id is not None}


def mark_enrolments_unreachable(
    session: Session, *, enrolment_ids: list[int], now: datetime
) -> None:
    """WhatsApp answered a send with "not on WhatsApp": set unreachable_at once."""
    session.execute(
        update(Enrolment)
        .where(col(Enrolment.id).in_(enrolment_ids), col(Enrolment.unreachable_at).is_(None))
        .values(unreachable_at=now)
    )


STATUS_COLUMNS = (
    col(Delivery.id),
    col(Delivery.public_id),
    col(Delivery.wamid),
    col(Delivery.state),
    col(Delivery.round_id),
    col(Delivery.campaign_id),
    col(Delivery.opd_id),
    col(Delivery.enrolment_id),
    col(Delivery.error_code),
    col(Delivery.error_class),
    col(Delivery.updated_at),
)


def named_by_statuses(
    session: Session, *, callbacks: Sequence[str], wamids: Sequence[str]
) -> Sequence[Any]:
    """The deliveries with these public ids or wamids (STATUS_COLUMNS), locked in id order.

    Id order, so that two requests never deadlock on each other's rows.
    """
    if not callbacks and not wamids:
        return []
    conditions = []
    if callbacks:
        conditions.append(one_of(session, Delivery.public_id, callbacks))
    if wamids:
        conditions.append(one_of(session, Delivery.wamid, wamids))
    stmt = core_select(*STATUS_COLUMNS).where(or_(*conditions)).order_by(col(Delivery.id))
    if is_postgresql(session):
        stmt = stmt.with_for_update(of=Delivery)
    return session.execute(stmt).all()


def round_zones(session: Session, round_ids: Iterable[int]) -> dict[int, str]:
    """Round id → its (the OPD's) time zone: the local day a tally counts on."""
    ids = sorted(set(round_ids))
    if not ids:
        return {}
    rows = session.execute(
        core_select(col(Round.id), col(Round.timezone)).where(col(Round.id).in_(ids))
    ).all()
    return {int(i): str(tz) for i, tz in rows}


def campaign_delivery_count(session: Session, *, campaign_id: int) -> int:
    """How many delivery rows a campaign holds."""
    stmt = (
        select(func.count()).select_from(Delivery).where(col(Delivery.campaign_id) == campaign_id)
    )
    return int(session.exec(stmt).one())


def reminders_sent(session: Session, *, enrolment_id: int | None) -> int:
    """Reminders that may have reached this enrolment's number (accepted, delivered, unknown)."""
    sent = (DeliveryState.accepted, DeliveryState.delivered, DeliveryState.unknown)
    stmt = (
        select(func.count())
        .select_from(Delivery)
        .where(Delivery.enrolment_id == enrolment_id, col(Delivery.state).in_(list(sent)))
    )
    return int(session.exec(stmt).one())


COUNT_KEYS = (
    "queued",
    "retrying",
    "sending",
    "sent",
    "delivered",
    "failed",
    "unknown",
    "skipped",
    "total",
)


def outbox_counts(session: Session, *, campaign_id: int | None = None) -> dict[str, int]:
    """Deliveries by state, for one campaign or all.

    `queued` waits for a first attempt, `retrying` waits after a retryable error (the two
    are disjoint); `sent` is accepted + delivered, `delivered` the part WhatsApp confirmed.
    """
    retrying = case((col(Delivery.attempts) > 0, True), else_=False)
    stmt = select(Delivery.state, retrying, func.count()).group_by(col(Delivery.state), retrying)
    if campaign_id is not None:
        stmt = stmt.where(col(Delivery.campaign_id) == campaign_id)
    counts = dict.fromkeys(COUNT_KEYS, 0)
    for state, retried, n in session.exec(stmt).all():
        counts["total"] += n
        if state == DeliveryState.queued:
            counts["retrying" if retried else "queued"] += n
        elif state in (DeliveryState.accepted, DeliveryState.delivered):
            counts["sent"] += n
            if state == DeliveryState.delivered:
                counts["delivered"] += n
        elif state in counts:
            counts[state] += n
    return counts
