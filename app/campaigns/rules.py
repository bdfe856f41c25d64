"""The checks a campaign must pass to be created, changed or activated."""

from collections.abc import Sequence
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlmodel import Session, col, select

from app.campaigns.timing import SendPolicy, validate_cron
from app.errors import Invalid
from app.opds.models import Opd
from app.templates import service as template_service
from app.templates.models import MessageTemplate

# The zone whose day ends last; used when a campaign covers no OPD yet.
LATEST_ZONE = "Asia/Jakarta"


def window_end_in(last_day: date, zones: Sequence[str]) -> datetime:
    """Midnight after last_day in the latest of these zones (Jakarta when there are none)."""
    midnight = time(0)
    day_after = last_day + timedelta(days=1)
    return max(datetime.combine(day_after, midnight, ZoneInfo(z)) for z in zones or [LATEST_ZONE])


def check_not_ended(last_day: date, zones: Sequence[str], now: datetime) -> None:
    """Invalid when the window ending on last_day has already closed."""
    if window_end_in(last_day, zones) <= now:
        raise Invalid(
            f"the campaign window ended on {last_day.isoformat()}; "
            "choose a last_day that is not in the past",
            code="window_ended",
        )


def check_timing(values: dict[str, Any]) -> None:
    """Invalid unless the window, the cron and the send hours make sense together."""
    if values["first_day"] > values["last_day"]:
        raise Invalid("first_day must not be after last_day", code="invalid_window")
    try:
        validate_cron(values["cron"])
    except ValueError as exc:
        raise Invalid(str(exc), code="invalid_cron") from exc
    if values["send_start"] >= values["send_end"]:
        raise Invalid("send window: send_start must be before send_end", code="invalid_send_window")
    try:
        SendPolicy(
            first_day=values["first_day"],
            last_day=values["last_day"],
            cron=values["cron"],
            send_start=values["send_start"],
            send_end=values["send_end"],
        )
    except ValueError as exc:
        raise Invalid(str(exc), code="invalid_timing") from exc


def _template_problem(session: Session, template_id: int) -> str | None:
    template = session.get(MessageTemplate, template_id)
    if template is None:
        return f"template {template_id} does not exist"
    return template_service.usable_problem(template)


def check_template(session: Session, template_id: int) -> None:
    """Invalid unless the template exists and a campaign may use it."""
    problem = _template_problem(session, template_id)
    if problem is not None:
        raise Invalid(f"template not usable: {problem}", code="template_not_usable")


def resolve_opds(session: Session, codes: Sequence[str]) -> list[Opd]:
    """The OPDs with these codes; Invalid naming any code that does not exist."""
    if not codes:
        return []
    found = session.exec(select(Opd).where(col(Opd.code).in_(codes))).all()
    unknown = sorted(set(codes) - {o.code for o in found})
    if unknown:
        raise Invalid(f"unknown OPD code(s): {', '.join(unknown)}", code="unknown_opd")
    return list(found)


def zones_of(session: Session, opds: Sequence[Opd]) -> list[str]:
    """The time zones of these OPDs, or of every OPD when the list is empty (all OPDs)."""
    if opds:
        return sorted({o.timezone for o in opds})
    return sorted(set(session.exec(select(Opd.timezone).distinct()).all()))
