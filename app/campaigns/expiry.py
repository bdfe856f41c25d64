"""Reminders that did not reach the phone inside their send window: they expire, not arrive late.

Meta drops a message whose time-to-live passes without delivery and says nothing; its advice is
to treat a message with no `delivered` status by the end of its TTL as dropped. A reminder's
deadline here is the end of the send window on the local day it was sent (in its OPD's zone);
one still only `accepted` a grace period after that (statuses can lag) becomes `expired`, its own
outcome in the statistics ("kedaluwarsa"). A delivered status that arrives later changes
nothing, so no reminder is counted twice.
"""

import logging
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlmodel import Session, col

from app.campaigns.models import Campaign, Round
from app.campaigns.rounds import policy_for
from app.campaigns.timing import SendPolicy, window_end
from app.outbox import lifecycle as delivery_lifecycle
from app.outbox.models import Delivery, DeliveryState

logger = logging.getLogger(__name__)

BATCH = 5000


def expire_undelivered(session: Session, *, now: datetime, grace: timedelta) -> int:
    """Accepted reminders undelivered `grace` after their window closed expire; how many."""
    # A deadline is never before the send moment, so only rows sent before now - grace qualify.
    cutoff = now - grace
    policies: dict[int, SendPolicy] = {}
    expired = 0
    after_id = 0
    while True:
        rows = session.execute(
            select(
                col(Delivery.id),
                col(Delivery.campaign_id),
                col(Delivery.opd_id),
                col(Round.timezone),
                col(Delivery.next_attempt_at),
            )
            .join(Round, col(Round.id) == col(Delivery.round_id))
            .where(
                col(Delivery.state) == DeliveryState.accepted,
                col(Delivery.next_attempt_at) < cutoff,
                col(Delivery.id) > after_id,
            )
            .order_by(col(Delivery.id))
            .limit(BATCH)
        ).all()
        due = []
        for d_id, campaign_id, opd_id, timezone, sent_at in rows:
            assert d_id is not None
            if campaign_id not in policies:
                campaign = session.get(Campaign, campaign_id)
                assert campaign is not None
                policies[campaign_id] = policy_for(campaign)
            if window_end(policies[campaign_id], timezone, sent_at) <= cutoff:
                due.append((d_id, campaign_id, opd_id, timezone))
        expired += delivery_lifecycle.expire_undelivered(session, deliveries=due, now=now)
        if len(rows) < BATCH:
            break
        after_id = int(rows[-1][0])
    if expired:
        logger.info("deliveries.expired count=%d", expired)
    return expired
