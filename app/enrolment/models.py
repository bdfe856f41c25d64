"""Enrolments (encrypted number + consent evidence), the suppression list, and tallies."""

from datetime import date, datetime
from enum import StrEnum

from sqlalchemy import Column, Index, String, Text, UniqueConstraint, text
from sqlmodel import Field, SQLModel

from app.db import UTCDateTime, utcnow


class ConsentMethod(StrEnum):
    paper_form = "paper_form"
    digital_form = "digital_form"
    whatsapp = "whatsapp"


class EnrolmentStatus(StrEnum):
    active = "active"
    withdrawn = "withdrawn"  # removed by a coordinator: number and label erased at once
    opted_out = "opted_out"  # the employee sent STOP; kept until purge so MULAI can resume
    erased = "erased"  # HAPUS or retention: nothing personal left


class Enrolment(SQLModel, table=True):
    __tablename__ = "enrolment"
    __table_args__ = (
        # One active enrolment per number across the institution, enforced by the database
        # so that concurrent requests and imports cannot both win.
        Index(
            "uq_enrolment_active_phone",
            "phone_index",
            unique=True,
            sqlite_where=text("status = 'active'"),
            postgresql_where=text("status = 'active'"),
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    public_id: str = Field(sa_column=Column(String(24), nullable=False, unique=True))
    opd_id: int = Field(foreign_key="opd.id", index=True)
    phone_ciphertext: str | None = Field(default=None, sa_column=Column(Text))
    phone_index: str | None = Field(default=None, sa_column=Column(String(64), index=True))
    label_ciphertext: str | None = Field(default=None, sa_column=Column(Text))
    consent_method: str = Field(sa_column=Column(String(20), nullable=False))
    consent_recorded_at: datetime = Field(sa_type=UTCDateTime)
    consent_notice_version: str = Field(max_length=32)
    consent_recorded_by: str = Field(max_length=80)
    # Deliberately not indexed on its own: every query narrows by OPD or blind index first, and
    # a status index lured planners into scanning all active rows during imports.
    status: str = Field(
        default=EnrolmentStatus.active, sa_column=Column(String(16), nullable=False)
    )
    enrolled_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    ended_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    # WhatsApp said the number is not on WhatsApp: kept out of later rounds, counted.
    unreachable_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class SuppressionSource(StrEnum):
    stop = "stop"  # the employee's own STOP; MULAI lifts it
    erase = "erase"  # HAPUS; only a fresh DAFTAR by the owner lifts it
    marketing_optout = "marketing_optout"  # WhatsApp reported the person stopped marketing


class Suppression(SQLModel, table=True):
    """Numbers that must never be enrolled or messaged; keeps only the blind index."""

    __tablename__ = "suppression"

    phone_index: str = Field(sa_column=Column(String(64), primary_key=True))
    source: str = Field(sa_column=Column(String(20), nullable=False))
    since: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class EnrolmentTally(SQLModel, table=True):
    """Per OPD and day: how many enrolments started or ended, surviving every erasure."""

    __tablename__ = "enrolment_tally"
    __table_args__ = (UniqueConstraint("opd_id", "day", "event", name="uq_enrolment_tally_key"),)

    id: int | None = Field(default=None, primary_key=True)
    opd_id: int = Field(foreign_key="opd.id")
    day: date
    event: str = Field(max_length=20)
    count: int = 0
