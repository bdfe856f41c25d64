"""Message templates: mirrors of approved WhatsApp templates, with their neutrality findings."""

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Column, String, Text, UniqueConstraint
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
