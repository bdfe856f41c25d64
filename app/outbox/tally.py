"""Aggregate delivery counters: one vocabulary of outcomes for the worker, webhook and stats."""

from datetime import datetime
from zoneinfo import ZoneInfo

from sqlmodel import Session

from app.db import increment_counter
from app.messaging.meanings import FailureClass
from app.outbox.models import DeliveryTally

# Each delivery adds to "scheduled" once when created and to at most one of each later outcome.
SCHEDULED = "scheduled"
ACCEPTED = "accepted"
DELIVERED = "delivered"
FAILED_NOT_ON_WHATSAPP = FailureClass.NOT_ON_WHATSAPP.value
FAILED_REFUSED = FailureClass.REFUSED.value
FAILED_OTHER = FailureClass.OTHER.value
UNKNOWN = "unknown"
SKIPPED = "skipped"
EXPIRED = "expired"  # accepted, but not delivered before its send window ended
# Messages Meta charged for (the `pricing` of a delivered/read status), by pricing category.
BILLED_UTILITY = "billed_utility"
BILLED_MARKETING = "billed_marketing"
BILLED_OTHER = "billed_other"
BILLED = {"utility": BILLED_UTILITY, "marketing": BILLED_MARKETING}
RETRIED = "retried"  # counts attempts that were retried, not deliveries
OUTCOMES = (
    SCHEDULED,
    ACCEPTED,
    DELIVERED,
    FAILED_NOT_ON_WHATSAPP,
    FAILED_REFUSED,
    FAILED_OTHER,
    UNKNOWN,
    SKIPPED,
    RETRIED,
    EXPIRED,
    BILLED_UTILITY,
    BILLED_MARKETING,
    BILLED_OTHER,
)
# Not a send outcome: at round creation, how many people each OPD's list held (suppressed and
# de-duplicated ones included). The statistics need it for the population a coordinator knows.
LISTED = "listed"
ROUND_COUNTS = (LISTED,)


def count_outcome(
    session: Session,
    *,
    campaign_id: int,
    opd_id: int,
    timezone: str,
    outcome: str,
    at: datetime,
    amount: int = 1,
) -> None:
    """Add to the (campaign, OPD, local day, outcome) counter in the caller's transaction."""
    if outcome not in OUTCOMES and outcome not in ROUND_COUNTS:
        raise ValueError(f"unknown delivery outcome {outcome!r}")
    day = at.astimezone(ZoneInfo(timezone)).date()
    increment_counter(
        session,
        DeliveryTally,
        keys={"campaign_id": campaign_id, "opd_id": opd_id, "day": day, "outcome": outcome},
        amount=amount,
    )
