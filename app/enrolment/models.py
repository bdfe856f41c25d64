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
    # Listed: on the coordinator's list. A STOP does not change it (the suppression list is
    # the only gate, so the list cannot reveal an opt-out); HAPUS and the purge delete the row.
    active = "active"
    withdrawn = "withdrawn"  # removed by a coordinator: number and label erased at once


class Enrolment(SQLModel, table=True):
    __tablename__ = "enrolment"
    __table_args__ = (
        # One listing per number per OPD, enforced by the database so that concurrent requests
        # and imports cannot both win. Other OPDs may list the same number: refusing it would
        # tell a coordinator that someone else listed it (rounds de-duplicate by blind index).
        Index(
            "uq_enrolment_active_phone",
            "opd_id",
            "phone_index",
            unique=True,
            sqlite_where=text("status = 'active'"),
            postgresql_where=text("status = 'active'"),
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    public_id: str = Field(sa_column=Column(String(24), nullable=False, unique=True))
    opd_id: int = Field(foreign_key="opd.id", index=True)
    # None while the number is suppressed and was listed after that: the list needs only the
    # masked form and the blind index; the owner's MULAI or DAFTAR brings the number back.
    phone_ciphertext: str | None = Field(default=None, sa_column=Column(Text))
    phone_masked: str | None = Field(default=None, sa_column=Column(String(24)))
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
    # WhatsApp said the number is not on WhatsApp: kept out of later rounds, counted.
    unreachable_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class SuppressionSource(StrEnum):
    stop = "stop"  # the employee's own STOP; MULAI lifts it
    erase = "erase"  # HAPUS; only a fresh DAFTAR by the owner lifts it
    marketing_optout = "marketing_optout"  # WhatsApp reported the person stopped marketing


class Suppression(SQLModel, table=True):
    """Numbers that must never be messaged; keeps only the blind index and why.

    No timestamp: it would outlive an erasure as a per-person record of when someone decided.
    """

    __tablename__ = "suppression"

    phone_index: str = Field(sa_column=Column(String(64), primary_key=True))
    source: str = Field(sa_column=Column(String(20), nullable=False))


class EnrolmentTally(SQLModel, table=True):
    """Per OPD and day: how many enrolments started or ended, surviving every erasure."""

    __tablename__ = "enrolment_tally"
    __table_args__ = (UniqueConstraint("opd_id", "day", "event", name="uq_enrolment_tally_key"),)

    id: int | None = Field(default=None, primary_key=True)
    opd_id: int = Field(foreign_key="opd.id")
    day: date
    event: str = Field(max_length=20)
    count: int = 0
