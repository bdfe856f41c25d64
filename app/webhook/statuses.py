"""Delivery statuses: a monotonic state per delivery and tallies counted once per outcome.

States only move up: (queued | sending | unknown | skipped) < accepted < delivered < failed.
`sent` means accepted; `delivered`, `read` and `played` mean delivered (`read` is never stored);
`failed` is terminal and records the error code and its class. Since the end state is the
highest one seen, duplicates and any arrival order give the same result.

Tallies (`app.outbox.tally`) count each outcome of a delivery at most once, on the transition
that reaches it: any status proves Meta accepted the message, so leaving a pre-acceptance
state adds to `accepted`; reaching delivered adds to `delivered`; reaching failed adds to the
failure class. The worker records its own acceptance only if the delivery is still `sending`,
so the two never both count it. The day is the local day, in the round's (the OPD's) zone, of
the status timestamp, clamped to the last seven days (Meta's retry horizon).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import bindparam, update
from sqlalchemy import select as core_select
from sqlmodel import Session, col, or_, select

from app.campaigns.models import Round
from app.db import is_postgresql, one_of
from app.enrolment import optout
from app.enrolment.models import Enrolment, SuppressionSource
from app.messaging.inbound import StatusEvent
from app.outbox import tally as outbox_tally
from app.outbox.models import Delivery, DeliveryState
from app.security import PhoneVault

RANK: dict[str, int] = {
    DeliveryState.queued: 0,
    DeliveryState.sending: 0,
    DeliveryState.unknown: 0,
    DeliveryState.skipped: 0,
    DeliveryState.accepted: 1,
    DeliveryState.delivered: 2,
    DeliveryState.failed: 3,
}
TARGET: dict[str, DeliveryState] = {
    "sent": DeliveryState.accepted,
    "delivered": DeliveryState.delivered,
    "read": DeliveryState.delivered,
    "played": DeliveryState.delivered,
    "failed": DeliveryState.failed,
}
_HORIZON = timedelta(days=7)


@dataclass
class StatusSummary:
    applied: int = 0  # moved a delivery forward
    unchanged: int = 0  # duplicate, older than the current state, or not a state we keep
    unmatched: int = 0  # no such delivery (unknown or already purged)
    suppressed: int = 0  # Meta said the person stopped marketing: suppressed
    unreachable: int = 0  # Meta said not on WhatsApp: enrolment marked unreachable
    outcomes: dict[str, int] = field(default_factory=lambda: defaultdict(int))


@dataclass
class _Count:
    """One counter increment: how many, and a time on the local day it belongs to."""

    at: datetime
    timezone: str
    amount: int = 0


def _event_time(event: StatusEvent, now: datetime) -> datetime:
    at = event.at
    if at is None or at > now or at < now - _HORIZON:
        return now
    return at


@dataclass
class _Row:
    """The columns of a delivery this module reads and may change."""

    id: int
    public_id: str
    wamid: str | None
    state: str
    round_id: int
    campaign_id: int
    opd_id: int
    enrolment_id: int | None
    error_code: int | None
    error_class: str | None
    changed: bool = False


_COLUMNS = (
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
)
# Core executemany: one statement for every changed delivery, no ORM bookkeeping.
_UPDATE = (
    update(Delivery)
    .where(col(Delivery.id) == bindparam("d_id"))
    .values(
        state=bindparam("d_state"),
        wamid=bindparam("d_wamid"),
        error_code=bindparam("d_code"),
        error_class=bindparam("d_class"),
        lease_expires_at=None,
        updated_at=bindparam("d_now"),
    )
)


def _find(session: Session, events: Sequence[StatusEvent]) -> list[_Row]:
    """The deliveries these events name, locked in id order (no deadlock between requests)."""
    callbacks = sorted({e.callback for e in events if e.callback})
    wamids = sorted({e.wamid for e in events if e.wamid})
    if not callbacks and not wamids:
        return []
    conditions = []
    if callbacks:
        conditions.append(one_of(session, Delivery.public_id, callbacks))
    if wamids:
        conditions.append(one_of(session, Delivery.wamid, wamids))
    stmt = core_select(*_COLUMNS).where(or_(*conditions)).order_by(col(Delivery.id))
    if is_postgresql(session):
        stmt = stmt.with_for_update(of=Delivery)
    return [_Row(*row) for row in session.execute(stmt).all()]


def apply_statuses(
    session: Session,
    events: Sequence[StatusEvent],
    *,
    vault: PhoneVault,
    now: datetime,
) -> StatusSummary:
    """Apply a batch of statuses in the caller's transaction."""
    summary = StatusSummary()
    if not events:
        return summary
    deliveries = _find(session, events)
    by_callback = {d.public_id: d for d in deliveries}
    by_wamid = {d.wamid: d for d in deliveries if d.wamid}
    # The round's zone is the OPD's: the same local day the worker counts in.
    zones = _round_zones(session, {d.round_id for d in deliveries})
    counts: dict[tuple[int, int, str, str], _Count] = {}
    unreachable: list[int] = []
    marketing_stopped: list[str] = []

    for event in events:
        target = TARGET.get(event.status)
        delivery = (by_callback.get(event.callback) if event.callback else None) or (
            by_wamid.get(event.wamid) if event.wamid else None
        )
        if delivery is None:
            summary.unmatched += 1
            stopped = target is DeliveryState.failed and event.meaning.stopped_marketing
            if stopped and event.recipient:
                marketing_stopped.append(vault.blind_index("+" + event.recipient))
            continue
        if target is None or RANK[target] <= RANK.get(delivery.state, 0):
            summary.unchanged += 1
            continue
        before = RANK.get(delivery.state, 0)
        outcomes: list[str] = []
        if before < RANK[DeliveryState.accepted]:
            outcomes.append(outbox_tally.ACCEPTED)
        if target is DeliveryState.delivered:
            outcomes.append(outbox_tally.DELIVERED)
        if target is DeliveryState.failed:
            meaning = event.meaning
            outcomes.append(meaning.failure_class.value)
            delivery.error_code = event.error_code
            delivery.error_class = meaning.failure_class.value
            if meaning.not_on_whatsapp and delivery.enrolment_id is not None:
                unreachable.append(delivery.enrolment_id)
            if meaning.stopped_marketing:
                index = _index_of(session, delivery, event, vault)
                if index is not None:
                    marketing_stopped.append(index)
        delivery.state = target
        delivery.changed = True
        if delivery.wamid is None and event.wamid:
            delivery.wamid = event.wamid
            by_wamid[event.wamid] = delivery
        summary.applied += 1
        at = _event_time(event, now)
        timezone = zones.get(delivery.round_id, "Asia/Jakarta")
        day = at.astimezone(ZoneInfo(timezone)).date().isoformat()
        for outcome in outcomes:
            summary.outcomes[outcome] += 1
            key = (delivery.campaign_id, delivery.opd_id, day, outcome)
            counts.setdefault(key, _Count(at=at, timezone=timezone)).amount += 1

    changed = [
        {
            "d_id": d.id,
            "d_state": d.state,
            "d_wamid": d.wamid,
            "d_code": d.error_code,
            "d_class": d.error_class,
            "d_now": now,
        }
        for d in deliveries
        if d.changed
    ]
    if changed:
        session.connection().execute(_UPDATE, changed)
    # Counters last and in key order: their rows are the hot spot, held for the shortest time.
    for (campaign_id, opd_id, _day, outcome), count in sorted(counts.items()):
        outbox_tally.count_outcome(
            session,
            campaign_id=campaign_id,
            opd_id=opd_id,
            timezone=count.timezone,
            outcome=outcome,
            at=count.at,
            amount=count.amount,
        )
    for enrolment_id in sorted(set(unreachable)):
        if optout.mark_unreachable(session, enrolment_id=enrolment_id, now=now):
            summary.unreachable += 1
    for index in sorted(set(marketing_stopped)):
        optout.stop(session, index=index, now=now, source=SuppressionSource.marketing_optout)
        summary.suppressed += 1
    return summary


def _round_zones(session: Session, round_ids: set[int]) -> dict[int, str]:
    if not round_ids:
        return {}
    rows = session.execute(
        core_select(col(Round.id), col(Round.timezone)).where(col(Round.id).in_(sorted(round_ids)))
    ).all()
    return {int(i): str(tz) for i, tz in rows}


def _index_of(
    session: Session, delivery: _Row, event: StatusEvent, vault: PhoneVault
) -> str | None:
    """The blind index of the delivery's number: from its enrolment, else the recipient id."""
    if delivery.enrolment_id is not None:
        index = session.exec(
            select(Enrolment.phone_index).where(Enrolment.id == delivery.enrolment_id)
        ).first()
        if index:
            return index
    return vault.blind_index("+" + event.recipient) if event.recipient else None
