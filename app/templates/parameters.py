"""Template parameters: validating the mappings, filling {{1}}..{{n}}, and previews.

Each ``{{n}}`` of a body has one mapping: a setting (the institution name), a campaign field or
key of its ``parameter_values``, or a fixed value. Filled values must fit Meta's rules and carry
no link or flagged wording of their own: unlike a body's findings, they cannot be acknowledged.
"""

import re
from datetime import date
from typing import Any

from pydantic import TypeAdapter, ValidationError
from sqlmodel import Session

from app.campaigns.models import Campaign
from app.config import Settings
from app.db import utcnow
from app.errors import Invalid, NotFound
from app.templates.acknowledgements import usable_problem
from app.templates.models import MessageTemplate
from app.templates.neutrality import check_text
from app.templates.rendering import format_date_id, placeholder_count, render_body
from app.templates.schemas import CAMPAIGN_FIELDS, FixedParameter, ParameterSpec, TemplatePreview

_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_PARAMETERS = TypeAdapter(list[ParameterSpec])
# What a sample preview shows for a campaign field it cannot know without a campaign.
SAMPLE_FIRST_DAY = (8, 1)
SAMPLE_LAST_DAY = (10, 31)


def validate_parameters(body: str, parameters: list[Any]) -> list[dict[str, Any]]:
    """Check the placeholders and the parameter mappings together; 422 with the reason."""
    try:
        count = placeholder_count(body)
    except ValueError as exc:
        raise Invalid(f"body: {exc}", code="template_placeholders_invalid") from exc
    try:
        specs = _PARAMETERS.validate_python(parameters)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise Invalid(
            f"parameters.{where}: {first['msg']}", code="template_parameter_invalid"
        ) from exc
    if count != len(specs):
        raise Invalid(
            f"the body has {count} placeholder(s) but {len(specs)} parameter(s) were given; "
            "give one parameter per {{n}}, in order",
            code="template_placeholder_mismatch",
        )
    for position, spec in enumerate(specs, start=1):
        if isinstance(spec, FixedParameter):
            report = check_text(spec.value)
            if report.findings:
                f = report.findings[0]
                raise Invalid(
                    f"fixed value for {{{{{position}}}}} contains {f.family} wording "
                    f"{f.matched!r}; fixed values must be neutral",
                    code="template_parameter_not_neutral",
                )
    return [s.model_dump(exclude_none=True) for s in specs]


def _as_date(value: Any) -> date | None:
    if isinstance(value, date):
        return value
    if isinstance(value, str) and _ISO_DATE.fullmatch(value.strip()):
        try:
            return date.fromisoformat(value.strip())
        except ValueError:
            return None
    return None


def _format_value(raw: Any, *, fmt: str | None, position: int) -> str:
    as_date = _as_date(raw)
    if fmt == "date_id" and as_date is None:
        raise Invalid(
            f"value for {{{{{position}}}}} must be a date (YYYY-MM-DD) to format it as a date",
            code="template_parameter_invalid",
        )
    # Dates always read the Indonesian way ("31 Oktober 2026"), formatted or not.
    if as_date is not None:
        return format_date_id(as_date)
    return str(raw)


def _campaign_value(key: str, *, campaign: Campaign, position: int) -> Any:
    if key == "window_start":
        return campaign.first_day
    if key == "window_end":
        return campaign.last_day
    if key == "spi_year":
        return campaign.spi_year
    if key == "campaign_name":
        return campaign.name
    values = campaign.parameter_values or {}
    value = values.get(key)
    if value is None or (isinstance(value, str) and not value.strip()):
        raise Invalid(
            f"campaign has no value for template parameter {key!r} (placeholder "
            f"{{{{{position}}}}}); set parameter_values.{key}",
            code="template_parameter_missing",
        )
    return value


