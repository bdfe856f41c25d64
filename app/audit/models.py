"""Audit trail of every change: who, what, which ids, when, outcome. Never a number or label."""

from datetime import datetime

from sqlalchemy import JSON, Column, String
from sqlmodel import Field, SQLModel

from app.db import UTCDateTime, utcnow


class AuditEvent(SQLModel, table=True):
    __tablename__ = "audit_event"

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, index=True)
    actor_token_id: int | None = Field(default=None, index=True)
    actor_name: str = Field(max_length=80)
    action: str = Field(sa_column=Column(String(64), nullable=False, index=True))
    object_type: str | None = Field(default=None, max_length=32)
    object_id: str | None = Field(default=None, max_length=64)
    outcome: str = Field(default="ok", max_length=16)
    detail: dict[str, object] | None = Field(default=None, sa_column=Column(JSON))
