"""API views of the sender state, its alerts and the pre-flight checks."""

from datetime import datetime

from pydantic import BaseModel, Field


class SenderAlertPublic(BaseModel):
    id: int
    kind: str
    subject: str | None
    message: str = Field(description="what happened and what to do, in Bahasa Indonesia")
    event_at: datetime
    raised_at: datetime
    resolved_at: datetime | None
    resolved_by: str | None


class SenderStatePublic(BaseModel):
    known: bool = Field(description="false until Meta's answer or a notice was applied")
    messaging_limit: int | None = Field(
        description="unique people per moving 24 h outside a service window; null = unlimited"
    )
    messaging_limit_tier: str | None
    throughput_per_second: int
    throughput_level: str | None
    coexistence: bool
    quality_rating: str | None
    flagged: bool
    restrictions: list[str]
    ban_state: str | None
    violation: str | None
    name_status: str | None
    registration_status: str | None
    code_verification_status: str | None
    verified_name: str | None
    refreshed_at: datetime | None
    refresh_error: str | None
    open_alerts: list[SenderAlertPublic]


class CheckPublic(BaseModel):
    key: str
    title: str = Field(description="what was checked, in Bahasa Indonesia")
    status: str = Field(description="ok, warn, fail or skip")
    detail: str = Field(description="what was found, in Bahasa Indonesia")
    advice: str | None = Field(description="what to do, in Bahasa Indonesia")


class DoctorReportPublic(BaseModel):
    ok: bool = Field(description="no check failed")
    target: str = Field(description="meta or sandbox")
    checks: list[CheckPublic]
