"""Tests for the pure campaign time calculus (invariant 9: send window, zones, holidays)."""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from zoneinfo import ZoneInfo

import pytest

from app.campaigns import timing
from app.campaigns.timing import (
    Firing,
    SendPolicy,
    closed_reason,
    holiday_name,
    next_allowed,
    planned_firings,
    tz_for,
    validate_cron,
)
from app.timezones import ALLOWED_TIMEZONES

WIB = ZoneInfo("Asia/Jakarta")
WITA = ZoneInfo("Asia/Makassar")
WIT = ZoneInfo("Asia/Jayapura")
MARCH = SendPolicy(first_day=date(2026, 3, 1), last_day=date(2026, 4, 30))


def local(tz: ZoneInfo, *args: int) -> datetime:
    return datetime(*args, tzinfo=tz)  # type: ignore[arg-type,misc]


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[arg-type,misc]


def code(reason: str | None) -> str | None:
    return None if reason is None else reason.split(":", 1)[0]


# --- zones ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("tz_name", "expected_utc"),
    [
        ("WIB", utc(2026, 3, 2, 2, 0)),
        ("Asia/Pontianak", utc(2026, 3, 2, 2, 0)),
        ("WITA", utc(2026, 3, 2, 1, 0)),
        ("WIT", utc(2026, 3, 2, 0, 0)),
    ],
)
def test_same_monday_0900_local_in_each_zone(tz_name: str, expected_utc: datetime) -> None:
    first = planned_firings(MARCH, tz_name, after=utc(2026, 2, 20), limit=2)[0]
    assert first == Firing(nominal_at=expected_utc, send_at=expected_utc)
    assert first.send_at.tzinfo == UTC
    in_zone = first.send_at.astimezone(tz_for(tz_name))
    assert (in_zone.date(), in_zone.time()) == (date(2026, 3, 2), time(9, 0))


def test_crontab_weekday_1_is_monday_not_apscheduler_tuesday() -> None:
    # APScheduler 3.x from_crontab would read "1" as Tuesday.
    firings = planned_firings(MARCH, "WIB", after=utc(2026, 3, 1), limit=4)
    assert [f.nominal_at.astimezone(WIB).isoweekday() for f in firings[:3]] == [1, 1, 1]
    sunday = SendPolicy(date(2026, 3, 1), date(2026, 3, 31), cron="0 9 * * 0", skip_holidays=False)
    nominal = planned_firings(sunday, "WIB", after=utc(2026, 3, 1), limit=1)[0].nominal_at
    assert nominal.astimezone(WIB).isoweekday() == 7


def test_tz_aliases_and_names_case_insensitive() -> None:
    assert tz_for("wib") == ZoneInfo("Asia/Jakarta")
    assert tz_for("WITA") == ZoneInfo("Asia/Makassar")
    assert tz_for(" Wit ") == ZoneInfo("Asia/Jayapura")
    assert tz_for("asia/pontianak") == ZoneInfo("Asia/Pontianak")
    assert set(ALLOWED_TIMEZONES) == {
        "Asia/Jakarta",
        "Asia/Pontianak",
        "Asia/Makassar",
        "Asia/Jayapura",
    }


@pytest.mark.parametrize("name", ["UTC", "Asia/Singapore", "Europe/Amsterdam", "WIT+1", ""])
def test_unknown_time_zone_rejected(name: str) -> None:
    with pytest.raises(ValueError, match="Unknown time zone"):
        tz_for(name)
    with pytest.raises(ValueError, match="Unknown time zone"):
        next_allowed(MARCH, name, utc(2026, 3, 2, 2))


def test_naive_datetimes_rejected() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        next_allowed(MARCH, "WIB", datetime(2026, 3, 2, 9))
    with pytest.raises(ValueError, match="timezone-aware"):
        closed_reason(MARCH, "WIB", datetime(2026, 3, 2, 9))


