"""Tests of policykit.calendar: boundaries, holidays, anchored windows, working time, DST."""

from __future__ import annotations

import pickle
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError

from policykit.calendar import (
    BOUNDARIES,
    CN_HOLIDAY_YEARS,
    DEFAULT_CALENDAR,
    BusinessCalendar,
    CalendarDuration,
    CalendarError,
    DeadlineStr,
    PeriodUnit,
    parse_calendar_duration,
    parse_duration,
    validate_deadline_spec,
)

SH = ZoneInfo("Asia/Shanghai")
BER = ZoneInfo("Europe/Berlin")
CAL = DEFAULT_CALENDAR
BERLIN = BusinessCalendar(timezone="Europe/Berlin", holiday_source="none")
LAST_US = time(23, 59, 59, 999_999)


def sh(y: int, mo: int, d: int, h: int = 0, mi: int = 0, s: int = 0, us: int = 0) -> datetime:
    return datetime(y, mo, d, h, mi, s, us, tzinfo=SH)


def ber(y: int, mo: int, d: int, h: int = 0, mi: int = 0, s: int = 0, us: int = 0) -> datetime:
    return datetime(y, mo, d, h, mi, s, us, tzinfo=BER)


def days(start: date, end: date) -> list[date]:
    return [start + timedelta(days=i) for i in range((end - start).days + 1)]


# --------------------------------------------------------------------------- boundaries


@pytest.mark.parametrize(
    ("instant", "last_day"),
    [
        (sh(2024, 2, 10, 9), date(2024, 2, 29)),
        (sh(2028, 2, 1, 0), date(2028, 2, 29)),
        (sh(2026, 2, 28, 23, 59), date(2026, 2, 28)),
        (sh(2026, 12, 31, 12), date(2026, 12, 31)),
        (sh(2026, 4, 1), date(2026, 4, 30)),
    ],
)
def test_end_of_month_is_last_instant_of_last_day(instant: datetime, last_day: date) -> None:
    end = CAL.end_of_month(instant)
    assert end == datetime.combine(last_day, LAST_US, tzinfo=SH)
    assert end.tzinfo == SH


def test_end_of_day_is_last_microsecond_and_deadline_is_inclusive() -> None:
    event = sh(2026, 3, 5, 10, 17)
    end = CAL.end_of_day(event)
    assert end == sh(2026, 3, 5, 23, 59, 59, 999_999)
    assert CAL.deadline(event, "end_of_day") == end
    # An event exactly at the deadline is in time; midnight belongs to the next day.
    assert end <= end
    assert sh(2026, 3, 6, 0, 0) > end
    assert CAL.end_of_day(sh(2026, 3, 6)) == sh(2026, 3, 6, 23, 59, 59, 999_999)


def test_utc_instant_late_in_the_day_is_the_next_local_day() -> None:
    instant = datetime(2026, 3, 5, 16, 30, tzinfo=UTC)  # 00:30 on Mar 6 in Shanghai
    assert CAL.local_date(instant) == date(2026, 3, 6)
    assert CAL.local(instant) == sh(2026, 3, 6, 0, 30)
    assert CAL.end_of_day(instant) == sh(2026, 3, 6, 23, 59, 59, 999_999)
    assert CAL.period_key(instant, "day") == "2026-03-06"
    # The last UTC day of a month is already the next month in Shanghai.
    assert CAL.period_key(datetime(2026, 3, 31, 16, 0, tzinfo=UTC), "month") == "2026-04"


