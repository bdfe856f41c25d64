"""The outbox: one delivery per person per round, and aggregate counters that outlive it."""

from datetime import date, datetime
from enum import StrEnum

from sqlalchemy import Column, ForeignKey, Index, Integer, String, UniqueConstraint, text
from sqlmodel import Field, SQLModel

from app.db import UTCDateTime, utcnow


class DeliveryState(StrEnum):
    queued = "queued"  # waiting for next_attempt_at (also after a retryable error)
    sending = "sending"  # claimed by a worker, lease until lease_expires_at
    accepted = "accepted"  # Meta answered 200 with a wamid (or a 'sent' status arrived)
    delivered = "delivered"  # a 'delivered' or 'read' status arrived ('read' is not stored)
    failed = "failed"  # for good; error_code / error_class say why
    unknown = "unknown"  # the request may have left; never re-sent (invariant 8)
    skipped = "skipped"  # not sent: suppressed, campaign stopped, or window closed for good
    # Accepted, but no delivered status before its send window ended: Meta drops a message whose
    # time-to-live passes undelivered, and a reminder must not arrive late anyway.
    expired = "expired"


# States that may have reached the person: they count against max_reminders and min_gap_days.
COUNTED_STATES = (
    DeliveryState.queued,
    DeliveryState.sending,
    DeliveryState.accepted,
    DeliveryState.delivered,
    DeliveryState.unknown,
    # Without a TTL on its template Meta may still deliver it: it keeps counting, to be safe.
    DeliveryState.expired,
)
FINAL_STATES = (
    DeliveryState.accepted,
    DeliveryState.delivered,
    DeliveryState.failed,
    DeliveryState.unknown,
    DeliveryState.skipped,
    DeliveryState.expired,
)


class Delivery(SQLModel, table=True):
    __tablename__ = "delivery"
    __table_args__ = (
        UniqueConstraint("round_id", "enrolment_id", name="uq_delivery_per_round"),
        # Workers claim `queued` rows by next_attempt_at and recover `sending` rows.
        Index("ix_delivery_due", "state", "next_attempt_at"),
        # Rows get a wamid only once Meta accepts them; a round inserts them all without one.
        Index(
            "ix_delivery_wamid",
            "wamid",
            postgresql_where=text("wamid IS NOT NULL"),
            sqlite_where=text("wamid IS NOT NULL"),
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    # The random callback id sent with each message, so a status finds its delivery; never an
    # employee id.
    public_id: str = Field(sa_column=Column(String(32), nullable=False, unique=True))
    # round_id is indexed through uq_delivery_per_round. campaign_id and opd_id repeat what the
    # round and the enrolment already say, so they carry no foreign key: a round inserts
    # hundreds of thousands of rows and each key check costs more than the row itself.
    round_id: int = Field(foreign_key="round.id")
    campaign_id: int = Field(index=True)
    opd_id: int
    enrolment_id: int | None = Field(
        default=None,
        sa_column=Column(Integer, ForeignKey("enrolment.id", ondelete="SET NULL"), index=True),
    )
    state: str = Field(sa_column=Column(String(16), nullable=False))
    attempts: int = 0
    next_attempt_at: datetime = Field(sa_type=UTCDateTime)
    lease_expires_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    claimed_by: str | None = Field(default=None, max_length=64)
    wamid: str | None = Field(default=None, sa_column=Column(String(128)))
    error_code: int | None = None
    error_class: str | None = Field(default=None, max_length=32)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    # Set once, when the status that carries Meta's charge arrives: a replay is not billed again.
    billed_category: str | None = Field(default=None, sa_column=Column(String(32)))


class DeliveryTally(SQLModel, table=True):
    """Per campaign, OPD, day and outcome: counts that survive the purge of deliveries."""

    __tablename__ = "delivery_tally"
    __table_args__ = (
        UniqueConstraint("campaign_id", "opd_id", "day", "outcome", name="uq_delivery_tally_key"),
    )

    id: int | None = Field(default=None, primary_key=True)
    campaign_id: int = Field(foreign_key="campaign.id", index=True)
    opd_id: int = Field(foreign_key="opd.id")
    day: date
    outcome: str = Field(max_length=32)
    count: int = 0


class SendPace(SQLModel, table=True):
    """Per sending number, the end of the last send slot a worker reserved (epoch seconds).

    Workers reserve the number's send slots here, so that all of them together keep to its
    rate (`app.outbox.sending_rate`); the database's clock is the only one that counts.
    """

    __tablename__ = "send_pace"

    sender: str = Field(sa_column=Column(String(64), primary_key=True))
    next_at: float = 0.0
