"""Moved by a status webhook (only ever up), and each delivered message's charge billed once."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import (
    bindparam,
    update,
)
from sqlmodel import Session, col

from app.campaigns import costs
from app.messaging.inbound import StatusEvent
from app.outbox import queries, tally
from app.outbox.lifecycle.transitions import (
    require,
    update_by_id,
)
from app.outbox.models import Delivery
from app.outbox.status_moves import DEFAULT_ZONE, StatusMoves, StatusRow, plan_moves

_STATUS_UPDATE = update_by_id(
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
