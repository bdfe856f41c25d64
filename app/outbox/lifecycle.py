"""A delivery's life: every change of a `delivery` row, with the tallies that go with it.

This module is the only writer of the `delivery` table; other packages (rounds, the status
webhook, opt-out and erasure, retention) and the outbox's own use cases (claim, record) decide
what an event means and call a function here. `TRANSITIONS` lists every allowed move, creation
(from None) and deletion (to None) included; a move outside it is a bug and raises.

Invariant 8 holds in these moves. A claim only reserves queued deliveries for one worker (its
name and a lease on the still `queued` row); the worker moves a few to `sending` just before
their requests leave (`mark_sending`), and a delivery is sent only by the worker whose mark
moved it. So a dead worker's reservations simply lapse and are claimed again, and only what was
marked (at most the send concurrency) can become `unknown`. Whatever happens after the request
may have left ends in a final state (`accepted`, `failed`, `unknown`), never back in `queued`.
Only sends that certainly did not happen (refused before sending, throttled, halted, or never
attempted) return to `queued`. A status webhook only moves a delivery up
(`app.outbox.status_moves`), also out of `unknown`, and the tallies follow.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Collection, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import (
    ColumnElement,
    Integer,
    Select,
    String,
    bindparam,
    case,
    delete,
    func,
    insert,
    literal,
    literal_column,
    update,
)
from sqlalchemy import select as core_select
from sqlalchemy.sql.dml import Update
from sqlalchemy.sql.selectable import Subquery
from sqlmodel import Session, col

from app.campaigns import costs
from app.db import UTCDateTime, is_postgresql
from app.enrolment.models import Enrolment
from app.messaging.inbound import StatusEvent
from app.outbox import metrics, queries, tally
from app.outbox.models import Delivery, DeliveryState
from app.outbox.status_moves import DEFAULT_ZONE, StatusMoves, StatusRow, plan_moves

logger = logging.getLogger(__name__)

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


# -- created for a round ------------------------------------------------------------------

_CREATED_COLUMNS = [
    "public_id",
    "round_id",
    "campaign_id",
    "opd_id",
    "enrolment_id",
    "state",
    "attempts",
    "next_attempt_at",
    "created_at",
    "updated_at",
]


def _random_public_id(session: Session) -> ColumnElement[str]:
    # 128 random bits as 32 hex characters, generated by the database for every row.
    if is_postgresql(session):
        return literal_column("replace(gen_random_uuid()::text, '-', '')", String())
    return literal_column("lower(hex(randomblob(16)))", String())


def create_round_deliveries(
    session: Session,
    *,
    round_id: int,
    campaign_id: int,
    timezone: str,
    send_at: datetime,
    now: datetime,
    people: Select[int | None, int],
    listed: Mapping[int, int],
) -> int:
    """Queue a delivery for every enrolment `people` selects, counted as scheduled; how many.

    `listed` (per OPD, how many people its list holds) is counted as `listed` on the same day.
    """
    require(None, _Q)
    stamp = literal(now, UTCDateTime())
    rows = people.with_only_columns(
        _random_public_id(session),
        literal(round_id, Integer()),
        literal(campaign_id, Integer()),
        col(Enrolment.opd_id),
        col(Enrolment.id),
        literal(_Q.value, String()),
        literal(0, Integer()),
        literal(send_at, UTCDateTime()),
        stamp,
        stamp,
    )
    session.execute(insert(Delivery).from_select(_CREATED_COLUMNS, rows))
    per_opd = session.execute(
        core_select(col(Delivery.opd_id), func.count())
        .where(col(Delivery.round_id) == round_id)
        .group_by(col(Delivery.opd_id))
    ).all()
    counts = {(campaign_id, opd_id, timezone, tally.SCHEDULED): n for opd_id, n in per_opd}
    counts |= {
        (campaign_id, opd_id, timezone, tally.LISTED): n for opd_id, n in listed.items() if n
    }
    count_moves(session, counts, at=send_at)
    return sum(count for _, count in per_opd)


def spread_round(
    session: Session,
    *,
    round_id: int,
    campaign_id: int,
    timezone: str,
    batches: Sequence[tuple[datetime, int]],
    fair: Subquery,
    now: datetime,
) -> int:
    """Give a new round's deliveries, in `fair` order (id, position), the moments of `batches`.

    Deliveries beyond the batches (no moment left before the campaign ends) are skipped with
    `messaging_limit` and counted as skipped; how many.
    """
    moments = []
    upper = 0
    for at, people in batches:
        upper += people
        moments.append((fair.c.position <= upper, literal(at, UTCDateTime())))
    if moments:
        require(_Q, _Q)
        session.execute(
            update(Delivery)
            .where(col(Delivery.id) == fair.c.id, fair.c.position <= upper)
            .values(next_attempt_at=case(*moments), updated_at=now)
            .execution_options(synchronize_session=False)
        )
    require(_Q, _SKIPPED)
    beyond = core_select(fair.c.id).where(fair.c.position > upper)
    skipped = session.execute(
        update(Delivery)
        .where(col(Delivery.id).in_(beyond))
        .values(state=_SKIPPED, error_class="messaging_limit", updated_at=now)
        .returning(col(Delivery.opd_id))
        .execution_options(synchronize_session=False)
    ).all()
    counts = Counter((campaign_id, opd_id, timezone, tally.SKIPPED) for (opd_id,) in skipped)
    count_moves(session, counts, at=now)
    return len(skipped)


# -- claimed --------------------------------------------------------------------------------


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
        require(_Q, _Q)
        session.execute(
            update(Delivery)
            .where(col(Delivery.id).in_(reserved))
            .values(claimed_by=worker_id, lease_expires_at=lease_until, updated_at=now)
        )
    for reason, batch in skipped.items():
        require(_Q, _SKIPPED)
        session.execute(
            update(Delivery)
            .where(col(Delivery.id).in_(batch))
            .values(state=_SKIPPED, error_class=reason, updated_at=now)
        )
    for when, batch in deferred.items():
        require(_Q, _Q)
        session.execute(
            update(Delivery)
            .where(col(Delivery.id).in_(batch))
            .values(next_attempt_at=when, updated_at=now)
        )
    if undecryptable:
        require(_Q, _FAILED)
        session.execute(
            update(Delivery)
            .where(col(Delivery.id).in_(undecryptable))
            .values(state=_FAILED, error_class="undecryptable", updated_at=now)
        )
    count_moves(session, counts, at=now)


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


# -- recorded -------------------------------------------------------------------------------


def _update_by_id(**columns: Any) -> Update:
    """UPDATE of one delivery by :d_id, for Core executemany (one round trip, no ORM)."""
    return (
        update(Delivery)
        .where(col(Delivery.id) == bindparam("d_id"))
        .values(lease_expires_at=None, updated_at=bindparam("d_now"), **columns)
    )


_RECORD = _update_by_id(
    state=bindparam("d_state"),
    attempts=bindparam("d_attempts"),
    next_attempt_at=bindparam("d_next"),
    wamid=bindparam("d_wamid"),
    error_code=bindparam("d_code"),
    error_class=bindparam("d_class"),
    claimed_by=None,
)


def record_sends(session: Session, *, rows: Sequence[dict[str, object]]) -> None:
    """Write send results of deliveries this worker holds in `sending` (see app.outbox.record).

    Each row has d_id, d_state, d_attempts, d_next, d_wamid, d_code, d_class and d_now.
    """
    for row in rows:
        require(_SENDING, str(row["d_state"]))
    if rows:
        # Core executemany: one UPDATE per row in one round trip, no ORM bookkeeping.
        session.connection().execute(_RECORD, list(rows))


# -- moved by a status ----------------------------------------------------------------------

_STATUS_UPDATE = _update_by_id(
    state=bindparam("d_state"),
    wamid=bindparam("d_wamid"),
    error_code=bindparam("d_code"),
    error_class=bindparam("d_class"),
)


def apply_statuses(
    session: Session, events: Sequence[StatusEvent], *, now: datetime
) -> StatusMoves:
    """Move the deliveries these statuses name (only ever up) and count each outcome once."""
    if not events:
        return StatusMoves()
    named = queries.named_by_statuses(
        session,
        callbacks=sorted({e.callback for e in events if e.callback}),
        wamids=sorted({e.wamid for e in events if e.wamid}),
    )
    rows = [StatusRow(*row) for row in named]
    # The round's zone is the OPD's: the same local day the worker counts in.
    zones = queries.round_zones(session, {d.round_id for d in rows})
    moves, counts = plan_moves(rows, events, zones=zones, now=now)
    changed = []
    for d in rows:
        if d.changed:
            require(d.loaded_state, d.state)
            changed.append(
                {
                    "d_id": d.id,
                    "d_state": d.state,
                    "d_wamid": d.wamid,
                    "d_code": d.error_code,
                    "d_class": d.error_class,
                    "d_now": now,
                }
            )
    if changed:
        session.connection().execute(_STATUS_UPDATE, changed)
    _bill(session, rows, events, zones=zones, now=now)
    # Counters last and in key order: their rows are the hot spot, held for the shortest time.
    for (campaign_id, opd_id, _day, outcome), count in sorted(counts.items()):
        tally.count_outcome(
            session,
            campaign_id=campaign_id,
            opd_id=opd_id,
            timezone=count.timezone,
            outcome=outcome,
            at=count.at,
            amount=count.amount,
        )
    return moves


def _bill(
    session: Session,
    rows: Sequence[StatusRow],
    events: Sequence[StatusEvent],
    *,
    zones: Mapping[int, str],
    now: datetime,
) -> None:
    """Count each delivery's charge once: the first status carrying it marks the row billed."""
    found = {d.public_id: d for d in rows} | {d.wamid: d for d in rows if d.wamid}
    charges: dict[int, tuple[str, datetime, StatusRow]] = {}
    for e in events:
        category = costs.charged_category(e.status, e.pricing)
        d = found.get(e.callback or "") or found.get(e.wamid or "")
        if category is not None and d is not None and d.id not in charges:
            in_horizon = e.at is not None and now - timedelta(days=7) <= e.at <= now
            charges[d.id] = (category, e.at if e.at and in_horizon else now, d)
    sums: dict[tuple[int, int, str, str, str], list[Any]] = {}
    for category in sorted({c for c, _, _ in charges.values()}):
        ids = [d_id for d_id, (c, _, _) in charges.items() if c == category]
        billed = session.execute(
            update(Delivery)
            .where(col(Delivery.id).in_(ids), col(Delivery.billed_category).is_(None))
            .values(billed_category=category)
            .returning(col(Delivery.id))
            .execution_options(synchronize_session=False)
        ).all()
        outcome = tally.BILLED.get(category, tally.BILLED_OTHER)
        for (d_id,) in billed:
            _, at, d = charges[d_id]
            zone = zones.get(d.round_id, DEFAULT_ZONE)
            day = at.astimezone(ZoneInfo(zone)).date().isoformat()
            sums.setdefault((d.campaign_id, d.opd_id, zone, outcome, day), [at, 0])[1] += 1
    for (campaign_id, opd_id, zone, outcome, _), (at, amount) in sorted(sums.items()):
        tally.count_outcome(
            session,
            campaign_id=campaign_id,
            opd_id=opd_id,
            timezone=zone,
            outcome=outcome,
            at=at,
            amount=amount,
        )


# -- expired ----------------------------------------------------------------------------------


def expire_undelivered(
    session: Session, *, deliveries: Sequence[tuple[int, int, int, str]], now: datetime
) -> int:
    """Accepted deliveries (id, campaign, OPD, zone) still undelivered become `expired`.

    Only those still `accepted` move, so a delivered status that won the race keeps its
    delivery, and each expiry is counted once; how many moved.
    """
    if not deliveries:
        return 0
    require(_ACCEPTED, _EXPIRED)
    keys = {d_id: (campaign_id, opd_id, tz) for d_id, campaign_id, opd_id, tz in deliveries}
    moved = session.execute(
        update(Delivery)
        .where(col(Delivery.id).in_(list(keys)), col(Delivery.state) == _ACCEPTED)
        .values(state=_EXPIRED, error_class="expired", updated_at=now)
        .returning(col(Delivery.id))
        .execution_options(synchronize_session=False)
    ).all()
    count_moves(session, Counter((*keys[d_id], tally.EXPIRED) for (d_id,) in moved), at=now)
    return len(moved)


# -- skipped for an opt-out, erased, purged -------------------------------------------------


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
