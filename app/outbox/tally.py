"""Aggregate delivery counters: one vocabulary of outcomes for the worker, webhook and stats."""

from datetime import datetime
from zoneinfo import ZoneInfo

from sqlmodel import Session

from app.db import increment_counter
from app.outbox.models import DeliveryTally

# Each delivery adds to "scheduled" once when created and to at most one of each later outcome.
SCHEDULED = "scheduled"
ACCEPTED = "accepted"
DELIVERED = "delivered"
FAILED_NOT_ON_WHATSAPP = "failed_not_on_whatsapp"
FAILED_REFUSED = "failed_refused"
FAILED_OTHER = "failed_other"
UNKNOWN = "unknown"
SKIPPED = "skipped"
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
)

# WhatsApp declined to deliver to this person (their settings, Meta's limits), as opposed to
# the number not being on WhatsApp or a fault on our side.
_REFUSED_CODES = frozenset({131047, 131049, 131050, 130472})


def failure_outcome(error_code: int | None) -> str:
    """The failure class of a WhatsApp error code: not on WhatsApp, refused, or other."""
    if error_code == 131026:
        return FAILED_NOT_ON_WHATSAPP
    if error_code in _REFUSED_CODES:
        return FAILED_REFUSED
    return FAILED_OTHER


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
    if outcome not in OUTCOMES:
        raise ValueError(f"unknown delivery outcome {outcome!r}")
    day = at.astimezone(ZoneInfo(timezone)).date()
    increment_counter(
        session,
        DeliveryTally,
        keys={"campaign_id": campaign_id, "opd_id": opd_id, "day": day, "outcome": outcome},
        amount=amount,
    )
