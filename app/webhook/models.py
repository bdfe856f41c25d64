"""What the webhook keeps: short-lived keyed hashes and pending sign-ups, never message text."""

from datetime import date, datetime

from sqlalchemy import Column, ForeignKey, Integer, String
from sqlmodel import Field, SQLModel

from app.db import UTCDateTime


class InboundSeen(SQLModel, table=True):
    """An inbound message already handled, so that Meta's redeliveries change nothing twice.

    `key` is a keyed HMAC of the message id: a wamid embeds the sender's number, so it is never
    stored as such. Rows expire after Meta's retry horizon.
    """

    __tablename__ = "webhook_inbound_seen"

    key: str = Field(sa_column=Column(String(64), primary_key=True))
    expires_at: datetime = Field(sa_type=UTCDateTime, index=True)


class PendingSignup(SQLModel, table=True):
    """A `DAFTAR <kode OPD>` waiting for its `YA`: the blind index and the OPD, for 24 hours."""

    __tablename__ = "webhook_pending_signup"

    phone_index: str = Field(sa_column=Column(String(64), primary_key=True))
    opd_id: int = Field(
        sa_column=Column(Integer, ForeignKey("opd.id", ondelete="CASCADE"), nullable=False)
    )
    expires_at: datetime = Field(sa_type=UTCDateTime, index=True)


class AutoReplyMarker(SQLModel, table=True):
    """That one neutral automatic reply went to some number on `day`.

    `marker` is a keyed HMAC of (blind index, day): it cannot be linked to a number without the
    key, and nothing about the message that triggered it is kept. Purged after two days.
    """

    __tablename__ = "webhook_auto_reply"

    marker: str = Field(sa_column=Column(String(64), primary_key=True))
    day: date = Field(index=True)
