"""Where a batch of delivery statuses moves each delivery, and what each move counts.

States only move up: (queued | sending | unknown | skipped) < accepted < delivered < failed.
`sent` means accepted; `delivered`, `read` and `played` mean delivered (`read` is never stored);
`failed` is terminal and records the error code and its class. Since the end state is the
highest one seen, duplicates and any arrival order give the same result.

Tallies (`app.outbox.tally`) count each outcome of a delivery at most once, on the transition
that reaches it: any status proves Meta accepted the message, so leaving a pre-acceptance
state adds to `accepted`; reaching delivered adds to `delivered`; reaching failed adds to the
failure class. The worker records its own acceptance only if the delivery is still `sending`,
so the two never both count it. A status that moves a delivery out of `unknown` takes it back
out of the `unknown` count, on the day it was counted there (its last update), so the figures
follow what Meta proved. The day is the local day, in the round's (the OPD's) zone, of
the status timestamp, clamped to the last seven days (Meta's retry horizon).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from app.messaging.inbound import StatusEvent
from app.outbox import tally
from app.outbox.models import DeliveryState

RANK: dict[str, int] = {
    DeliveryState.queued: 0,
    DeliveryState.sending: 0,
    DeliveryState.unknown: 0,
    DeliveryState.skipped: 0,
    DeliveryState.accepted: 1,
    DeliveryState.delivered: 2,
    DeliveryState.failed: 3,
    # Final once its window ended: a late status neither moves nor counts it again.
    DeliveryState.expired: 4,
}
TARGET: dict[str, DeliveryState] = {
    "sent": DeliveryState.accepted,
    "delivered": DeliveryState.delivered,
    "read": DeliveryState.delivered,
    "played": DeliveryState.delivered,
    "failed": DeliveryState.failed,
}
_HORIZON = timedelta(days=7)
DEFAULT_ZONE = "Asia/Jakarta"


@dataclass
class StatusMoves:
    """What a batch of statuses did to deliveries; the failures for the caller to act on."""

    applied: int = 0  # moved a delivery forward
    unchanged: int = 0  # duplicate, older than the current state, or not a state we keep
    unmatched: int = 0  # no such delivery (unknown or already purged)
    outcomes: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    # Each status that failed a delivery, with the delivery's enrolment (None once erased).
    failed: list[tuple[StatusEvent, int | None]] = field(default_factory=list)
    unmatched_events: list[StatusEvent] = field(default_factory=list)


@dataclass
class StatusRow:
    """The columns of a delivery a status reads and may change (queries.STATUS_COLUMNS)."""

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
    updated_at: datetime | None = None
    changed: bool = False
    loaded_state: str = ""

    def __post_init__(self) -> None:
        self.loaded_state = self.state


@dataclass
class Count:
    """One counter increment: how many, and a time on the local day it belongs to."""

    at: datetime
    timezone: str
    amount: int = 0


CountKey = tuple[int, int, str, str]  # campaign, OPD, local day, outcome


def _event_time(event: StatusEvent, now: datetime) -> datetime:
    at = event.at
    if at is None or at > now or at < now - _HORIZON:
        return now
    return at


def plan_moves(
    rows: list[StatusRow],
    events: Sequence[StatusEvent],
    *,
    zones: dict[int, str],
    now: datetime,
) -> tuple[StatusMoves, dict[CountKey, Count]]:
    """Move `rows` (in memory) as the events say; the summary and the tallies to add."""
    moves = StatusMoves()
    by_callback = {d.public_id: d for d in rows}
    by_wamid = {d.wamid: d for d in rows if d.wamid}
    counts: dict[CountKey, Count] = {}
    for event in events:
        target = TARGET.get(event.status)
        delivery = (by_callback.get(event.callback) if event.callback else None) or (
            by_wamid.get(event.wamid) if event.wamid else None
        )
        if delivery is None:
            moves.unmatched += 1
            moves.unmatched_events.append(event)
            continue
        if target is None or RANK[target] <= RANK.get(delivery.state, 0):
            moves.unchanged += 1
            continue
        before = RANK.get(delivery.state, 0)
        outcomes: list[str] = []
        if before < RANK[DeliveryState.accepted]:
            outcomes.append(tally.ACCEPTED)
        if target is DeliveryState.delivered:
            outcomes.append(tally.DELIVERED)
        if target is DeliveryState.failed:
            meaning = event.meaning
            outcomes.append(meaning.failure_class.value)
            delivery.error_code = event.error_code
            delivery.error_class = meaning.failure_class.value
            moves.failed.append((event, delivery.enrolment_id))
        if delivery.state == DeliveryState.unknown and delivery.updated_at is not None:
            # It was counted as unknown when it became unknown (its last update), in the zone.
            _add(counts, delivery, zones, at=delivery.updated_at, outcome=tally.UNKNOWN, amount=-1)
        delivery.state = target
        delivery.changed = True
        if delivery.wamid is None and event.wamid:
            delivery.wamid = event.wamid
            by_wamid[event.wamid] = delivery
        moves.applied += 1
        at = _event_time(event, now)
        for outcome in outcomes:
            moves.outcomes[outcome] += 1
            _add(counts, delivery, zones, at=at, outcome=outcome)
    return moves, counts


def _add(
    counts: dict[CountKey, Count],
    delivery: StatusRow,
    zones: dict[int, str],
    *,
    at: datetime,
    outcome: str,
    amount: int = 1,
) -> None:
    timezone = zones.get(delivery.round_id, DEFAULT_ZONE)
    day = at.astimezone(ZoneInfo(timezone)).date().isoformat()
    key = (delivery.campaign_id, delivery.opd_id, day, outcome)
    counts.setdefault(key, Count(at=at, timezone=timezone)).amount += amount