@pytest.mark.parametrize(
    ("unit", "first", "last", "key"),
    [
        ("day", date(2026, 5, 20), date(2026, 5, 20), "2026-05-20"),
        ("week", date(2026, 5, 18), date(2026, 5, 24), "2026-W21"),
        ("month", date(2026, 5, 1), date(2026, 5, 31), "2026-05"),
        ("quarter", date(2026, 4, 1), date(2026, 6, 30), "2026-Q2"),
        ("half", date(2026, 1, 1), date(2026, 6, 30), "2026-H1"),
        ("year", date(2026, 1, 1), date(2026, 12, 31), "2026"),
    ],
)
def test_period_and_key(unit: PeriodUnit, first: date, last: date, key: str) -> None:
    instant = sh(2026, 5, 20, 14, 0)
    start, end = CAL.period(instant, unit)
    assert start == datetime.combine(first, time(0), tzinfo=SH)
    assert end == datetime.combine(last, LAST_US, tzinfo=SH)
    assert CAL.period_key(instant, unit) == key
    assert CAL.deadline(instant, f"end_of_{unit}") == end


def test_week_key_uses_iso_week_year() -> None:
    # Jan 1 2027 is a Friday of ISO week 53 of 2026; Dec 29 2025 is in 2026-W01.
    assert CAL.period_key(sh(2027, 1, 1, 12), "week") == "2026-W53"
    assert CAL.period_key(sh(2025, 12, 29, 12), "week") == "2026-W01"
    assert CAL.end_of_week(sh(2027, 1, 1, 12)) == sh(2027, 1, 3, 23, 59, 59, 999_999)


def test_second_half_and_quarter_ends() -> None:
    assert CAL.end_of_half(sh(2026, 7, 1)) == sh(2026, 12, 31, 23, 59, 59, 999_999)
    assert CAL.end_of_quarter(sh(2026, 11, 15)) == sh(2026, 12, 31, 23, 59, 59, 999_999)
    assert CAL.end_of_year(sh(2026, 1, 1)) == sh(2026, 12, 31, 23, 59, 59, 999_999)


def test_end_of_working_day() -> None:
    # Before work_end on a working day: that day's work_end, which is itself in time.
    assert CAL.end_of_working_day(sh(2026, 3, 5, 7, 0)) == sh(2026, 3, 5, 17, 30)
    assert CAL.end_of_working_day(sh(2026, 3, 5, 17, 30)) == sh(2026, 3, 5, 17, 30)
    # After hours: the next working day's, so a deadline never precedes its event.
    assert CAL.end_of_working_day(sh(2026, 3, 5, 17, 30, 1)) == sh(2026, 3, 6, 17, 30)
    # Weekend, and a whole holiday break: the next working day's.
    assert CAL.end_of_working_day(sh(2026, 3, 7, 10)) == sh(2026, 3, 9, 17, 30)
    assert CAL.end_of_working_day(sh(2026, 10, 1, 10)) == sh(2026, 10, 8, 17, 30)
    # A make-up Saturday is a working day.
    assert CAL.end_of_working_day(sh(2026, 2, 14, 10)) == sh(2026, 2, 14, 17, 30)


# --------------------------------------------------------------------------- holidays

SPRING_2026 = days(date(2026, 2, 15), date(2026, 2, 23))
NATIONAL_2026 = days(date(2026, 10, 1), date(2026, 10, 7))
MAKEUP_2026 = [
    date(2026, 1, 4),
    date(2026, 2, 14),
    date(2026, 2, 28),
    date(2026, 5, 9),
    date(2026, 9, 20),
    date(2026, 10, 10),
]
# The State Council's 2026 arrangement (notice of November 2025), day by day.
HOLIDAYS_2026 = [
    *days(date(2026, 1, 1), date(2026, 1, 3)),
    *SPRING_2026,
    *days(date(2026, 4, 4), date(2026, 4, 6)),
    *days(date(2026, 5, 1), date(2026, 5, 5)),
    *days(date(2026, 6, 19), date(2026, 6, 21)),
    *days(date(2026, 9, 25), date(2026, 9, 27)),
    *NATIONAL_2026,
]


def test_2026_arrangement_matches_the_state_council_notice() -> None:
    assert CAL.holidays_in(2026) == HOLIDAYS_2026
    assert CAL.makeup_workdays_in(2026) == MAKEUP_2026


