"""Request and response bodies for OPDs."""

import re
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field, field_validator

from app.timezones import normalise_timezone

CODE_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,31}$")


def _clean_name(value: str) -> str:
    value = " ".join(value.split())
    if not value:
        raise ValueError("name must not be empty")
    if any(ord(c) < 32 or ord(c) == 127 for c in value):
        raise ValueError("name must not contain control characters")
    return value


class OpdCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    code: str = Field(description="Short unique code, e.g. DINKES", examples=["DINKES"])
    name: str = Field(max_length=200, examples=["Dinas Kesehatan"])
    timezone: str = Field(
        default="Asia/Jakarta",
        description="Asia/Jakarta, Asia/Pontianak, Asia/Makassar, Asia/Jayapura, or WIB/WITA/WIT",
    )

    @field_validator("code")
    @classmethod
    def _code(cls, value: str) -> str:
        value = value.strip().upper()
        if not CODE_PATTERN.match(value):
            raise ValueError("code: 1-32 letters, digits, '.', '_' or '-'")
        return value

    _name = field_validator("name")(_clean_name)

    @field_validator("timezone")
    @classmethod
    def _tz(cls, value: str) -> str:
        return normalise_timezone(value)


class OpdRename(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(max_length=200)

    _name = field_validator("name")(_clean_name)


class OpdPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    code: str
    name: str
    timezone: str
    created_at: datetime


class OpdImportRow(BaseModel):
    row: int
    outcome: str
    code: str | None = None
    reason: str | None = None


class OpdImportReport(BaseModel):
    created: int
    existing: int
    invalid: int
    applied: bool
    rows: list[OpdImportRow]
