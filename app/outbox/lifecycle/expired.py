"""Expired: accepted, but no delivered status before the send window ended."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import (
    update,
)
from sqlmodel import Session, col

from app.outbox import tally
from app.outbox.lifecycle.transitions import (
    _ACCEPTED,
    _EXPIRED,
    count_moves,
    require,
)
from app.outbox.models import Delivery


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