def test_every_day_of_a_break_is_a_holiday_weekends_included() -> None:
    for day in SPRING_2026 + NATIONAL_2026:
        assert CAL.is_holiday(day), day
        assert not CAL.is_working_day(day), day
    assert date(2026, 10, 4).weekday() == 6  # a Sunday inside the National Day week
    assert CAL.holiday_name(date(2026, 10, 4)) == "National Day"
    assert CAL.holiday_name(date(2026, 10, 4), lang="zh") == "国庆节"
    assert CAL.holiday_name(date(2026, 2, 21)) == "Spring Festival"
    assert CAL.holiday_name(date(2026, 3, 4)) is None


def test_makeup_days_are_working_days_not_holidays() -> None:
    for day in MAKEUP_2026:
        assert day.weekday() >= 5, day
        assert CAL.is_working_day(day), day
        assert not CAL.is_holiday(day), day
    assert not CAL.is_working_day(date(2026, 3, 7))  # an ordinary Saturday
    assert CAL.is_working_day(date(2026, 3, 6))  # an ordinary Friday


@pytest.mark.parametrize(
    ("year", "holidays", "makeup"),
    [
        # Notice of October 2023: Spring Festival Feb 10-17, National Day Oct 1-7.
        (
            2024,
            [
                *days(date(2024, 2, 10), date(2024, 2, 17)),
                *days(date(2024, 10, 1), date(2024, 10, 7)),
            ],
            [date(2024, 2, 4), date(2024, 2, 18), date(2024, 9, 29), date(2024, 10, 12)],
        ),
        # Notice of November 2024: Spring Festival Jan 28-Feb 4, National Day Oct 1-8.
        (
            2025,
            [
                *days(date(2025, 1, 28), date(2025, 2, 4)),
                *days(date(2025, 10, 1), date(2025, 10, 8)),
            ],
            [date(2025, 1, 26), date(2025, 2, 8), date(2025, 9, 28), date(2025, 10, 11)],
        ),
    ],
)
def test_earlier_years_spot_checks(year: int, holidays: list[date], makeup: list[date]) -> None:
    assert set(holidays) <= set(CAL.holidays_in(year))
    assert set(makeup) <= set(CAL.makeup_workdays_in(year))
    assert all(CAL.is_working_day(d) for d in makeup)


def test_years_without_official_data_raise_instead_of_guessing() -> None:
    first_missing = CN_HOLIDAY_YEARS.stop
    with pytest.raises(CalendarError, match=rf"no PRC holiday arrangement for {first_missing}"):
        CAL.is_working_day(date(first_missing, 3, 3))
    with pytest.raises(CalendarError, match="chinese-calendar"):
        CAL.holidays_in(first_missing)
    lenient = BusinessCalendar(missing_holiday_data="ignore")
    # 'ignore': only the weekly pattern and the user's lists apply.
    assert lenient.holidays_in(first_missing) == []
    assert lenient.is_working_day(date(first_missing, 1, 1)) == (
        date(first_missing, 1, 1).weekday() < 5
    )


def test_2027_coverage_is_stated() -> None:
    # chinese-calendar 1.11 stops at 2026: the 2027 arrangement is published by the State
    # Council around November 2026. Until a release carries it, 2027 days raise.
    if 2027 in CN_HOLIDAY_YEARS:
        assert CAL.is_holiday(date(2027, 1, 1))  # New Year's Day is fixed by law
        assert CAL.makeup_workdays_in(2027) != []
    else:
        with pytest.raises(CalendarError, match="2027"):
            CAL.is_holiday(date(2027, 1, 1))
    assert {2024, 2025, 2026} <= set(CN_HOLIDAY_YEARS)


