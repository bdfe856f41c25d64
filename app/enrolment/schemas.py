"""Request and response bodies for enrolments."""

import re
from datetime import datetime
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator

from app.templates.neutrality import check_label

LABEL_MAX = 80
# C0 and C1 controls and the Unicode line/paragraph separators.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")


LABEL_TOO_LONG = f"label lebih panjang dari {LABEL_MAX} karakter"
LABEL_CONTROL = "label memuat karakter kendali yang tidak dapat ditampilkan"


def clean_label(value: str | None) -> str | None:
    """A label is optional, at most 80 characters, no control characters, no survey notes."""
    if value is None:
        return None
    value = value.strip()
    if not value:
        return None
    if len(value) > LABEL_MAX:
        raise ValueError(LABEL_TOO_LONG)
    if _CONTROL.search(value):
        raise ValueError(LABEL_CONTROL)
    findings = check_label(value)
    if findings:
        words = ", ".join(dict.fromkeys(f"«{f.matched}»" for f in findings))
        raise ValueError(
            f"label memuat {words}: label hanya untuk mengenali pegawai (nama, jabatan, unit), "
            "bukan catatan pengisian SPI, jawaban, teguran atau tautan"
        )
    return value


class ConsentIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    method: Literal["paper_form", "digital_form", "whatsapp"] = Field(
        description="How consent was given; `whatsapp` is recorded only by the webhook (YA reply)"
    )
    recorded_at: AwareDatetime | None = Field(
        default=None, description="When consent was given (default: now); not in the future"
    )
    notice_version: str | None = Field(
        default=None, max_length=32, description="Privacy-notice version the person agreed to"
    )

    @field_validator("method")
    @classmethod
    def _not_whatsapp(cls, value: str) -> str:
        if value == "whatsapp":
            raise ValueError(
                "persetujuan lewat WhatsApp hanya dicatat saat pegawai sendiri membalas YA"
            )
        return value


class EnrolmentCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    phone: str = Field(max_length=64, examples=["0812-3456-7890"])
    label: str | None = Field(default=None, max_length=200, examples=["Bagian Umum"])
    consent: ConsentIn

    _label = field_validator("label")(clean_label)


class EnrolmentPublic(BaseModel):
    id: str
    opd_code: str
    phone_masked: str | None
    label: str | None
    consent_method: str
    consent_recorded_at: datetime
    consent_notice_version: str
    enrolled_at: datetime


class EnrolmentPage(BaseModel):
    items: list[EnrolmentPublic]
    total: int
    limit: int
    offset: int


class ImportSummary(BaseModel):
    total_rows: int = 0
    enrolled: int = 0
    duplicate: int = 0
    invalid: int = 0
    not_applied: int = 0  # valid rows left out because all_or_nothing found bad rows
    applied: bool = True
