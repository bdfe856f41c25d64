"""The sending number as Meta last described it, and the alerts its changes raised.

Each group of facts keeps the time of the notice or reading that set it, so that a notice Meta
delivers late, or twice, never undoes a newer one (webhooks arrive at least once, in any order).
"""

from datetime import datetime

from sqlalchemy import JSON, Column, String, Text
from sqlmodel import Field, SQLModel

from app.db import UTCDateTime, utcnow


class SenderState(SQLModel, table=True):
    __tablename__ = "sender_state"

    id: int | None = Field(default=None, primary_key=True)
    phone_number_id: str = Field(max_length=64, unique=True)
    # Unique people per moving 24 h, as Meta's tier word (TIER_250 … TIER_UNLIMITED).
    messaging_limit_tier: str | None = Field(default=None, max_length=32)
    messaging_limit_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    throughput_level: str | None = Field(default=None, max_length=32)  # STANDARD, HIGH
    coexistence: bool = False  # also on the WhatsApp Business app: 20 messages/s
    throughput_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    quality_rating: str | None = Field(default=None, max_length=16)  # GREEN, YELLOW, RED, NA
    quality_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    flagged: bool = False  # FLAGGED until UNFLAGGED: the limit may drop within days
    flagged_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    restrictions: list[str] = Field(default_factory=list, sa_column=Column(JSON))
    ban_state: str | None = Field(default=None, max_length=32)
    violation: str | None = Field(default=None, max_length=64)
    account_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    # Facts only a reading gives (no webhook announces them).
    name_status: str | None = Field(default=None, max_length=32)
    code_verification_status: str | None = Field(default=None, max_length=32)
    registration_status: str | None = Field(default=None, max_length=32)
    verified_name: str | None = Field(default=None, max_length=256)
    refreshed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    refresh_error: str | None = Field(default=None, max_length=64)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class SenderAlert(SQLModel, table=True):
    """Something an admin must see: a lower limit, a flag, a restriction, a template stopped."""

    __tablename__ = "sender_alert"

    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(sa_column=Column(String(32), nullable=False, index=True))
    subject: str | None = Field(default=None, max_length=200)  # e.g. a template's name/language
    message: str = Field(sa_column=Column(Text, nullable=False))  # Bahasa Indonesia
    event_at: datetime = Field(sa_type=UTCDateTime)
    raised_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    resolved_at: datetime | None = Field(default=None, sa_type=UTCDateTime, index=True)
    resolved_by: str | None = Field(default=None, max_length=80)
