"""Pure time calculus for reminder campaigns: windows, send hours, holidays, cron plans."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import holidays
from apscheduler.triggers.cron import CronTrigger

from app.timezones import zone

# Machine codes returned (before ": ") by closed_reason, in the order they are checked.
REASON_CODES: tuple[str, ...] = (
    "before_window",
    "after_window",
    "weekend",
    "holiday",
    "closed_date",
    "outside_send_window",
    "friday_prayer",
)
FRIDAY_PAUSE: tuple[time, time] = (time(11, 0), time(13, 0))
FRIDAY = 4
_CRONTAB_DAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
_CRON_FIELDS = "minute hour day-of-month month day-of-week"


@dataclass(frozen=True)
class SendPolicy:
    """When a campaign may send, read in each OPD's local time zone."""

    first_day: date
    last_day: date
    cron: str = "0 9 * * 1"
    send_start: time = time(8, 0)
    send_end: time = time(15, 0)
    skip_holidays: bool = True
    closed_dates: frozenset[date] = frozenset()
    friday_pause: bool = False
    # Nothing starts sending this close to send_end: a reminder needs time to reach the phone
    # inside the window, and one still undelivered when the window ends has expired.
    closing_margin: timedelta = timedelta(0)

    def __post_init__(self) -> None:
        if self.first_day > self.last_day:
            raise ValueError("Campaign window: first_day must not be after last_day")
        if self.send_start.tzinfo is not None or self.send_end.tzinfo is not None:
            raise ValueError("Send window times must be naive local times")
        if self.send_start >= self.send_end:
            raise ValueError("Send window: send_start must be before send_end")
        if self.closing_margin < timedelta(0) or self.last_start <= self.send_start:
            raise ValueError("Send window: the closing margin must leave time to send")
        # Callers often pass a set or list; freeze it so the policy stays hashable.
        object.__setattr__(self, "closed_dates", frozenset(self.closed_dates))
        validate_cron(self.cron)

    @property
    def last_start(self) -> time:
        """The end of the window for starting a send: send_end less the closing margin."""
        day = date(2000, 1, 2)
        end = datetime.combine(day, self.send_end) - self.closing_margin
        return end.time() if end.date() == day else time(0)


@dataclass(frozen=True)
class Firing:
    """One planned round: the cron time and the moment it may actually be sent (both UTC)."""

    nominal_at: datetime
    send_at: datetime


def tz_for(name: str) -> ZoneInfo:
    """Return the ZoneInfo for an allowed IANA name or a WIB/WITA/WIT alias."""
    return zone(name)


def _crontab_weekday_number(token: str, expr: str) -> int:
    if token.isdigit() and 0 <= int(token) <= 7:
        return int(token)
    if token in _CRONTAB_DAYS:
        return _CRONTAB_DAYS.index(token)
    raise ValueError(f"Invalid cron expression {expr!r}: bad day-of-week value {token!r}")


def _crontab_weekdays(field: str, expr: str) -> str:
    """Translate a crontab day-of-week field (0/7 = Sunday) into APScheduler weekday names."""
    # APScheduler 3.x reads weekday numbers with 0 = Monday, so "1" would mean Tuesday.
    if field == "*":
        return "*"
    days: set[int] = set()
    for part in field.lower().split(","):
        base, slash, step_text = part.partition("/")
        if slash and (not step_text.isdigit() or int(step_text) == 0):
            raise ValueError(f"Invalid cron expression {expr!r}: bad day-of-week step {part!r}")
        step = int(step_text) if slash else 1
        if base == "*":
            low, high = 0, 6
        elif "-" in base:
            low_text, _, high_text = base.partition("-")
            low = _crontab_weekday_number(low_text, expr)
            high = 7 if high_text == "sun" else _crontab_weekday_number(high_text, expr)
        else:
            low = _crontab_weekday_number(base, expr)
            high = 7 if slash else low
        if low > high:
            raise ValueError(f"Invalid cron expression {expr!r}: day-of-week range {part!r}")
        days.update(day % 7 for day in range(low, high + 1, step))
    return ",".join(_CRONTAB_DAYS[day] for day in sorted(days))


def cron_trigger(expr: str, tz_name: str, end_date: datetime | None = None) -> CronTrigger:
    """Build an APScheduler trigger for a 5-field crontab read in the given local zone."""
    fields = expr.split() if isinstance(expr, str) else []
    if len(fields) != 5:
        raise ValueError(
            f"Invalid cron expression {expr!r}: expected 5 fields ({_CRON_FIELDS}), "
            f"got {len(fields)}"
        )
    minute, hour, day, month, weekday = fields
    try:
        return CronTrigger(
            minute=minute,
            hour=hour,
            day=day,
            month=month,
            day_of_week=_crontab_weekdays(weekday, expr),
            timezone=tz_for(tz_name),
            end_date=end_date,
        )
    except ValueError as exc:
        if str(exc).startswith("Invalid cron expression"):
            raise
        raise ValueError(f"Invalid cron expression {expr!r}: {exc}") from exc


def validate_cron(expr: str) -> None:
    """Raise ValueError with a readable message unless expr is a usable 5-field crontab."""
    reference = datetime(2026, 1, 1, tzinfo=UTC)
    # 28 years covers every weekday/leap-day combination, so "never" really means never.
    trigger = cron_trigger(expr, "Asia/Jakarta", end_date=reference.replace(year=2054))
    if trigger.get_next_fire_time(None, reference) is None:
        raise ValueError(f"Invalid cron expression {expr!r}: it never fires")