def test_extra_holidays_and_workdays_override() -> None:
    cal = BusinessCalendar(
        extra_holidays={date(2026, 3, 6): "Company day"},
        extra_workdays=(date(2026, 3, 7), date(2026, 10, 2)),
    )
    assert cal.is_holiday(date(2026, 3, 6))
    assert not cal.is_working_day(date(2026, 3, 6))
    assert cal.holiday_name(date(2026, 3, 6), lang="zh") == "Company day"
    assert cal.is_working_day(date(2026, 3, 7))
    # Working a statutory holiday does not make it any less a holiday (coverage rules).
    assert cal.is_working_day(date(2026, 10, 2)) and cal.is_holiday(date(2026, 10, 2))
    assert date(2026, 3, 7) in cal.makeup_workdays_in(2026)
    assert cal.working_days(date(2026, 3, 5), date(2026, 3, 9)) == [
        date(2026, 3, 5),
        date(2026, 3, 7),
        date(2026, 3, 9),
    ]


def test_working_day_navigation_around_national_day() -> None:
    assert CAL.next_working_day(date(2026, 9, 30)) == date(2026, 9, 30)
    assert CAL.next_working_day(date(2026, 9, 30), inclusive=False) == date(2026, 10, 8)
    assert CAL.previous_working_day(date(2026, 10, 5)) == date(2026, 9, 30)
    assert CAL.previous_working_day(date(2026, 10, 12), inclusive=False) == date(2026, 10, 10)
    assert CAL.next_working_day(date(2026, 2, 13), inclusive=False) == date(2026, 2, 14)
    assert CAL.working_days(date(2026, 9, 28), date(2026, 10, 11)) == [
        date(2026, 9, 28),
        date(2026, 9, 29),
        date(2026, 9, 30),
        date(2026, 10, 8),
        date(2026, 10, 9),
        date(2026, 10, 10),
    ]
    assert CAL.working_days(date(2026, 3, 9), date(2026, 3, 1)) == []


def test_a_datetime_is_not_a_day() -> None:
    with pytest.raises(CalendarError, match="local_date"):
        CAL.is_working_day(sh(2026, 3, 5, 10))  # a date subclass: only a runtime check helps


# --------------------------------------------------------------------------- anchored windows


def test_add_months_clamps_from_the_anchor() -> None:
    jan31 = sh(2026, 1, 31, 9, 15)
    assert CAL.add_months(jan31, 1) == sh(2026, 2, 28, 9, 15)
    assert CAL.add_months(jan31, 2) == sh(2026, 3, 31, 9, 15)
    assert CAL.add_months(sh(2024, 1, 31, 9, 15), 1) == sh(2024, 2, 29, 9, 15)
    assert CAL.add_months(sh(2028, 2, 29, 8), 12) == sh(2029, 2, 28, 8)
    assert CAL.add_months(sh(2028, 2, 29, 8), 48) == sh(2032, 2, 29, 8)
    assert CAL.add_months(jan31, -2) == sh(2025, 11, 30, 9, 15)
    assert CAL.deadline(jan31, "P1M") == sh(2026, 2, 28, 9, 15)


def test_anchored_windows_are_computed_from_the_anchor_not_stepped() -> None:
    anchor = sh(2026, 1, 31, 0, 0)
    starts = [CAL.anchored_window(anchor, 1, k)[0] for k in range(5)]
    assert [s.date() for s in starts] == [
        date(2026, 1, 31),
        date(2026, 2, 28),
        date(2026, 3, 31),  # stepping from Feb 28 would give Mar 28
        date(2026, 4, 30),
        date(2026, 5, 31),
    ]
    start, end = CAL.anchored_window(anchor, 3, 1)
    assert (start, end) == (sh(2026, 4, 30), sh(2026, 7, 31))
    # Half-open: the end belongs to the next window.
    assert CAL.window_index(anchor, 1, sh(2026, 2, 27, 23, 59, 59, 999_999)) == 0
    assert CAL.window_index(anchor, 1, sh(2026, 2, 28)) == 1
    assert CAL.window_index(anchor, 1, sh(2026, 3, 30, 23)) == 1
    assert CAL.window_index(anchor, 1, sh(2026, 3, 31)) == 2
    assert CAL.window_index(anchor, 3, sh(2026, 1, 30)) == -1


