"""Durations in policy files are at most 100 years and checked at load; deadlines that
would leave Python's date range are documented errors, never raw ones; negative elapsed
time is written with a leading ``-``."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from _policies import check, load, policy
from helpers import ev, t
from hypothesis import given, settings
from hypothesis import strategies as st

from policykit import PolicyFileError
from policykit.audit import audit
from policykit.calendar import (
    DEFAULT_CALENDAR,
    CalendarError,
    format_duration,
    parse_calendar_duration,
    parse_duration,
)
from policykit.rules._scope import after


def deadline(within: str, **kw: Any) -> dict[str, Any]:
    return {"shape": "deadline", "id": "D1", "trigger": {"type": "incident.detected"},
            "key": "incident_id", "within": within, "fulfil": [{"type": "incident.resolved"}],
            "subject": {"kind": "employee", "field": "employee_id"}, **kw}


def detected(at: str = "2026-03-02 10:00") -> dict[str, Any]:
    return ev("incident.detected", at, incident_id="I1", severity="major", employee_id="E1")


@pytest.mark.parametrize("within", ["P999999999D", "P101Y", "P1201M", "P36526D",
                                    "PT876601H", "P5218W", "P" + "9" * 30 + "D",
                                    "PT" + "9" * 5000 + "S", "P9999Y"])
def test_durations_beyond_100_years_are_refused_at_load(tmp_path: Path, within: str) -> None:
    with pytest.raises(PolicyFileError, match="at most 100 years"):
        load(deadline(within))
    code, out = check(tmp_path, policy(deadline(within)))
    assert code == 2 and "at most 100 years" in out


@pytest.mark.parametrize("field", [{"warn_before": "P36526D"}, {"forget_after": "P36526D"}])
def test_every_duration_field_is_bounded(field: dict[str, str]) -> None:
    with pytest.raises(PolicyFileError, match="at most 100 years"):
        load(deadline("PT1H", **field))


def test_gap_and_precondition_durations_are_bounded() -> None:
    gap = {"shape": "gap", "id": "G1", "event": {"type": "patrol.round"}, "key": "route_id",
           "max_gap": "P999999999D", "subject": {"kind": "route", "field": "route_id"}}
    with pytest.raises(PolicyFileError, match="at most 100 years"):
        load(gap)


@pytest.mark.parametrize("within", ["P100Y", "P36525D", "PT876600H", "P1200M"])
def test_100_years_exactly_loads_and_runs(within: str) -> None:
    pol = load(deadline(within))
    report = audit([detected()], pol, until=t("2026-12-31 00:00"))
    assert report.decisions == [] and report.quarantine == []
    due = DEFAULT_CALENDAR.deadline(datetime(2199, 12, 31, tzinfo=UTC), within)
    assert due.year == 2299 or due.year == 2300


def test_a_deadline_past_year_9999_is_a_calendar_error() -> None:
    late = datetime(9950, 1, 1, tzinfo=UTC)
    for spec in ("P100Y", "P36525D", "PT876600H"):
        with pytest.raises(CalendarError, match="before year 10000"):
            DEFAULT_CALENDAR.deadline(late, spec)
    with pytest.raises(CalendarError):  # working time: no holiday data that far, first
        DEFAULT_CALENDAR.deadline(late, "P36525D", "working")
    with pytest.raises(CalendarError, match="before year 10000"):
        after(datetime(9999, 12, 31, tzinfo=UTC), timedelta(days=2))


@pytest.mark.parametrize(("td", "text"), [
    (timedelta(microseconds=-1), "-PT0.000001S"),
    (timedelta(seconds=-61), "-PT1M1S"),
    (timedelta(days=-3), "-P3D"),
    (timedelta(days=-1, seconds=5), "-PT23H59M55S"),
    (timedelta(0), "PT0S"),
    (timedelta(days=1, hours=2, microseconds=500), "P1DT2H0.0005S"),
])
def test_format_duration_writes_the_sign(td: timedelta, text: str) -> None:
    assert format_duration(td) == text


@given(st.timedeltas(min_value=timedelta(days=-36525), max_value=timedelta(days=36525)))
def test_format_duration_round_trips(td: timedelta) -> None:
    text = format_duration(td)
    if td < timedelta(0):
        assert text.startswith("-") and parse_duration(text[1:]) == -td
    else:
        assert parse_duration(text) == td


_numbers = st.integers(min_value=0, max_value=10**40).map(str)


@settings(max_examples=300, deadline=None, database=None)
@given(st.tuples(*[st.none() | _numbers for _ in range(7)]))
def test_any_duration_parses_within_bounds_or_is_a_calendar_error(
        parts: tuple[str | None, ...]) -> None:
    y, mo, w, d, h, mi, s = parts
    date = "".join(f"{v}{u}" for v, u in ((y, "Y"), (mo, "M"), (w, "W"), (d, "D")) if v)
    clock = "".join(f"{v}{u}" for v, u in ((h, "H"), (mi, "M"), (s, "S")) if v)
    text = "P" + date + ("T" + clock if clock else "")
    try:
        dur = parse_calendar_duration(text)
    except CalendarError:
        return
    days = dur.months * 30.4375 + dur.weeks * 7 + dur.days + dur.exact / timedelta(days=1)
    assert days <= 36525
    DEFAULT_CALENDAR.deadline(datetime(2199, 12, 31, tzinfo=UTC), text)


@pytest.mark.parametrize("within", ["P1Y", "P100Y", "P1M"])
def test_years_and_months_of_working_time_are_refused_at_load(within: str) -> None:
    # Found by the mutation fuzz: check accepted them, then the first trigger raised.
    with pytest.raises(PolicyFileError, match="basis: working"):
        load(deadline(within, basis="working"))
    load(deadline(within))  # wall time: fine
    load(deadline("end_of_month", basis="working"))