@functools.cache
def _holidays_for_year(year: int) -> holidays.HolidayBase:
    # Without categories only "public" is loaded and cuti bersama would be missed.
    return holidays.country_holidays("ID", years=year, categories=("public", "government"))


def holiday_name(day: date) -> str | None:
    """Return the national holiday / cuti bersama name for a date, or None."""
    name = _holidays_for_year(day.year).get(day)
    return str(name) if name is not None else None


def _window_bounds(policy: SendPolicy, tz: ZoneInfo) -> tuple[datetime, datetime]:
    start = datetime.combine(policy.first_day, time(0), tz)
    end = datetime.combine(policy.last_day + timedelta(days=1), time(0), tz)
    return start, end


def _require_aware(moment: datetime) -> None:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError("Datetimes must be timezone-aware")


def _day_closed_reason(policy: SendPolicy, day: date) -> str | None:
    if day.weekday() >= 5:
        return f"weekend: {day:%A} is not a working day"
    if policy.skip_holidays:
        name = holiday_name(day)
        if name is not None:
            return f"holiday: national holiday or cuti bersama ({name})"
    if day in policy.closed_dates:
        return "closed_date: date closed for this campaign"
    return None


def _day_slots(policy: SendPolicy, day: date) -> list[tuple[time, time]]:
    """Return the allowed [start, end) local time intervals of an open day."""
    if not (policy.friday_pause and day.weekday() == FRIDAY):
        return [(policy.send_start, policy.last_start)]
    pause_start, pause_end = FRIDAY_PAUSE
    slots = [
        (policy.send_start, min(policy.last_start, pause_start)),
        (max(policy.send_start, pause_end), policy.last_start),
    ]
    return [(start, end) for start, end in slots if start < end]


def closed_reason(policy: SendPolicy, tz_name: str, moment: datetime) -> str | None:
    """Return "code: explanation" for why moment may not send, or None when it may."""
    _require_aware(moment)
    tz = tz_for(tz_name)
    local = moment.astimezone(tz)
    start, end = _window_bounds(policy, tz)
    if local < start:
        return f"before_window: campaign starts {policy.first_day.isoformat()}"
    if local >= end:
        return f"after_window: campaign ended {policy.last_day.isoformat()}"
    day_reason = _day_closed_reason(policy, local.date())
    if day_reason is not None:
        return day_reason
    clock = local.time().replace(tzinfo=None)
    if not policy.send_start <= clock < policy.last_start:
        return (
            f"outside_send_window: sends only {policy.send_start:%H:%M}-"
            f"{policy.last_start:%H:%M} local"
        )
    if policy.friday_pause and local.weekday() == FRIDAY:
        pause_start, pause_end = FRIDAY_PAUSE
        if pause_start <= clock < pause_end:
            return f"friday_prayer: paused {pause_start:%H:%M}-{pause_end:%H:%M} local"
    return None


def next_allowed(policy: SendPolicy, tz_name: str, moment: datetime) -> datetime | None:
    """Return the earliest allowed moment >= moment (UTC), or None if the window has none left."""
    _require_aware(moment)
    tz = tz_for(tz_name)
    start, _ = _window_bounds(policy, tz)
    local = max(moment.astimezone(tz), start)
    day = local.date()
    while day <= policy.last_day:
        if _day_closed_reason(policy, day) is None:
            for slot_start, slot_end in _day_slots(policy, day):
                candidate = max(local, datetime.combine(day, slot_start, tz))
                if candidate < datetime.combine(day, slot_end, tz):
                    return candidate.astimezone(UTC)
        day += timedelta(days=1)
        local = datetime.combine(day, time(0), tz)
    return None


def window_end(policy: SendPolicy, tz_name: str, sent_at: datetime) -> datetime:
    """When the send window of the local day of `sent_at` closes (UTC): a reminder's deadline."""
    _require_aware(sent_at)
    tz = tz_for(tz_name)
    local = sent_at.astimezone(tz)
    end = datetime.combine(local.date(), policy.send_end, tz)
    return max(end, local).astimezone(UTC)


def planned_firings(
    policy: SendPolicy, tz_name: str, after: datetime, limit: int = 10
) -> list[Firing]:
    """Plan up to `limit` deferred, de-duplicated rounds with nominal time after `after`."""
    _require_aware(after)
    if limit <= 0:
        return []
    tz = tz_for(tz_name)
    start, end = _window_bounds(policy, tz)
    # end_date bounds APScheduler's search; without it an impossible match scans to year 9999.
    trigger = cron_trigger(policy.cron, tz_name, end_date=end - timedelta(microseconds=1))
    search_from = max(after.astimezone(UTC), start.astimezone(UTC) - timedelta(microseconds=1))
    firings: list[Firing] = []
    cursor = search_from
    while len(firings) < limit:
        fire = trigger.get_next_fire_time(None, cursor + timedelta(microseconds=1))
        if fire is None:
            break
        send_at = next_allowed(policy, tz_name, fire)
        if send_at is None:
            break  # no allowed moment remains, so later nominals cannot have one either
        firings.append(Firing(nominal_at=fire.astimezone(UTC), send_at=send_at))
        # Every nominal time in [fire, send_at] defers to this same send_at: skip past it.
        cursor = max(fire, send_at)
    return firings