def test_window_months_must_be_positive() -> None:
    with pytest.raises(CalendarError, match="months"):
        CAL.anchored_window(sh(2026, 1, 1), 0, 1)
    with pytest.raises(CalendarError, match="months"):
        CAL.window_index(sh(2026, 1, 1), -1, sh(2026, 5, 1))


# --------------------------------------------------------------------------- working time


def test_add_working_time_across_a_weekend() -> None:
    friday = sh(2026, 3, 6, 16, 30)
    assert CAL.add_working_time(friday, timedelta(hours=2)) == sh(2026, 3, 9, 9, 30)
    assert CAL.deadline(friday, "PT2H", basis="working") == sh(2026, 3, 9, 9, 30)
    assert CAL.working_time_between(friday, sh(2026, 3, 9, 9, 30)) == timedelta(hours=2)


def test_add_working_time_across_a_holiday_break() -> None:
    eve = sh(2026, 9, 30, 17, 0)
    assert CAL.add_working_time(eve, timedelta(hours=1)) == sh(2026, 10, 8, 9, 0)
    # P1D of working time = one working day's hours (9 h).
    # 30 min on Sep 30, then 8.5 h on Oct 8.
    assert CAL.deadline(eve, "P1D", basis="working") == sh(2026, 10, 8, 17, 0)
    assert CAL.working_time_between(sh(2026, 9, 30, 8, 30), sh(2026, 10, 9, 0)) == timedelta(
        hours=18
    )


def test_add_working_time_starting_outside_hours() -> None:
    one_hour = timedelta(hours=1)
    assert CAL.add_working_time(sh(2026, 3, 7, 10), one_hour) == sh(2026, 3, 9, 9, 30)  # Sat
    assert CAL.add_working_time(sh(2026, 3, 5, 7), one_hour) == sh(2026, 3, 5, 9, 30)
    assert CAL.add_working_time(sh(2026, 3, 5, 20), one_hour) == sh(2026, 3, 6, 9, 30)
    # Ending exactly at work_end stays on that day; zero adds nothing.
    assert CAL.add_working_time(sh(2026, 3, 5, 16, 30), one_hour) == sh(2026, 3, 5, 17, 30)
    assert CAL.add_working_time(sh(2026, 3, 7, 10), timedelta(0)) == sh(2026, 3, 7, 10)
    # Make-up Saturday counts.
    assert CAL.add_working_time(sh(2026, 2, 13, 17), one_hour) == sh(2026, 2, 14, 9, 0)
    with pytest.raises(CalendarError, match="duration"):
        CAL.add_working_time(sh(2026, 3, 5, 10), -one_hour)


def test_working_time_between_is_antisymmetric() -> None:
    a, b = sh(2026, 3, 6, 16, 30), sh(2026, 3, 10, 12)
    assert CAL.working_time_between(a, b) == timedelta(hours=1 + 9 + 3.5)
    assert CAL.working_time_between(b, a) == -timedelta(hours=13.5)
    assert CAL.working_time_between(a, a) == timedelta(0)


def test_wall_deadlines() -> None:
    t = sh(2026, 3, 5, 10, 0)
    assert CAL.deadline(t, "PT15M") == sh(2026, 3, 5, 10, 15)
    assert CAL.deadline(t, "P3D") == sh(2026, 3, 8, 10, 0)
    assert CAL.deadline(t, "P1DT2H") == sh(2026, 3, 6, 12, 0)
    assert CAL.deadline(t, "P1W", basis="working") == sh(2026, 3, 12, 10, 0)
    with pytest.raises(CalendarError, match="working"):
        CAL.deadline(t, "P1M", basis="working")
    with pytest.raises(CalendarError, match="basis"):
        CAL.deadline(t, "PT1H", basis="elapsed")  # type: ignore[arg-type]


# --------------------------------------------------------------------------- DST


