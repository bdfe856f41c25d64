"""Request and response bodies for message templates."""

from datetime import date, datetime
from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationInfo,
    field_validator,
)

# Campaign fields a parameter can read directly; any other campaign key is looked up in the
# campaign's parameter_values.
CAMPAIGN_FIELDS = frozenset({"window_start", "window_end", "spi_year", "campaign_name"})
_DATE_FIELDS = frozenset({"window_start", "window_end"})

TemplateName = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=512, pattern=r"^[a-z0-9_]+$"),
]
Language = Annotated[
    str,
    StringConstraints(
        strip_whitespace=True, min_length=2, max_length=16, pattern=r"^[a-z]{2,3}(_[A-Z]{2})?$"
    ),
]
Body = Annotated[str, StringConstraints(min_length=1, max_length=1024)]
Reason = Annotated[str, StringConstraints(strip_whitespace=True, min_length=10, max_length=500)]


class SettingParameter(BaseModel):
    """{{n}} filled from a setting; only the institution's name may be read."""

    model_config = ConfigDict(extra="forbid")

    source: Literal["setting"]
    key: Literal["institution_name"]


class CampaignParameter(BaseModel):
    """{{n}} filled from the campaign: a field, or a key of its parameter_values."""

    model_config = ConfigDict(extra="forbid")

    source: Literal["campaign"]
    key: Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,63}$")]
    format: Literal["date_id"] | None = None

    @field_validator("format")
    @classmethod
    def _date_format_fits(cls, value: str | None, info: ValidationInfo) -> str | None:
        key = info.data.get("key")
        if value == "date_id" and key in CAMPAIGN_FIELDS and key not in _DATE_FIELDS:
            raise ValueError(f"{key} is not a date; date_id formats only dates")
        return value


class FixedParameter(BaseModel):
    """{{n}} filled with the same text for every campaign."""

    model_config = ConfigDict(extra="forbid")

    source: Literal["fixed"]
    value: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
    format: Literal["date_id"] | None = None

    @field_validator("value")
    @classmethod
    def _one_line(cls, value: str) -> str:
        if any(c in value for c in "\n\r\t") or "     " in value:
            raise ValueError("must not contain line breaks, tabs or more than four spaces")
        return value

    @field_validator("format")
    @classmethod
    def _date_value(cls, value: str | None, info: ValidationInfo) -> str | None:
        raw = info.data.get("value")
        if value == "date_id" and isinstance(raw, str):
            try:
                date.fromisoformat(raw)
            except ValueError as exc:
                raise ValueError("a date_id value must be a date (YYYY-MM-DD)") from exc
        return value


ParameterSpec = Annotated[
    SettingParameter | CampaignParameter | FixedParameter, Field(discriminator="source")
]


class TemplateCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: TemplateName = Field(examples=["spi_pengingat_umum"])
    language: Language = "id"
    category: Literal["UTILITY", "MARKETING"] = Field(
        default="UTILITY", description="UTILITY expected; MARKETING is accepted with a warning"
    )
    body: Body = Field(description="Text with positional placeholders {{1}}..{{n}}")
    parameters: list[ParameterSpec] = Field(
        default_factory=list, description="What fills each placeholder, in order"
    )
    status: Literal["SANDBOX", "APPROVED"] = Field(
        default="SANDBOX",
        description="SANDBOX for the local sandbox; APPROVED only to mirror a template Meta "
        "approved",
    )


class TemplateUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    body: Body | None = None
    parameters: list[ParameterSpec] | None = None
    category: Literal["UTILITY", "MARKETING"] | None = None


class AcknowledgementCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    finding_index: int = Field(ge=0, description="Index in the template's `findings` list")
    reason: Reason = Field(description="Why this wording is acceptable here (audited)")


class FindingPublic(BaseModel):
    index: int
    family: str
    term: str
    start: int = Field(description="Offset of the match in the body (characters)")
    end: int
    matched: str
    refused: bool = Field(description="A link: refused outright, cannot be acknowledged")
    acknowledged: bool
    acknowledged_by: str | None = None
    acknowledged_at: str | None = None
    acknowledgement_reason: str | None = None


class TemplatePublic(BaseModel):
    id: int
    name: str
    language: str
    category: str
    status: str
    source: str
    body: str
    placeholders: int | None = Field(description="Number of {{n}}; null when malformed")
    parameters: list[dict[str, object]]
    findings: list[FindingPublic]
    usable: bool
    usable_problem: str | None
    warnings: list[str]
    meta_template_id: str | None
    created_at: datetime
    updated_at: datetime


class TemplatePreview(BaseModel):
    template_id: int
    campaign_id: int | None
    sample: bool = Field(description="True when rendered with sample values, not a campaign")
    parameters: list[str]
    text: str
    usable: bool
    usable_problem: str | None


class TemplateSubmit(BaseModel):
    """Submit a template to Meta for review, as UTILITY."""

    model_config = ConfigDict(extra="forbid")

    campaign_id: int | None = Field(
        default=None,
        description="the campaign whose send window sets the time-to-live and whose values "
        "fill Meta's examples",
    )
    ttl_seconds: int | None = Field(
        default=None,
        ge=30,
        le=43200,
        description="how long Meta keeps trying to deliver one reminder (30 s to 12 h); "
        "default: the send window of the campaign (or of the campaigns using the template)",
    )


class TemplateSubmission(BaseModel):
    """What Meta answered, and what was sent for review."""

    template: TemplatePublic
    meta_template_id: str | None
    status: str
    category: str
    ttl_seconds: int
    examples: list[str]
