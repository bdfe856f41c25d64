"""Message templates: mirrors of approved WhatsApp templates, with their neutrality findings."""

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Column, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from app.db import UTCDateTime, utcnow


class TemplateStatus(StrEnum):
    approved = "APPROVED"
    pending = "PENDING"
    rejected = "REJECTED"
    paused = "PAUSED"
    disabled = "DISABLED"
    sandbox = "SANDBOX"  # registered by hand for the local sandbox; usable without Meta


class MessageTemplate(SQLModel, table=True):
    __tablename__ = "message_template"
    __table_args__ = (UniqueConstraint("name", "language", name="uq_message_template_name_lang"),)

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=512)
    language: str = Field(default="id", max_length=16)
    category: str = Field(default="UTILITY", max_length=20)
    body: str = Field(sa_column=Column(Text, nullable=False))
    status: str = Field(sa_column=Column(String(16), nullable=False))
    source: str = Field(default="manual", max_length=16)  # manual | meta
    # One entry per {{n}}: {"source": "setting"|"campaign"|"fixed", "key"/"value", "format"?}
    parameters: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(JSON))
    # Neutrality findings of the body, and the admin acknowledgements that unlock them.
    findings: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(JSON))
    acknowledgements: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(JSON))
    meta_template_id: str | None = Field(default=None, max_length=64)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class TemplateLifecycle(SQLModel, table=True):
    """Meta's side of a template: when each notice was applied, its quality, its submission.

    The times order Meta's notices: one older than what is recorded is a late or repeated
    delivery and changes nothing.
    """

    __tablename__ = "template_lifecycle"

    template_id: int = Field(
        sa_column=Column(
            Integer, ForeignKey("message_template.id", ondelete="CASCADE"), primary_key=True
        )
    )
    status_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    status_event: str | None = Field(default=None, max_length=32)  # APPROVED, PAUSED, FLAGGED …
    status_reason: str | None = Field(default=None, max_length=64)
    category_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    previous_category: str | None = Field(default=None, max_length=20)
    # Meta announces a re-categorisation a day ahead (correct_category + when).
    announced_category: str | None = Field(default=None, max_length=20)
    announced_for: datetime | None = Field(default=None, sa_type=UTCDateTime)
    quality_score: str | None = Field(default=None, max_length=16)  # GREEN, YELLOW, RED
    quality_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    send_ttl_seconds: int | None = None  # message_send_ttl_seconds given at submission
    submitted_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