def test_berlin_hours_across_the_march_change_are_elapsed() -> None:
    start = ber(2026, 3, 29, 1, 30)  # CET, 30 minutes before clocks jump 02:00 -> 03:00
    due = BERLIN.deadline(start, "PT2H")
    assert due == ber(2026, 3, 29, 4, 30)
    assert due.utcoffset() == timedelta(hours=2)
    assert due.astimezone(UTC) - start.astimezone(UTC) == timedelta(hours=2)
    # A calendar day keeps the wall time: 23 elapsed hours that day.
    day_later = BERLIN.deadline(ber(2026, 3, 28, 12), "P1D")
    assert day_later == ber(2026, 3, 29, 12)
    assert day_later.astimezone(UTC) - ber(2026, 3, 28, 12).astimezone(UTC) == timedelta(hours=23)


def test_berlin_at_nonexistent_and_ambiguous_times() -> None:
    gap = BERLIN.at(date(2026, 3, 29), time(2, 30))
    assert (gap.hour, gap.minute, gap.utcoffset()) == (3, 30, timedelta(hours=2))
    first = BERLIN.at(date(2026, 10, 25), time(2, 30))
    second = BERLIN.at(date(2026, 10, 25), time(2, 30, fold=1))
    assert first.utcoffset() == timedelta(hours=2)
    assert second.astimezone(UTC) - first.astimezone(UTC) == timedelta(hours=1)


def test_berlin_day_boundaries_and_working_time_on_dst_days() -> None:
    start, end = BERLIN.period(ber(2026, 3, 29, 12), "day")
    assert end == ber(2026, 3, 29, 23, 59, 59, 999_999)
    assert end.astimezone(UTC) - start.astimezone(UTC) == timedelta(hours=23) - timedelta(
        microseconds=1
    )
    # Friday after hours + 1 working hour lands on Monday, in summer time.
    monday = BERLIN.add_working_time(ber(2026, 3, 27, 18), timedelta(hours=1))
    assert monday == ber(2026, 3, 30, 9, 30)
    assert monday.utcoffset() == timedelta(hours=2)
    # Working hours spanning the jump hold one hour less of working time.
    night = BusinessCalendar(
        timezone="Europe/Berlin",
        holiday_source="none",
        weekend=(),
        work_start=time(1, 0),
        work_end=time(5, 0),
    )
    d = date(2026, 3, 29)
    assert night.working_time_between(night.at(d, time(1)), night.at(d, time(5))) == timedelta(
        hours=3
    )
    assert night.add_working_time(night.at(d, time(1)), timedelta(hours=3)) == ber(2026, 3, 29, 5)


# --------------------------------------------------------------------------- errors


def test_bad_timezone_suggests_the_nearest_name() -> None:
    with pytest.raises(ValidationError, match="did you mean 'Asia/Shanghai'") as info:
        BusinessCalendar(timezone="Asia/Shangai")
    error = info.value.errors()[0]
    assert error["loc"] == ("timezone",)
    assert isinstance(error["ctx"]["error"], CalendarError)
    with pytest.raises(ValidationError, match="did you mean 'Europe/Berlin'"):
        BusinessCalendar(timezone="europe/berlin")
    # An offset is refused without pointing at the sign-inverted Etc/GMT zones.
    with pytest.raises(ValidationError, match="a region, not an offset"):
        BusinessCalendar(timezone="UTC+8")
    with pytest.raises(ValidationError, match="timezone"):
        BusinessCalendar(timezone="localtime")  # the machine's zone: never


def test_bad_deadline_spec_names_the_forms_and_nearest_boundary() -> None:
    with pytest.raises(CalendarError) as info:
        CAL.deadline(sh(2026, 3, 5, 10), "end_of_dya")
    err = info.value
    assert (err.name, err.value, err.suggestion) == ("spec", "end_of_dya", "end_of_day")
    assert "PT15M" in str(err) and "end_of_month" in str(err)
    assert "did you mean 'end_of_day'" in str(err)
    for bad in ("PT15", "P", "PT", "P1DT", "-PT1H", "15 minutes", ""):
        with pytest.raises(CalendarError, match="ISO-8601"):
            CAL.deadline(sh(2026, 3, 5, 10), bad)


