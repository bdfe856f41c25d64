"""Request and response bodies for campaigns, rounds and plans."""

from datetime import date, datetime, time
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

from app.ids import DbId

MAX_REMINDERS = (1, 10)
MIN_GAP_DAYS = (1, 60)
RETENTION_DAYS = (1, 365)

Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
ParamKey = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,63}$")]
ParamValue = Annotated[str, StringConstraints(strip_whitespace=True, max_length=200)]
Reason = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=300)]


def _naive_time(value: time | None) -> time | None:
    if value is not None and value.tzinfo is not None:
        raise ValueError("give a local time without offset, e.g. 08:00")
    return value


def _one_line_values(values: dict[str, str] | None) -> dict[str, str] | None:
    # Meta refuses parameter values with line breaks, tabs or runs of spaces.
    for key, value in (values or {}).items():
        if any(c in value for c in "\n\r\t") or "     " in value:
            raise ValueError(f"{key}: no line breaks, tabs or more than four spaces")
    return values


def _codes(values: list[str] | None) -> list[str] | None:
    if values is None:
        return None
    return list(dict.fromkeys(v.strip().upper() for v in values if v.strip()))


class CampaignCreate(BaseModel):
    """A new campaign (created as a draft)."""

    model_config = ConfigDict(extra="forbid")

    name: Name = Field(examples=["SPI 2026"])
    spi_year: int = Field(ge=2000, le=2100, examples=[2026])
    first_day: date = Field(description="First day, inclusive, in each OPD's local time")
    last_day: date = Field(description="Last day, inclusive, in each OPD's local time")
    template_id: DbId
    parameter_values: dict[ParamKey, ParamValue] = Field(
        default_factory=dict, description="Values for the template's campaign parameters, by key"
    )
    opd_codes: list[str] = Field(
        default_factory=list, max_length=1000, description="OPD scope; empty means all OPDs"
    )
    cron: str = Field(
        default="0 9 * * 1",
        max_length=100,
        description="5-field crontab read in each OPD's own time zone (default Mondays 09:00)",
    )
    send_start: time = Field(default=time(8, 0), description="Local send window start")
    send_end: time = Field(default=time(15, 0), description="Local send window end (exclusive)")
    skip_holidays: bool = True
    closed_dates: list[date] = Field(default_factory=list, max_length=366)
    friday_pause: bool = Field(default=False, description="No sends 11:00-13:00 on Fridays")
    max_reminders: int = Field(default=3, ge=MAX_REMINDERS[0], le=MAX_REMINDERS[1])
    min_gap_days: int = Field(default=7, ge=MIN_GAP_DAYS[0], le=MIN_GAP_DAYS[1])
    retention_days: int = Field(default=30, ge=RETENTION_DAYS[0], le=RETENTION_DAYS[1])

    _times = field_validator("send_start", "send_end")(_naive_time)
    _values = field_validator("parameter_values")(_one_line_values)
    _opds = field_validator("opd_codes")(_codes)


class CampaignUpdate(BaseModel):
    """Fields to change; only what is sent is considered. `state` pauses or resumes."""

    model_config = ConfigDict(extra="forbid")

    name: Name | None = None
    spi_year: int | None = Field(default=None, ge=2000, le=2100)
    first_day: date | None = None
    last_day: date | None = None
    template_id: DbId | None = None
    parameter_values: dict[ParamKey, ParamValue] | None = None
    opd_codes: list[str] | None = Field(default=None, max_length=1000)
    cron: str | None = Field(default=None, max_length=100)
    send_start: time | None = None
    send_end: time | None = None
    skip_holidays: bool | None = None
    closed_dates: list[date] | None = Field(default=None, max_length=366)
    friday_pause: bool | None = None
    max_reminders: int | None = Field(default=None, ge=MAX_REMINDERS[0], le=MAX_REMINDERS[1])
    min_gap_days: int | None = Field(default=None, ge=MIN_GAP_DAYS[0], le=MIN_GAP_DAYS[1])
    retention_days: int | None = Field(default=None, ge=RETENTION_DAYS[0], le=RETENTION_DAYS[1])
    state: Literal["active", "paused"] | None = None
    paused_reason: Reason | None = None

    _times = field_validator("send_start", "send_end")(_naive_time)
    _values = field_validator("parameter_values")(_one_line_values)
    _opds = field_validator("opd_codes")(_codes)


class PauseRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: Reason | None = None


class CampaignPublic(BaseModel):
    id: int
    name: str
    spi_year: int
    first_day: date
    last_day: date
    template_id: int
    parameter_values: dict[str, object]
    all_opds: bool
    opd_codes: list[str] = Field(description="The OPDs in scope (all current OPDs if all_opds)")
    timezones: list[str]
    cron: str
    send_start: time
    send_end: time
    skip_holidays: bool
    closed_dates: list[date]
    friday_pause: bool
    max_reminders: int
    min_gap_days: int
    retention_days: int
    state: str
    paused_reason: str | None
    created_at: datetime
    updated_at: datetime
    finished_at: datetime | None


class RoundPublic(BaseModel):
    id: int
    timezone: str
    scheduled_for: datetime
    send_at: datetime
    origin: str
    recipients: int


class ZoneOutcome(BaseModel):
    """What a manual round did in one time zone."""

    timezone: str
    created: bool
    round: RoundPublic | None = None
    reason: str | None = None
    next_allowed_at: datetime | None = None
    next_allowed_local: str | None = None


class ManualRoundResult(BaseModel):
    campaign_id: int
    zones: list[ZoneOutcome]


class PlannedRound(BaseModel):
    nominal_at: datetime
    nominal_local: str
    send_at: datetime
    send_local: str
    deferred: bool
    reachable_now: int | None = Field(
        description="People this round would reach if created now, rounded to a multiple of 5 "
        "as the statistics are (docs/privacy.md); null for non-admins"
    )
    spread_until: datetime | None = Field(
        default=None,
        description="Under the messaging limit: when the round's last batch is sent (UTC)",
    )
    spread_days: int | None = Field(
        default=None, description="Under the messaging limit: the working days the round sends on"
    )
    reaches_everyone: bool = Field(
        default=True, description="False when the limit leaves people unreached before the end"
    )
    note: str | None = Field(default=None, description="The spread in words (Bahasa Indonesia)")


class ForecastRow(BaseModel):
    """One OPD, the group of small OPDs, or the total."""

    opd_code: str | None = Field(description="null for the total row; LAINNYA for the group")
    opd_name: str
    reminders: int = Field(
        description="reminders still to send within the limits, rounded to a multiple of 5 as "
        "the statistics are (docs/privacy.md); the total is the sum of the rows"
    )
    cost_idr: int = Field(description="reminders x the rate of the template's category")


class CostForecast(BaseModel):
    """At most what the rest of the campaign costs: people x reminders left x rate."""

    category: str = Field(description="Meta's pricing category of the campaign's template")
    rate_idr: int = Field(description="rupiah per delivered message (SPI_MESSAGE_RATES_IDR)")
    rates_as_of: date = Field(description="the date of the rate card (SPI_MESSAGE_RATES_DATE)")
    rows: list[ForecastRow]
    total: ForecastRow
    note: str = Field(description="How the forecast is made (Bahasa Indonesia)")


class ZonePlan(BaseModel):
    timezone: str
    opds: int
    rounds: list[PlannedRound]


class CampaignPlan(BaseModel):
    campaign_id: int
    state: str
    generated_at: datetime
    zones: list[ZonePlan]
    messaging_limit: int | None = Field(
        default=None, description="Meta's limit of people per moving 24 h; null = unlimited"
    )
    planned_per_24h: int | None = Field(
        default=None, description="The safety share of the limit that rounds plan at most"
    )
    warnings: list[str] = Field(
        default_factory=list, description="What the plan cannot do (Bahasa Indonesia)"
    )
    forecast: CostForecast | None = Field(
        default=None, description="The cost of the reminders still to send; null for non-admins"
    )