# --- holidays ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("monday", "expected_day", "name"),
    [
        # Cuti bersama (government category) on Monday, then Lunar New Year itself on Tuesday.
        (date(2026, 2, 16), date(2026, 2, 18), "Lunar New Year Joint Holiday"),
        # Idul Fitri cuti bersama Monday and Tuesday.
        (date(2026, 3, 23), date(2026, 3, 25), "Eid al-Fitr Joint Holiday"),
        # Public holiday.
        (date(2026, 6, 1), date(2026, 6, 2), "Pancasila Day"),
    ],
)
def test_holiday_monday_moves_to_next_working_day(
    monday: date, expected_day: date, name: str
) -> None:
    assert monday.isoweekday() == 1
    policy = SendPolicy(first_day=date(2026, 1, 1), last_day=date(2026, 12, 31))
    nine = datetime.combine(monday, time(9), WITA)
    assert holiday_name(monday) == name
    reason = closed_reason(policy, "WITA", nine)
    assert code(reason) == "holiday"
    assert name in (reason or "")
    firing = planned_firings(policy, "WITA", after=nine.replace(hour=0), limit=1)[0]
    assert firing.nominal_at == nine.astimezone(UTC)
    assert firing.send_at == datetime.combine(expected_day, time(8), WITA).astimezone(UTC)


def test_holidays_can_be_disabled() -> None:
    policy = SendPolicy(date(2026, 3, 1), date(2026, 3, 31), skip_holidays=False)
    assert closed_reason(policy, "WIB", local(WIB, 2026, 3, 23, 9)) is None


def test_holiday_calendar_is_cached_per_year() -> None:
    assert timing._holidays_for_year(2026) is timing._holidays_for_year(2026)


def test_long_holiday_block_is_jumped_day_by_day(monkeypatch: pytest.MonkeyPatch) -> None:
    lookups: list[date] = []
    real = timing.holiday_name

    def counting(day: date) -> str | None:
        lookups.append(day)
        return real(day)

    monkeypatch.setattr(timing, "holiday_name", counting)
    # Wed 18 Mar 2026 (Nyepi cuti bersama) through Tue 24 Mar (Idul Fitri cuti bersama).
    found = next_allowed(MARCH, "WIB", local(WIB, 2026, 3, 18, 9, 15))
    assert found == local(WIB, 2026, 3, 25, 8, 0)
    assert len(lookups) <= 8