def test_other_bad_parameters() -> None:
    with pytest.raises(CalendarError, match="did you mean 'month'"):
        CAL.period(sh(2026, 3, 5), "mnth")  # type: ignore[arg-type]
    with pytest.raises(CalendarError, match="timezone-aware"):
        CAL.local(datetime(2026, 3, 5, 10))
    with pytest.raises(ValidationError, match="weekend"):
        BusinessCalendar(weekend=(0, 1, 2, 3, 4, 5, 6))
    with pytest.raises(ValidationError, match="weekend"):
        BusinessCalendar(weekend=(7,))
    with pytest.raises(ValidationError, match="work_end"):
        BusinessCalendar(work_start=time(18), work_end=time(9))
    with pytest.raises(ValidationError, match="extra_workdays"):
        BusinessCalendar(
            extra_holidays={date(2026, 3, 6): "x"}, extra_workdays=(date(2026, 3, 6),)
        )
    with pytest.raises(ValidationError, match="holiday_sorce"):
        BusinessCalendar.model_validate({"holiday_sorce": "CN"})


def test_calendar_error_pickles() -> None:
    err = CalendarError("spec", "PT1X", "a duration", "PT1H")
    back = pickle.loads(pickle.dumps(err))
    assert (back.name, back.value, back.suggestion, str(back)) == (
        "spec",
        "PT1X",
        "PT1H",
        str(err),
    )


# --------------------------------------------------------------------------- durations


def test_parse_durations() -> None:
    assert parse_duration("PT15M") == timedelta(minutes=15)
    assert parse_duration("PT1.5H") == timedelta(minutes=90)
    assert parse_duration("P1W") == timedelta(days=7)
    assert parse_duration("P1DT0,5S") == timedelta(days=1, milliseconds=500)
    assert parse_calendar_duration("P1Y2M3DT4H") == CalendarDuration(
        months=14, days=3, exact=timedelta(hours=4)
    )
    # Elapsed hours and calendar days stay apart.
    assert parse_calendar_duration("PT36H") == CalendarDuration(exact=timedelta(hours=36))
    assert parse_calendar_duration("P1DT12H") == CalendarDuration(days=1, exact=timedelta(hours=12))
    assert parse_calendar_duration("PT36H").is_exact
    with pytest.raises(CalendarError, match="years or months"):
        parse_duration("P1M")


def test_deadline_spec_validation_in_a_model() -> None:
    class Rule(BaseModel):
        within: DeadlineStr

    assert Rule(within="end_of_month").within == "end_of_month"
    assert Rule(within="P1M").within == "P1M"
    assert validate_deadline_spec("PT2H") == "PT2H"
    with pytest.raises(ValidationError, match="did you mean 'end_of_week'"):
        Rule(within="end_of_wek")
    assert all(validate_deadline_spec(b) == b for b in BOUNDARIES)


# --------------------------------------------------------------------------- the model


def test_calendar_is_a_data_model() -> None:
    cal = BusinessCalendar(
        timezone="Europe/Berlin",
        holiday_source="none",
        extra_holidays={date(2026, 12, 24): "Heiligabend"},
        extra_workdays=(date(2026, 12, 19), date(2026, 12, 19)),
    )
    assert cal.extra_workdays == (date(2026, 12, 19),)
    back = BusinessCalendar.model_validate_json(cal.model_dump_json())
    assert back == cal and hash(back) == hash(cal)
    assert back.is_holiday(date(2026, 12, 24))
    assert len({cal, back, DEFAULT_CALENDAR}) == 2
    assert pickle.loads(pickle.dumps(cal)).holiday_name(date(2026, 12, 24)) == "Heiligabend"
    moved = DEFAULT_CALENDAR.model_copy(update={"timezone": "Europe/Berlin"})
    assert moved.tz() == BER
    assert DEFAULT_CALENDAR.tz() == SH
    with pytest.raises(ValidationError):
        DEFAULT_CALENDAR.timezone = "UTC"  # type: ignore[misc]


# --------------------------------------------------------------------------- properties

