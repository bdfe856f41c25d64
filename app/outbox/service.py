"""What other packages may read of the outbox: timing promises and counts, never rows.

Every change of a delivery goes through `app.outbox.lifecycle`; this module is the read side.
"""

from sqlmodel import Session

from app.outbox import queries

# While a batch is being sent, its workers re-read every this many seconds who may still be
# messaged, so a STOP (or HAPUS, or a withdrawal) committed after the claim holds within it.
OPT_OUT_RECHECK_SECONDS = 0.1
# A STOP's webhook answers only after this long: by then every sending worker has re-read,
# so after the 200 nothing more leaves for that number (a request already on the wire aside).
OPT_OUT_SETTLE_SECONDS = 3 * OPT_OUT_RECHECK_SECONDS


def delivery_count(session: Session, *, campaign_id: int) -> int:
    """How many per-person delivery rows a campaign still holds."""
    return queries.campaign_delivery_count(session, campaign_id=campaign_id)


def reminders_sent(session: Session, *, enrolment_id: int | None) -> int:
    """Reminders that may have reached this enrolment's number (accepted, delivered, unknown)."""
    return queries.reminders_sent(session, enrolment_id=enrolment_id)


def outbox_counts(session: Session, *, campaign_id: int | None = None) -> dict[str, int]:
    """Deliveries by state, for one campaign or all (see `queries.outbox_counts`)."""
    return queries.outbox_counts(session, campaign_id=campaign_id)
