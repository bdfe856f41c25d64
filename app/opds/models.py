"""Organisasi Perangkat Daerah: the departments whose staff are reminded."""

from datetime import datetime

from sqlalchemy import Column, String
from sqlmodel import Field, SQLModel

from app.db import UTCDateTime, utcnow


class Opd(SQLModel, table=True):
    __tablename__ = "opd"

    id: int | None = Field(default=None, primary_key=True)
    code: str = Field(sa_column=Column(String(32), nullable=False, unique=True))
    name: str = Field(max_length=200)
    timezone: str = Field(max_length=32)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