ZONES = st.sampled_from([SH, BER])
UNITS: tuple[PeriodUnit, ...] = ("day", "week", "month", "quarter", "half", "year")


def _aware(
    lo: datetime, hi: datetime, zones: st.SearchStrategy[ZoneInfo]
) -> st.SearchStrategy[datetime]:
    return st.datetimes(min_value=lo, max_value=hi, timezones=zones, allow_imaginary=False)


@settings(max_examples=150, deadline=None)
@given(
    anchor=_aware(datetime(2000, 1, 1), datetime(2040, 12, 31), ZONES),
    months=st.integers(1, 24),
    k=st.integers(-40, 40),
)
def test_window_index_inverts_anchored_window(anchor: datetime, months: int, k: int) -> None:
    cal = BERLIN if anchor.tzinfo == BER else CAL
    start, end = cal.anchored_window(anchor, months, k)
    assert start < end
    assert cal.window_index(anchor, months, start) == k
    assert cal.window_index(anchor, months, end - timedelta(microseconds=1)) == k
    # The start's date, derived independently: the anchor's day clamped to the month's end.
    index = anchor.year * 12 + anchor.month - 1 + k * months
    year, month = divmod(index, 12)
    first = date(year, month + 1, 1)
    month_len = (date(year + (month + 1) // 12, (month + 1) % 12 + 1, 1) - first).days
    assert cal.local(start).date() == date(year, month + 1, min(anchor.day, month_len))


IN_DATA = _aware(datetime(2024, 1, 1), datetime(2026, 10, 31), st.just(SH))
WORK = st.timedeltas(min_value=timedelta(0), max_value=timedelta(hours=100))


@settings(max_examples=150, deadline=None)
@given(a=IN_DATA, b=IN_DATA, d1=WORK, d2=WORK)
def test_add_working_time_is_monotone_and_inverted_by_between(
    a: datetime, b: datetime, d1: timedelta, d2: timedelta
) -> None:
    a, b = min(a, b), max(a, b)
    d1, d2 = min(d1, d2), max(d1, d2)
    assert CAL.add_working_time(a, d1) <= CAL.add_working_time(b, d1)
    assert CAL.add_working_time(a, d1) <= CAL.add_working_time(a, d2)
    due = CAL.add_working_time(a, d2)
    assert due >= a
    assert CAL.working_time_between(a, due) == d2


@settings(max_examples=150, deadline=None)
@given(instant=_aware(datetime(2001, 1, 1), datetime(2039, 12, 31), ZONES))
def test_periods_contain_their_instant(instant: datetime) -> None:
    cal = BERLIN if instant.tzinfo == BER else CAL
    for unit in UNITS:
        start, end = cal.period(instant, unit)
        assert start <= instant <= end
        after = (end.astimezone(UTC) + timedelta(microseconds=1)).astimezone(cal.tz())
        assert after.time() == time(0)
        assert cal.period_key(after, unit) != cal.period_key(instant, unit)
        assert cal.period_key(start, unit) == cal.period_key(instant, unit)


@settings(max_examples=100, deadline=None)
@given(day=st.dates(min_value=date(2024, 1, 1), max_value=date(2026, 12, 20)))
def test_working_day_navigation_brackets_the_day(day: date) -> None:
    before = CAL.previous_working_day(day)
    after = CAL.next_working_day(day)
    assert before <= day <= after
    assert CAL.is_working_day(before) and CAL.is_working_day(after)
    assert (before == day) == CAL.is_working_day(day) == (after == day)


def test_every_period_unit_is_spelled_from_the_one_list() -> None:
    """The shapes' period and window units are PeriodUnit's words: the months-only units a
    subset, the recurrence's window units PeriodUnit and ``working_day``."""
    from typing import get_args

    from policykit.calendar import PERIOD_UNITS, MonthsUnit
    from policykit.rules.recurrence import Unit

    assert set(get_args(MonthsUnit)) <= set(PERIOD_UNITS)
    assert set(get_args(Unit)) == {*PERIOD_UNITS, "working_day"}
