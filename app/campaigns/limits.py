"""Meta's messaging limit and how a round's people are spread under it.

Meta caps how many unique people a business portfolio may message outside a service window in a
moving 24 h (250 for a new portfolio, 2,000 after verification, then 10k / 100k / unlimited). A
round plans at most a safety share of that limit in any 24 h window `[x, x + 24 h)`, across all
campaigns; the rest waits for the next allowed send moments.

The guarantee rests on one rule, kept by every round: a batch placed at `t` fits only if it and
every planned send in the open neighbourhood `(t - 24 h, t + 24 h)` stay within the cap. Any
24 h window holding several batches lies in the neighbourhood of the one placed last, so no
window ever holds more than the cap. The count is of reminders, not distinct people: a person
reminded by two campaigns counts twice, which only errs on the safe side.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import func, literal, select
from sqlalchemy.sql.selectable import Subquery
from sqlmodel import Session, col

from app.config import Settings
from app.outbox.models import COUNTED_STATES, Delivery, DeliveryState
from app.sender import service as sender_service

DAY = timedelta(hours=24)
# How far the planner moves on when a moment is full; an hour keeps plans short to compute.
STEP = timedelta(hours=1)
HORIZON = timedelta(days=366)
_COUNTED = [s.value for s in COUNTED_STATES]

Load = list[tuple[datetime, int]]


def messaging_limit(session: Session, *, settings: Settings) -> int | None:
    """The portfolio's current messaging limit (unique people per moving 24 h); None = unlimited.

    The one place the limit is read: the sender's state as Meta last said it (a new portfolio's
    250 until it has), or the operator's SPI_MESSAGING_LIMIT when lower; 0 there plans rounds
    with no limit at all (benchmarks, and a sandbox playing an unlimited account).
    """
    live = sender_service.current_messaging_limit(session)
    ceiling = settings.messaging_limit
    if ceiling is None:
        return live
    if ceiling == 0:
        return None
    return ceiling if live is None else min(live, ceiling)


def cap_per_24h(limit: int | None, *, share: float) -> int | None:
    """How many reminders rounds may plan in any 24 h: the safety share of the limit."""
    if limit is None:
        return None
    return max(1, math.floor(limit * share))


def current_cap(session: Session, *, settings: Settings) -> int | None:
    """The safety share of the current messaging limit; None = unlimited."""
    limit = messaging_limit(session, settings=settings)
    return cap_per_24h(limit, share=settings.messaging_limit_safety_share)


def planned_load(
    session: Session, *, start: datetime, end: datetime, exclude_round: int | None = None
) -> Load:
    """Reminders of every campaign planned or sent in [start, end): (moment, how many)."""
    stmt = (
        select(col(Delivery.next_attempt_at), func.count())
        .where(
            col(Delivery.state).in_(_COUNTED),
            col(Delivery.next_attempt_at) >= start,
            col(Delivery.next_attempt_at) < end,
        )
        .group_by(col(Delivery.next_attempt_at))
    )
    if exclude_round is not None:
        stmt = stmt.where(col(Delivery.round_id) != exclude_round)
    return [(at, int(n)) for at, n in session.execute(stmt).all()]


@dataclass(frozen=True)
class Slot:
    """A batch of a round: when it is sent and how many people it reminds."""

    at: datetime
    people: int


@dataclass
class Spread:
    """Where a round's people go under the cap; `unplaced` cannot be reached before the end."""

    slots: list[Slot] = field(default_factory=list)
    unplaced: int = 0

    @property
    def placed(self) -> int:
        return sum(s.people for s in self.slots)

    @property
    def last_at(self) -> datetime | None:
        return self.slots[-1].at if self.slots else None


def _used(load: Load, at: datetime) -> int:
    return sum(n for moment, n in load if abs(moment - at) < DAY)


def spread(
    people: int,
    *,
    first: datetime,
    cap: int | None,
    load: Load,
    next_allowed: Callable[[datetime], datetime | None],
) -> Spread:
    """Place `people` from `first` on, at allowed moments only, never over the cap.

    `load` (the other planned sends) gains the batches placed, so the next round planned with
    the same list sees them. `next_allowed` keeps the campaign's window, weekdays, holidays and
    end; when it has no moment left, the rest is `unplaced`.
    """
    result = Spread()
    if people <= 0:
        return result
    if cap is None:
        result.slots.append(Slot(first, people))
        load.append((first, people))
        return result
    remaining = people
    at: datetime | None = first
    while remaining > 0 and at is not None:
        room = cap - _used(load, at)
        if room > 0:
            batch = min(room, remaining)
            result.slots.append(Slot(at, batch))
            load.append((at, batch))
            remaining -= batch
        at = next_allowed(at + STEP)
    result.unplaced = remaining
    return result


def loaded_spread(
    session: Session,
    *,
    people: int,
    first: datetime,
    cap: int | None,
    next_allowed: Callable[[datetime], datetime | None],
    exclude_round: int | None = None,
    extra: Sequence[tuple[datetime, int]] = (),
) -> Spread:
    """`spread` against what every campaign has planned from a day before `first` on."""
    load: Load = []
    if cap is not None and people > 0:
        # Campaigns last weeks; a year bounds the scan without missing any planned batch.
        load = planned_load(
            session, start=first - DAY, end=first + HORIZON, exclude_round=exclude_round
        )
    load.extend(extra)
    return spread(people, first=first, cap=cap, load=load, next_allowed=next_allowed)


def fair_positions(round_id: int) -> Subquery:
    """A round's queued deliveries (id, position 1…) so that every prefix is fair across OPDs.

    Each delivery's place within its OPD, as a share of the OPD's size, orders the whole round:
    any first k hold about the same share of every OPD.
    """
    share = (
        func.row_number().over(partition_by=col(Delivery.opd_id), order_by=col(Delivery.id))
        * literal(1.0)
        / func.count().over(partition_by=col(Delivery.opd_id))
    )
    inner = (
        select(
            col(Delivery.id).label("id"), col(Delivery.opd_id).label("opd_id"), share.label("share")
        )
        .where(
            col(Delivery.round_id) == round_id, col(Delivery.state) == DeliveryState.queued.value
        )
        .subquery("shares")
    )
    position = func.row_number().over(order_by=(inner.c.share, inner.c.opd_id, inner.c.id))
    return select(inner.c.id, position.label("position")).subquery("fair")