def test_every_minute_cron_over_holiday_block_is_planned_without_scanning(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[datetime] = []
    real = timing.next_allowed

    def counting(policy: SendPolicy, tz_name: str, moment: datetime) -> datetime | None:
        calls.append(moment)
        return real(policy, tz_name, moment)

    monkeypatch.setattr(timing, "next_allowed", counting)
    policy = SendPolicy(date(2026, 3, 1), date(2026, 4, 30), cron="* * * * *")
    firings = planned_firings(policy, "WIB", after=local(WIB, 2026, 3, 18, 0, 0), limit=3)
    assert [f.send_at for f in firings] == [
        local(WIB, 2026, 3, 25, 8, 0),
        local(WIB, 2026, 3, 25, 8, 1),
        local(WIB, 2026, 3, 25, 8, 2),
    ]
    assert firings[0].nominal_at == local(WIB, 2026, 3, 18, 0, 1)
    assert len(calls) == 3


# --- send window, weekends, Friday prayer, closed dates ------------------------------------


def test_cron_before_send_window_defers_to_0800_same_day() -> None:
    policy = SendPolicy(date(2026, 3, 1), date(2026, 3, 31), cron="0 7 * * 1")
    firing = planned_firings(policy, "WIT", after=utc(2026, 3, 1), limit=1)[0]
    assert firing.nominal_at == local(WIT, 2026, 3, 2, 7, 0)
    assert firing.send_at == local(WIT, 2026, 3, 2, 8, 0)


def test_cron_after_send_window_defers_to_next_working_day() -> None:
    policy = SendPolicy(date(2026, 3, 1), date(2026, 3, 31), cron="0 16 * * 1")
    firing = planned_firings(policy, "WIB", after=utc(2026, 3, 1), limit=1)[0]
    assert firing.nominal_at == local(WIB, 2026, 3, 2, 16, 0)
    assert firing.send_at == local(WIB, 2026, 3, 3, 8, 0)


def test_send_window_is_half_open() -> None:
    assert code(closed_reason(MARCH, "WIB", local(WIB, 2026, 3, 2, 7, 59))) == (
        "outside_send_window"
    )
    assert closed_reason(MARCH, "WIB", local(WIB, 2026, 3, 2, 8, 0)) is None
    assert closed_reason(MARCH, "WIB", local(WIB, 2026, 3, 2, 14, 59)) is None
    assert code(closed_reason(MARCH, "WIB", local(WIB, 2026, 3, 2, 15, 0))) == (
        "outside_send_window"
    )
    # 09:00 WIT is 07:00 WIB: the OPD's zone decides, not the moment's tzinfo.
    assert code(closed_reason(MARCH, "WIB", local(WIT, 2026, 3, 2, 9, 0))) == (
        "outside_send_window"
    )
    assert closed_reason(MARCH, "WIT", local(WIT, 2026, 3, 2, 9, 0)) is None


def test_weekends_skipped() -> None:
    saturday = local(WIB, 2026, 3, 7, 10, 0)
    assert code(closed_reason(MARCH, "WIB", saturday)) == "weekend"
    assert code(closed_reason(MARCH, "WIB", local(WIB, 2026, 3, 8, 10, 0))) == "weekend"
    assert next_allowed(MARCH, "WIB", saturday) == local(WIB, 2026, 3, 9, 8, 0)
    policy = SendPolicy(date(2026, 3, 1), date(2026, 3, 31), cron="0 9 * * 6")
    firing = planned_firings(policy, "WIB", after=utc(2026, 3, 1), limit=1)[0]
    assert firing.send_at == local(WIB, 2026, 3, 9, 8, 0)


def test_friday_prayer_pause() -> None:
    paused = SendPolicy(date(2026, 3, 1), date(2026, 3, 31), friday_pause=True)
    friday_1130 = local(WITA, 2026, 3, 6, 11, 30)
    assert code(closed_reason(paused, "WITA", friday_1130)) == "friday_prayer"
    assert next_allowed(paused, "WITA", friday_1130) == local(WITA, 2026, 3, 6, 13, 0)
    assert closed_reason(paused, "WITA", local(WITA, 2026, 3, 6, 10, 59)) is None
    assert closed_reason(paused, "WITA", local(WITA, 2026, 3, 6, 13, 0)) is None
    # Only Fridays pause.
    assert closed_reason(paused, "WITA", local(WITA, 2026, 3, 5, 11, 30)) is None
    # Off by default.
    assert closed_reason(MARCH, "WITA", friday_1130) is None
    assert next_allowed(MARCH, "WITA", friday_1130) == friday_1130


def test_friday_after_hours_goes_to_monday_or_past_a_holiday_monday() -> None:
    assert next_allowed(MARCH, "WIB", local(WIB, 2026, 3, 6, 15, 30)) == local(
        WIB, 2026, 3, 9, 8, 0
    )
    june = SendPolicy(date(2026, 5, 1), date(2026, 6, 30))
    # Monday 1 June 2026 is Pancasila Day.
    assert next_allowed(june, "WIB", local(WIB, 2026, 5, 29, 15, 30)) == local(
        WIB, 2026, 6, 2, 8, 0
    )


def test_extra_closed_dates_honoured() -> None:
    policy = SendPolicy(
        date(2026, 3, 1), date(2026, 3, 31), closed_dates=frozenset({date(2026, 3, 9)})
    )
    assert code(closed_reason(policy, "WIB", local(WIB, 2026, 3, 9, 9))) == "closed_date"
    firings = planned_firings(policy, "WIB", after=utc(2026, 3, 8), limit=1)
    assert firings[0].send_at == local(WIB, 2026, 3, 10, 8, 0)
    assert closed_reason(MARCH, "WIB", local(WIB, 2026, 3, 9, 9)) is None


def test_reasons_checked_in_documented_order() -> None:
    policy = SendPolicy(
        date(2026, 3, 2), date(2026, 3, 27), closed_dates=frozenset({date(2026, 3, 23)})
    )
    assert code(closed_reason(policy, "WIB", local(WIB, 2026, 3, 1, 3))) == "before_window"
    assert code(closed_reason(policy, "WIB", local(WIB, 2026, 3, 28, 3))) == "after_window"
    # Saturday 21 March is also Idul Fitri: weekend is reported first.
    assert code(closed_reason(policy, "WIB", local(WIB, 2026, 3, 21, 3))) == "weekend"
    # Monday 23 March is both cuti bersama and a closed date: holiday is reported first.
    assert code(closed_reason(policy, "WIB", local(WIB, 2026, 3, 23, 3))) == "holiday"
    assert code(closed_reason(policy, "WIB", local(WIB, 2026, 3, 20, 3))) == "holiday"
    assert code(closed_reason(policy, "WIB", local(WIB, 2026, 3, 26, 3))) == ("outside_send_window")
    seen = {code(closed_reason(policy, "WIB", local(WIB, 2026, 3, d, 3))) for d in range(1, 31)}
    assert seen <= {*timing.REASON_CODES, None}


# --- campaign window -----------------------------------------------------------------------


def test_last_day_firing_after_send_end_is_dropped() -> None:
    policy = SendPolicy(date(2026, 3, 2), date(2026, 3, 9), cron="0 16 * * 1")
    firings = planned_firings(policy, "WIB", after=utc(2026, 3, 1), limit=10)
    assert [f.send_at for f in firings] == [local(WIB, 2026, 3, 3, 8, 0)]
    last_evening = local(WIB, 2026, 3, 9, 16, 0)
    assert next_allowed(policy, "WIB", last_evening) is None
    assert code(closed_reason(policy, "WIB", local(WIB, 2026, 3, 10, 9))) == "after_window"


def test_firings_never_extend_past_last_day_local() -> None:
    policy = SendPolicy(date(2026, 3, 2), date(2026, 3, 13), cron="0 */2 * * *")
    for tz_name in ("WIB", "WITA", "WIT"):
        firings = planned_firings(policy, tz_name, after=utc(2026, 1, 1), limit=500)
        zone = tz_for(tz_name)
        assert firings
        assert len({f.send_at for f in firings}) == len(firings)
        for firing in firings:
            send_local = firing.send_at.astimezone(zone)
            assert date(2026, 3, 2) <= send_local.date() <= date(2026, 3, 13)
            assert closed_reason(policy, tz_name, firing.send_at) is None
        assert max(f.nominal_at for f in firings).astimezone(zone).date() <= date(2026, 3, 13)


def test_search_starts_at_window_start_and_after_is_exclusive() -> None:
    policy = SendPolicy(date(2026, 3, 2), date(2026, 3, 31), cron="0 0 * * *")
    firings = planned_firings(policy, "WITA", after=utc(2026, 1, 1), limit=2)
    assert firings[0] == Firing(local(WITA, 2026, 3, 2, 0, 0), local(WITA, 2026, 3, 2, 8, 0))
    again = planned_firings(policy, "WITA", after=firings[0].nominal_at, limit=1)
    assert again[0].nominal_at == local(WITA, 2026, 3, 3, 0, 0)


def test_firings_deferred_to_the_same_moment_are_deduplicated() -> None:
    early = SendPolicy(date(2026, 3, 1), date(2026, 3, 31), cron="30 6,7 * * 1")
    firings = planned_firings(early, "WIB", after=utc(2026, 3, 1), limit=2)
    assert firings[0] == Firing(local(WIB, 2026, 3, 2, 6, 30), local(WIB, 2026, 3, 2, 8, 0))
    assert firings[1].send_at == local(WIB, 2026, 3, 9, 8, 0)
    daily = SendPolicy(date(2026, 3, 1), date(2026, 3, 31), cron="0 9 * * *")
    weekend = planned_firings(daily, "WIB", after=local(WIB, 2026, 3, 6, 10), limit=2)
    # Saturday and Sunday 09:00 both defer to Monday 08:00: only Saturday's is kept.
    assert weekend == [
        Firing(local(WIB, 2026, 3, 7, 9, 0), local(WIB, 2026, 3, 9, 8, 0)),
        Firing(local(WIB, 2026, 3, 9, 9, 0), local(WIB, 2026, 3, 9, 9, 0)),
    ]


# --- validation ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "expr",
    ["", "bad", "0 9 * *", "0 0 9 * * 1", "61 9 * * 1", "0 25 * * 1", "0 9 * * 8", "0 9 30 2 *"],
)
def test_bad_cron_rejected(expr: str) -> None:
    with pytest.raises(ValueError, match="Invalid cron expression"):
        validate_cron(expr)
    with pytest.raises(ValueError, match="Invalid cron expression"):
        SendPolicy(date(2026, 3, 1), date(2026, 3, 31), cron=expr)


@pytest.mark.parametrize("expr", ["0 9 * * 1", "0 9 * * 1-5", "*/15 8-14 * * mon-fri", "0 9 * * 7"])
def test_good_cron_accepted(expr: str) -> None:
    validate_cron(expr)


def test_policy_rejects_inverted_window_and_hours() -> None:
    with pytest.raises(ValueError, match="first_day"):
        SendPolicy(date(2026, 3, 31), date(2026, 3, 1))
    with pytest.raises(ValueError, match="send_start"):
        SendPolicy(date(2026, 3, 1), date(2026, 3, 31), send_start=time(15), send_end=time(8))
