"""Campaigns, their OPD scope, and rounds (one firing of a campaign in one time zone)."""

from datetime import date, datetime, time
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Column, String, UniqueConstraint
from sqlmodel import Field, SQLModel

from app.db import UTCDateTime, utcnow


class CampaignState(StrEnum):
    draft = "draft"
    active = "active"
    paused = "paused"
    finished = "finished"
    purged = "purged"


class Campaign(SQLModel, table=True):
    __tablename__ = "campaign"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=200)
    spi_year: int
    first_day: date
    last_day: date
    template_id: int = Field(foreign_key="message_template.id", index=True)
    # Values for template parameters whose source is "campaign" or "fixed", by key.
    parameter_values: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON))
    all_opds: bool = True
    cron: str = Field(default="0 9 * * 1", max_length=100)
    send_start: time = time(8, 0)
    send_end: time = time(15, 0)
    skip_holidays: bool = True
    closed_dates: list[str] = Field(default_factory=list, sa_column=Column(JSON))
    friday_pause: bool = False
    max_reminders: int = 3
    min_gap_days: int = 7
    retention_days: int = 30
    state: str = Field(
        default=CampaignState.draft, sa_column=Column(String(16), nullable=False, index=True)
    )
    paused_reason: str | None = Field(default=None, max_length=300)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    finished_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    purged_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class CampaignOpd(SQLModel, table=True):
    """The OPDs a campaign covers when it is not for all OPDs."""

    __tablename__ = "campaign_opd"

    campaign_id: int = Field(foreign_key="campaign.id", primary_key=True)
    opd_id: int = Field(foreign_key="opd.id", primary_key=True)


class Round(SQLModel, table=True):
    """One firing of a campaign in one time zone; unique, so a double firing is a no-op."""

    __tablename__ = "round"
    __table_args__ = (
        UniqueConstraint("campaign_id", "timezone", "scheduled_for", name="uq_round_firing"),
    )

    id: int | None = Field(default=None, primary_key=True)
    campaign_id: int = Field(foreign_key="campaign.id", index=True)
    timezone: str = Field(max_length=32)
    scheduled_for: datetime = Field(sa_type=UTCDateTime)  # the nominal cron time
    send_at: datetime = Field(sa_type=UTCDateTime)  # after deferral to an allowed moment
    origin: str = Field(default="schedule", max_length=16)  # schedule | manual
    recipients: int = 0
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