def _check_values(template: MessageTemplate, values: list[str]) -> list[str]:
    """Values must fit Meta's rules and carry no link or flagged wording of their own."""
    try:
        render_body(template.body, values)
    except ValueError as exc:
        raise Invalid(
            f"template {template.name!r}: {exc}", code="template_parameter_invalid"
        ) from exc
    for position, value in enumerate(values, start=1):
        report = check_text(value)
        if report.findings:
            f = report.findings[0]
            raise Invalid(
                f"value for {{{{{position}}}}} contains {f.family} wording {f.matched!r}; "
                "parameter values cannot be acknowledged, so they must be neutral",
                code="template_parameter_not_neutral",
            )
    return values


def body_parameters(
    template: MessageTemplate, *, campaign: Campaign, settings: Settings
) -> list[str]:
    """The values for {{1}}..{{n}} in order, for this campaign; Invalid if one is missing."""
    values: list[str] = []
    for position, spec in enumerate(template.parameters or [], start=1):
        source = spec.get("source")
        fmt = spec.get("format")
        raw: Any
        if source == "setting":
            key = spec.get("key")
            if key != "institution_name":
                raise Invalid(
                    f"template parameter {{{{{position}}}}} reads unknown setting {key!r}",
                    code="template_parameter_invalid",
                )
            raw = settings.institution_name
            if not raw.strip():
                raise Invalid(
                    "the institution name is not configured (SPI_INSTITUTION_NAME)",
                    code="template_parameter_missing",
                )
        elif source == "campaign":
            raw = _campaign_value(str(spec.get("key", "")), campaign=campaign, position=position)
        elif source == "fixed":
            raw = spec.get("value")
            if raw is None or not str(raw).strip():
                raise Invalid(
                    f"fixed template parameter {{{{{position}}}}} has no value",
                    code="template_parameter_missing",
                )
        else:
            raise Invalid(
                f"template parameter {{{{{position}}}}} has unknown source {source!r}",
                code="template_parameter_invalid",
            )
        values.append(_format_value(raw, fmt=fmt, position=position))
    return _check_values(template, values)


def sample_campaign(*, year: int | None = None) -> Campaign:
    """A stand-in campaign for previews without one: 1 August – 31 October of this year."""
    year = year or utcnow().year
    return Campaign(
        name=f"SPI {year}",
        spi_year=year,
        first_day=date(year, *SAMPLE_FIRST_DAY),
        last_day=date(year, *SAMPLE_LAST_DAY),
        template_id=0,
        parameter_values={},
    )


def sample_parameters(template: MessageTemplate, *, settings: Settings) -> list[str]:
    """Preview values without a campaign: the sample window (1 August – 31 October of this
    year), the configured institution name, fixed values, and ``[key]`` for any other
    campaign value (a date-formatted one shows the sample closing date)."""
    campaign = sample_campaign()
    campaign.parameter_values = {
        str(spec["key"]): (
            campaign.last_day.isoformat() if spec.get("format") == "date_id" else f"[{spec['key']}]"
        )
        for spec in template.parameters or []
        if spec.get("source") == "campaign" and spec.get("key") not in CAMPAIGN_FIELDS
    }
    return body_parameters(template, campaign=campaign, settings=settings)


def preview(
    session: Session, *, template: MessageTemplate, campaign_id: int | None, settings: Settings
) -> TemplatePreview:
    """The message as an employee would read it, for a campaign or with sample values."""
    if campaign_id is None:
        values = sample_parameters(template, settings=settings)
    else:
        campaign = session.get(Campaign, campaign_id)
        if campaign is None:
            raise NotFound("no such campaign", code="campaign_not_found")
        values = body_parameters(template, campaign=campaign, settings=settings)
    problem = usable_problem(template)
    assert template.id is not None
    return TemplatePreview(
        template_id=template.id,
        campaign_id=campaign_id,
        sample=campaign_id is None,
        parameters=values,
        text=render_body(template.body, values),
        usable=problem is None,
        usable_problem=problem,
    )
