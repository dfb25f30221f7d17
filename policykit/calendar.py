"""Business calendars: time zone, working hours, working days, PRC statutory holidays with
their make-up working days (調休), calendar boundaries and working-time arithmetic.

Nothing here reads the wall clock: every function takes the instant it reasons about.
Instants come in as timezone-aware ``datetime`` objects and go out as aware ``datetime``
objects in the calendar's zone (std ``zoneinfo``). Rules call these functions once or more
per event, so every per-date fact (is it a working day, when does it start and end, when do
working hours start and end) is computed once per calendar and kept.

Conventions (see docs/calendar.md):

- a period's end is its *last instant*: ``23:59:59.999999`` local on its last day, because
  an event exactly at a deadline is in time and ``00:00`` of the next day is late;
- working hours are the closed interval ``[work_start, work_end]`` of a working day;
- anchored windows are half-open ``[start, end)`` and each is computed from the anchor with
  month-end clamping, never by stepping from the previous window;
- ``PT…`` durations are exact elapsed time; ``P…D``/``W``/``M``/``Y`` are calendar units
  that keep the local wall time (DST-correct).
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from decimal import Decimal
from functools import cached_property, lru_cache
from importlib import metadata
from typing import Annotated, Any, Final, Literal, NamedTuple, Self, TypeVar, get_args
from zoneinfo import ZoneInfo, available_timezones

import pendulum
from chinese_calendar import constants as _cn  # type: ignore[import-untyped, unused-ignore]
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator, model_validator

from .errors import CalendarError, PolicyKitError

__all__ = [
    "BOUNDARIES",
    "CN_HOLIDAY_YEARS",
    "DEFAULT_CALENDAR",
    "PERIOD_UNITS",
    "Basis",
    "Boundary",
    "BusinessCalendar",
    "CalendarDuration",
    "CalendarError",
    "DeadlineStr",
    "MonthsUnit",
    "PeriodUnit",
    "format_duration",
    "parse_calendar_duration",
    "parse_duration",
    "validate_deadline_spec",
]

PeriodUnit = Literal["day", "week", "month", "quarter", "half", "year"]
#: The periods of whole months (a cap's, a rate's).
MonthsUnit = Literal["month", "quarter", "half", "year"]
Boundary = Literal[
    "end_of_day",
    "end_of_working_day",
    "end_of_week",
    "end_of_month",
    "end_of_quarter",
    "end_of_half",
    "end_of_year",
]
Basis = Literal["wall", "working"]

PERIOD_UNITS: Final[tuple[str, ...]] = get_args(PeriodUnit)
BOUNDARIES: Final[tuple[str, ...]] = get_args(Boundary)

_ONE_DAY: Final = timedelta(days=1)
_ONE_US: Final = timedelta(microseconds=1)
_ZERO: Final = timedelta(0)
# A calendar with no working day for this long is misconfigured; scanning further would
# only hide that (and never end for a calendar with no working days at all).
_MAX_IDLE_DAYS: Final = 366




def _nearest(value: str, choices: list[str] | tuple[str, ...]) -> str | None:
    found = difflib.get_close_matches(value, choices, n=1, cutoff=0.6)
    return found[0] if found else None


# --------------------------------------------------------------------------- holiday data

# chinese-calendar ships the State Council's yearly notices as data: every day off of each
# break (weekend days inside a break included) and the make-up working days. Copied once
# into plain dicts so lookups never go through the package's per-call year validation.
_CN_HOLIDAYS: Final[dict[date, str]] = dict(_cn.holidays)
_CN_MAKEUP: Final[dict[date, str]] = dict(_cn.workdays)
_CN_ZH: Final[dict[str, str]] = {h.value: h.chinese for h in _cn.Holiday}
CN_HOLIDAY_YEARS: Final[range] = range(
    min(d.year for d in _CN_HOLIDAYS), max(d.year for d in _CN_HOLIDAYS) + 1
)
"""Years for which the installed chinese-calendar has the official PRC arrangement."""


def _missing_year_message(year: int) -> str:
    try:
        version = metadata.version("chinese-calendar")
    except metadata.PackageNotFoundError:  # pragma: no cover - vendored copies
        version = "?"
    return (
        f"a date in {CN_HOLIDAY_YEARS.start}-{CN_HOLIDAY_YEARS.stop - 1}: the installed "
        f"chinese-calendar {version} has no PRC holiday arrangement for {year} (the State "
        f"Council publishes each year's in the preceding November; upgrade chinese-calendar, "
        f"or set missing_holiday_data='ignore', or holiday_source='none' with "
        f"extra_holidays/extra_workdays)"
    )


# --------------------------------------------------------------------------- durations

_DURATION: Final = re.compile(
    r"P(?!$)"
    r"(?:(?P<years>\d+)Y)?(?:(?P<months>\d+)M)?(?:(?P<weeks>\d+)W)?(?:(?P<days>\d+)D)?"
    r"(?:T(?=\d)"
    r"(?:(?P<hours>\d+(?:[.,]\d+)?)H)?"
    r"(?:(?P<minutes>\d+(?:[.,]\d+)?)M)?"
    r"(?:(?P<seconds>\d+(?:[.,]\d+)?)S)?)?",
    re.ASCII,  # \d is [0-9]: "P１D" (fullwidth) or Arabic-Indic digits are not durations
)
_DURATION_FORM: Final = (
    "an ISO-8601 duration PnYnMnWnDTnHnMnS such as 'PT15M', 'PT1H', 'P1D', 'P3D', 'P1M'"
)
#: The longest duration a policy may give (100 years, as P100Y, P36525D or PT876600H):
#: anything longer cannot be meant, and added to an event's time it could leave the range
#: of dates Python can represent.
MAX_DURATION_DAYS: Final = 36_525
_DURATION_BOUND: Final = "a duration of at most 100 years (P100Y, P36525D, PT876600H)"


@dataclass(frozen=True, slots=True)
class CalendarDuration:
    """An ISO-8601 duration split the way a calendar applies it.

    ``months`` (years folded in as 12), ``weeks`` and ``days`` are calendar units: they move
    the local date and keep the wall time. ``exact`` (the ``T`` part) is elapsed time.
    Kept apart because ``P1D`` and ``PT24H`` differ across a DST change and in working time.
    """

    months: int = 0
    weeks: int = 0
    days: int = 0
    exact: timedelta = _ZERO

    @property
    def is_exact(self) -> bool:
        """True when the duration has no calendar part (only hours, minutes, seconds)."""
        return not (self.months or self.weeks or self.days)

    def to_timedelta(self) -> timedelta:
        """The duration as elapsed time, a day taken as 24 hours; months have no fixed
        length, so a duration with months or years raises CalendarError."""
        if self.months:
            raise CalendarError(
                "duration", self, "a duration without years or months (they have no fixed length)"
            )
        return timedelta(days=7 * self.weeks + self.days) + self.exact


@lru_cache(maxsize=1024)
def parse_calendar_duration(spec: str) -> CalendarDuration:
    """Parse an ISO-8601 duration (``PT15M``, ``PT1.5H``, ``P1D``, ``P2W``, ``P1Y2M``) into
    its calendar part and its exact part.

    Hand-parsed rather than with ``pendulum.parse``, which folds ``PT36H`` into
    ``1 day 12 hours`` and so loses the difference between elapsed and calendar days.
    Fractions are allowed on hours, minutes and seconds only; negative durations are not.
    """
    m = _DURATION.fullmatch(spec) if isinstance(spec, str) else None
    if m is None:
        raise CalendarError("spec", spec, _DURATION_FORM)
    g = m.groupdict()
    if any(v is not None and len(v) > 20 for v in g.values()):
        raise CalendarError("spec", spec, _DURATION_BOUND)
    micros = Decimal(0)
    for unit, scale in (("hours", 3_600_000_000), ("minutes", 60_000_000), ("seconds", 1_000_000)):
        if g[unit] is not None:
            micros += Decimal(g[unit].replace(",", ".")) * scale
    months = 12 * int(g["years"] or 0) + int(g["months"] or 0)
    weeks = int(g["weeks"] or 0)
    days = int(g["days"] or 0)
    # A year counted as 365.25 days, a month as a twelfth of it: P100Y is the bound exactly.
    length = (months * Decimal("30.4375") + 7 * weeks + days
              + micros / Decimal(86_400_000_000))
    if length > MAX_DURATION_DAYS:
        raise CalendarError("spec", spec, _DURATION_BOUND)
    return CalendarDuration(
        months=months,
        weeks=weeks,
        days=days,
        exact=timedelta(microseconds=int(micros.to_integral_value())),
    )


@lru_cache(maxsize=1024)
def parse_duration(spec: str) -> timedelta:
    """Parse an ISO-8601 duration into elapsed time (``P1D`` = 24 h, ``P1W`` = 7 x 24 h),
    for gaps, look-back windows and warnings.

    Years and months have no fixed length, so they raise CalendarError: use
    :func:`parse_calendar_duration` with :meth:`BusinessCalendar.add_months` or
    :meth:`BusinessCalendar.deadline` for those."""
    dur = parse_calendar_duration(spec)
    if dur.months:
        raise CalendarError(
            "spec",
            spec,
            "a duration without years or months (they have no fixed length; "
            "use BusinessCalendar.deadline or add_months)",
        )
    return dur.to_timedelta()


def format_duration(td: timedelta) -> str:
    """Elapsed time as an ISO-8601 duration (the inverse of :func:`parse_duration`):
    ``PT1M``, ``PT2H1S``, ``P1DT2H``, ``PT0S``; a negative one with a leading ``-``
    (``-PT0.000001S``)."""
    sign = "-" if td < _ZERO else ""
    td = -td if sign else td
    micros = td.microseconds
    total = td.days * 86400 + td.seconds
    days, rest = divmod(total, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, seconds = divmod(rest, 60)
    out = sign + "P" + (f"{days}D" if days else "")
    clock = (f"{hours}H" if hours else "") + (f"{minutes}M" if minutes else "")
    if seconds or micros:
        clock += f"{seconds}.{micros:06d}".rstrip("0").rstrip(".") + "S"
    if clock:
        out += "T" + clock
    return out if out not in ("P", "-P") else "PT0S"


def _deadline_spec_error(spec: object) -> CalendarError:
    text = spec.strip().lower() if isinstance(spec, str) else ""
    return CalendarError(
        "spec",
        spec,
        f"{_DURATION_FORM}, or a boundary name: {', '.join(BOUNDARIES)}",
        _nearest(text, BOUNDARIES) if text else None,
    )


def validate_deadline_spec(spec: str) -> str:
    """Check a deadline spec (a duration or a boundary name) and return it unchanged.

    Meant for policy models: ``DeadlineStr`` applies it as a pydantic validator so a bad
    spec fails when the policy file loads, not when the first event arrives."""
    if spec in BOUNDARIES:
        return spec
    try:
        parse_calendar_duration(spec)
    except CalendarError:
        if isinstance(spec, str) and _DURATION.fullmatch(spec):
            raise  # a duration, but too long: say so
        raise _deadline_spec_error(spec) from None
    return spec


DeadlineStr = Annotated[str, AfterValidator(validate_deadline_spec)]
"""A ``str`` field type for rule parameters holding a deadline spec."""


# --------------------------------------------------------------------------- helpers

_K = TypeVar("_K")
_V = TypeVar("_V")


class _Memo(dict[_K, _V]):
    """A dict that computes a missing value once: the per-date caches of a calendar.

    Bounded in practice by the number of distinct dates a calendar is asked about."""

    __slots__ = ("_compute",)

    def __init__(self, compute: Callable[[_K], _V]) -> None:
        super().__init__()
        self._compute = compute

    def __missing__(self, key: _K) -> _V:
        value = self._compute(key)
        self[key] = value
        return value


class _Day(NamedTuple):
    working: bool
    holiday: str | None  # the holiday's name when the day is a holiday
    makeup: bool  # a working day only because of a make-up arrangement


def _month_end(year: int, month: int) -> date:
    return date(year + month // 12, month % 12 + 1, 1) - _ONE_DAY


@lru_cache(maxsize=8192)
def _add_months_date(day: date, months: int) -> date:
    # pendulum clamps to the target month's end (Jan 31 + 1 month = Feb 28/29), and each
    # result is computed from the original day, so Jan 31 + 2 months is Mar 31.
    moved = pendulum.Date(day.year, day.month, day.day).add(months=months)
    return date(moved.year, moved.month, moved.day)


def _period_days(day: date, unit: str) -> tuple[date, date]:
    """First and last calendar day of the period of ``unit`` containing ``day``."""
    if unit == "day":
        return day, day
    if unit == "week":  # ISO weeks: Monday to Sunday
        first = day - timedelta(days=day.weekday())
        return first, first + timedelta(days=6)
    if unit == "month":
        return day.replace(day=1), _month_end(day.year, day.month)
    if unit == "quarter":
        m0 = 3 * ((day.month - 1) // 3) + 1
        return date(day.year, m0, 1), _month_end(day.year, m0 + 2)
    if unit == "half":
        m0 = 1 if day.month <= 6 else 7
        return date(day.year, m0, 1), _month_end(day.year, m0 + 5)
    if unit == "year":
        return date(day.year, 1, 1), date(day.year, 12, 31)
    raise CalendarError(
        "unit", unit, "one of " + ", ".join(PERIOD_UNITS), _nearest(str(unit), PERIOD_UNITS)
    )


def _days_of_year(year: int) -> Iterator[date]:
    day = date(year, 1, 1)
    while day.year == year:
        yield day
        day += _ONE_DAY


# 'localtime' is whatever zone the machine is set to, and 'Factory' is a placeholder: a
# policy must mean the same on every machine.
_NOT_ZONES: Final = frozenset({"localtime", "posixrules", "Factory"})


@lru_cache(maxsize=1)
def _zone_names() -> frozenset[str]:
    return frozenset(available_timezones()) - _NOT_ZONES


_OFFSET_LIKE: Final = re.compile(r"^(?:UTC|GMT)?\s*[+-]\d", re.IGNORECASE)


def _check_zone(name: str) -> str:
    names = _zone_names()
    if name in names:
        return name
    expected = "an IANA time zone name such as 'Asia/Shanghai' or 'Europe/Berlin'"
    if _OFFSET_LIKE.match(name):
        # Suggesting 'Etc/GMT+8' here would be wrong: POSIX inverts the sign (it is UTC-8).
        raise CalendarError("timezone", name, expected + " (a region, not an offset)")
    lowered = {n.lower(): n for n in names}
    suggestion = lowered.get(name.lower()) or _nearest(name, sorted(names))
    raise CalendarError("timezone", name, expected, suggestion)


# --------------------------------------------------------------------------- the core

_Key = tuple[
    str, time, time, tuple[int, ...], str, str, tuple[tuple[date, str], ...], tuple[date, ...]
]


class _Core:
    """Derived state and per-date caches of one calendar configuration.

    Interned by configuration (``_core_for``), so equal calendars, e.g. one per loaded policy
    file, share their caches."""

    __slots__ = (
        "days",
        "eod",
        "extra_holidays",
        "extra_workdays",
        "key",
        "missing",
        "periods",
        "sod",
        "source",
        "tz",
        "weekend",
        "work",
        "work_end",
        "work_start",
        "workday_length",
        "workdays_per_week",
    )

    def __init__(self, key: _Key) -> None:
        zone, work_start, work_end, weekend, source, missing, extra_h, extra_w = key
        self.key = key
        self.tz = ZoneInfo(zone)
        self.work_start = work_start
        self.work_end = work_end
        self.weekend = frozenset(weekend)
        self.source = source
        self.missing = missing
        self.extra_holidays = dict(extra_h)
        self.extra_workdays = frozenset(extra_w)
        # Nominal, not per day: "P1D of working time" should not change on a DST day.
        self.workday_length = datetime.combine(date.min, work_end) - datetime.combine(
            date.min, work_start
        )
        self.workdays_per_week = 7 - len(self.weekend)
        self.days: _Memo[date, _Day] = _Memo(self._day)
        self.sod: _Memo[date, datetime] = _Memo(self._start_of_day)
        self.eod: _Memo[date, datetime] = _Memo(self._end_of_day)
        self.work: _Memo[date, tuple[datetime, datetime] | None] = _Memo(self._work)
        self.periods: _Memo[tuple[str, date], tuple[datetime, datetime]] = _Memo(self._period)

    def at(self, day: date, t: time) -> datetime:
        if t.tzinfo is not None:
            raise CalendarError("t", t, "a naive time (wall time in the calendar's zone)")
        naive = datetime.combine(day, t)
        # Round-tripping through UTC normalises: a wall time in a DST gap comes back shifted
        # forward by the gap (fold=0 reads it with the pre-transition offset), and an
        # ambiguous one comes back as the occurrence its fold selects (0 = the first).
        out = naive.replace(tzinfo=self.tz).astimezone(UTC).astimezone(self.tz)
        if naive.fold and out.replace(tzinfo=None) != naive:
            # fold=1 in a gap would shift backward; a gap always shifts forward.
            out = naive.replace(tzinfo=self.tz, fold=0).astimezone(UTC).astimezone(self.tz)
        return out

    def _day(self, day: date) -> _Day:
        if isinstance(day, datetime) or not isinstance(day, date):
            # A datetime is a date subclass but never equal to one: it would silently miss
            # every holiday, so refuse it.
            raise CalendarError(
                "day", day, "a datetime.date (for an instant, use calendar.local_date(instant))"
            )
        name = self.extra_holidays.get(day)
        src_holiday: str | None = None
        src_makeup = False
        if self.source == "CN":
            if day.year in CN_HOLIDAY_YEARS:
                src_holiday = _CN_HOLIDAYS.get(day)
                src_makeup = day in _CN_MAKEUP
            elif self.missing == "error":
                raise CalendarError("day", day, _missing_year_message(day.year))
        off = day.weekday() in self.weekend
        # Most specific wins: the user's lists, then the official make-up days, then the
        # official holidays, then the weekly pattern.
        if day in self.extra_workdays:
            working = True
        elif name is not None:
            working = False
        elif src_makeup:
            working = True
        elif src_holiday is not None:
            working = False
        else:
            working = not off
        holiday = name if name is not None else src_holiday
        return _Day(working, holiday, working and (off or holiday is not None))

    def _start_of_day(self, day: date) -> datetime:
        return self.at(day, time(0))

    def _end_of_day(self, day: date) -> datetime:
        # The instant before the next day starts, so it is right even where a DST change
        # happens at midnight.
        nxt = self.sod[day + _ONE_DAY]
        return (nxt.astimezone(UTC) - _ONE_US).astimezone(self.tz)

    def _period(self, key: tuple[str, date]) -> tuple[datetime, datetime]:
        first, last = _period_days(key[1], key[0])
        return self.sod[first], self.eod[last]

    def _work(self, day: date) -> tuple[datetime, datetime] | None:
        # Kept in UTC: aware datetimes sharing one tzinfo compare and subtract by wall
        # time, which is wrong across a DST change.
        if not self.days[day].working:
            return None
        return (
            self.at(day, self.work_start).astimezone(UTC),
            self.at(day, self.work_end).astimezone(UTC),
        )


@lru_cache(maxsize=256)
def _core_for(key: _Key) -> _Core:
    return _Core(key)


# --------------------------------------------------------------------------- the calendar


class BusinessCalendar(BaseModel):
    """A business calendar: time zone, working hours, working days and holidays.

    A frozen pydantic model so it can live inside policy files. All methods are pure
    functions of their arguments; results are aware datetimes in the calendar's zone.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", use_attribute_docstrings=True)

    timezone: str = "Asia/Shanghai"
    """IANA time zone name of the site, e.g. 'Asia/Shanghai', 'Europe/Berlin'."""
    work_start: time = time(8, 30)
    """Start of working hours, local wall time."""
    work_end: time = time(17, 30)
    """End of working hours, local wall time (after work_start; no overnight shifts)."""
    weekend: tuple[int, ...] = (5, 6)
    """Weekly days off as Python weekdays (Monday = 0 ... Sunday = 6)."""
    holiday_source: Literal["CN", "none"] = "CN"
    """'CN': PRC statutory holidays and their make-up working days (chinese-calendar);
    'none': only extra_holidays and extra_workdays."""
    missing_holiday_data: Literal["error", "ignore"] = "error"
    """For a year the holiday source has no data for: 'error' raises CalendarError;
    'ignore' treats the year as having no statutory holidays or make-up days."""
    extra_holidays: dict[date, str] = Field(default_factory=dict)
    """Company days off, by date, with a name."""
    extra_workdays: tuple[date, ...] = ()
    """Company make-up working days (worked even on a weekend or holiday)."""

    # ----------------------------------------------------------- validation

    @field_validator("timezone")
    @classmethod
    def _valid_timezone(cls, value: str) -> str:
        return _check_zone(value)

    @field_validator("work_start", "work_end")
    @classmethod
    def _naive_time(cls, value: time) -> time:
        if value.tzinfo is not None:
            raise CalendarError("work hours", value, "a naive wall time such as '08:30'")
        return value

    @field_validator("weekend")
    @classmethod
    def _valid_weekend(cls, value: tuple[int, ...]) -> tuple[int, ...]:
        bad = [d for d in value if not 0 <= d <= 6]
        if bad:
            raise CalendarError("weekend", value, "weekdays 0 (Monday) to 6 (Sunday)")
        days = tuple(sorted(set(value)))
        if len(days) == 7:
            raise CalendarError("weekend", value, "at most 6 weekly days off")
        return days

    @field_validator("extra_workdays")
    @classmethod
    def _sorted_workdays(cls, value: tuple[date, ...]) -> tuple[date, ...]:
        return tuple(sorted(set(value)))

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.work_start >= self.work_end:
            raise CalendarError(
                "work_end", self.work_end, f"a time after work_start {self.work_start}"
            )
        both = sorted(set(self.extra_holidays) & set(self.extra_workdays))
        if both:
            raise CalendarError(
                "extra_workdays", both, "dates not also listed in extra_holidays"
            )
        return self

    # ----------------------------------------------------------- identity and caches

    @cached_property
    def _core(self) -> _Core:
        return _core_for(
            (
                self.timezone,
                self.work_start,
                self.work_end,
                self.weekend,
                self.holiday_source,
                self.missing_holiday_data,
                tuple(sorted(self.extra_holidays.items())),
                self.extra_workdays,
            )
        )

    def __hash__(self) -> int:
        # The generated hash would fail on the extra_holidays dict; the normalised key
        # makes calendars usable as cache keys.
        return hash(self._core.key)

    def model_copy(self, *, update: Mapping[str, Any] | None = None, deep: bool = False) -> Self:
        """A copy; with ``update`` the cached derived state is dropped so it is rebuilt."""
        copied = super().model_copy(update=update, deep=deep)
        if update:
            copied.__dict__.pop("_core", None)
        return copied

    def __getstate__(self) -> dict[Any, Any]:
        state = super().__getstate__()
        # Caches are rebuilt on demand; don't ship them in pickles.
        state["__dict__"] = {k: v for k, v in state["__dict__"].items() if k != "_core"}
        return state

    # ----------------------------------------------------------- instants

    def tz(self) -> tzinfo:
        """The calendar's time zone."""
        return self._core.tz

    def local(self, instant: datetime) -> datetime:
        """The instant in the calendar's zone. A naive datetime raises CalendarError:
        guessing its zone would make the same log mean different things on two machines."""
        if instant.tzinfo is None:
            raise CalendarError("instant", instant, "a timezone-aware datetime")
        return instant.astimezone(self._core.tz)

    def local_date(self, instant: datetime) -> date:
        """The calendar date of the instant, in the calendar's zone."""
        if instant.tzinfo is None:
            raise CalendarError("instant", instant, "a timezone-aware datetime")
        return instant.astimezone(self._core.tz).date()

    def at(self, day: date, t: time) -> datetime:
        """The aware instant of wall time ``t`` on ``day``. A time that does not exist (DST
        gap) moves forward by the gap (02:30 -> 03:30); an ambiguous one is its first
        occurrence unless ``t.fold`` is 1."""
        return self._core.at(day, t)

    def start_of_day(self, day: date) -> datetime:
        """The first instant of ``day`` (00:00 local, or later if midnight is in a DST gap)."""
        return self._core.sod[day]

    # ----------------------------------------------------------- days

    def is_holiday(self, day: date) -> bool:
        """True on every day off of a statutory holiday break (weekend days inside the
        break included) and on company extra_holidays. Make-up working days are not."""
        return self._core.days[day].holiday is not None

    def holiday_name(self, day: date, lang: Literal["en", "zh"] = "en") -> str | None:
        """The holiday's name (English, or Chinese with ``lang="zh"``), or None."""
        name = self._core.days[day].holiday
        if name is None or lang == "en" or day in self._core.extra_holidays:
            return name
        return _CN_ZH.get(name, name)

    def is_working_day(self, day: date) -> bool:
        """A weekday that is not a holiday, or a make-up working day (even on a weekend)."""
        return self._core.days[day].working

    def holidays_in(self, year: int) -> list[date]:
        """Every holiday day of ``year``, in order."""
        days = self._core.days
        return [d for d in _days_of_year(year) if days[d].holiday is not None]

    def makeup_workdays_in(self, year: int) -> list[date]:
        """Every make-up working day of ``year`` (working although a weekend or holiday)."""
        days = self._core.days
        return [d for d in _days_of_year(year) if days[d].makeup]

    def working_days(self, start: date, end: date) -> list[date]:
        """The working days from ``start`` to ``end``, both included (empty if end < start)."""
        days = self._core.days
        out: list[date] = []
        day = start
        while day <= end:
            if days[day].working:
                out.append(day)
            day += _ONE_DAY
        return out

    def next_working_day(self, day: date, inclusive: bool = True) -> date:
        """The first working day on or after ``day`` (strictly after if not inclusive)."""
        return self._scan(day if inclusive else day + _ONE_DAY, _ONE_DAY)

    def previous_working_day(self, day: date, inclusive: bool = True) -> date:
        """The last working day on or before ``day`` (strictly before if not inclusive)."""
        return self._scan(day if inclusive else day - _ONE_DAY, -_ONE_DAY)

    def _scan(self, day: date, step: timedelta) -> date:
        days = self._core.days
        for _ in range(_MAX_IDLE_DAYS):
            if days[day].working:
                return day
            day += step
        raise CalendarError("calendar", self, f"a working day within {_MAX_IDLE_DAYS} days")

    # ----------------------------------------------------------- boundaries

    def end_of_day(self, instant: datetime) -> datetime:
        """The last instant (23:59:59.999999 local) of the instant's local day."""
        return self._core.eod[self.local_date(instant)]

    def end_of_working_day(self, instant: datetime) -> datetime:
        """The end of working hours (``work_end``, itself in time) of the working day in
        progress at ``instant``, or of the next working day when none is: on a working day
        before ``work_end`` that day's, after hours or on a day off the next working day's.
        So a deadline set by an event never lies before the event."""
        core = self._core
        day = self.local_date(instant)
        for _ in range(_MAX_IDLE_DAYS):
            hours = core.work[day]
            if hours is not None and hours[1] >= instant:
                return hours[1].astimezone(core.tz)
            day += _ONE_DAY
        raise CalendarError("calendar", self, f"a working day within {_MAX_IDLE_DAYS} days")

    def end_of_week(self, instant: datetime) -> datetime:
        """The last instant of the instant's ISO week (Sunday 23:59:59.999999 local)."""
        return self._core.periods["week", self.local_date(instant)][1]

    def end_of_month(self, instant: datetime) -> datetime:
        """The last instant of the instant's calendar month."""
        return self._core.periods["month", self.local_date(instant)][1]

    def end_of_quarter(self, instant: datetime) -> datetime:
        """The last instant of the instant's calendar quarter."""
        return self._core.periods["quarter", self.local_date(instant)][1]

    def end_of_half(self, instant: datetime) -> datetime:
        """The last instant of the instant's half year (Jun 30 or Dec 31)."""
        return self._core.periods["half", self.local_date(instant)][1]

    def end_of_year(self, instant: datetime) -> datetime:
        """The last instant of the instant's calendar year."""
        return self._core.periods["year", self.local_date(instant)][1]

    def period(self, instant: datetime, unit: PeriodUnit) -> tuple[datetime, datetime]:
        """The calendar-aligned period containing the instant, as ``(first instant, last
        instant)``, both included. Weeks are ISO weeks (Monday to Sunday)."""
        return self._core.periods[unit, self.local_date(instant)]

    def period_key(self, instant: datetime, unit: PeriodUnit) -> str:
        """A stable label of the period containing the instant, for decision ids:
        ``2026-03-05``, ``2026-W09`` (ISO week-year), ``2026-03``, ``2026-Q1``,
        ``2026-H1``, ``2026``."""
        day = self.local_date(instant)
        if unit == "day":
            return day.isoformat()
        if unit == "week":
            iso = day.isocalendar()
            return f"{iso.year}-W{iso.week:02d}"
        if unit == "month":
            return f"{day.year}-{day.month:02d}"
        if unit == "quarter":
            return f"{day.year}-Q{(day.month - 1) // 3 + 1}"
        if unit == "half":
            return f"{day.year}-H{1 if day.month <= 6 else 2}"
        if unit == "year":
            return str(day.year)
        raise CalendarError(
            "unit", unit, "one of " + ", ".join(PERIOD_UNITS), _nearest(str(unit), PERIOD_UNITS)
        )

    # ----------------------------------------------------------- anchored windows

    def add_months(self, anchor: datetime, months: int) -> datetime:
        """``anchor`` moved by whole months, clamped to the month's end and keeping the
        local wall time: Jan 31 + 1 = Feb 28 (29), Jan 31 + 2 = Mar 31."""
        local = self.local(anchor)
        if months == 0:
            return local
        # local.time() keeps the fold, so an anchor in the repeated hour stays in it.
        return self._core.at(_add_months_date(local.date(), months), local.time())

    def anchored_window(
        self, anchor: datetime, months: int, k: int
    ) -> tuple[datetime, datetime]:
        """The ``k``-th window of ``months`` months counted from ``anchor``, as
        ``(start, end_exclusive)`` = ``[anchor + k*months, anchor + (k+1)*months)``.

        Both ends are computed from the anchor (never by stepping), so a Jan 31 anchor
        gives Feb 28, Mar 31, Apr 30, ... Windows before the anchor have negative ``k``."""
        _check_months(months)
        return self.add_months(anchor, k * months), self.add_months(anchor, (k + 1) * months)

    def window_index(self, anchor: datetime, months: int, instant: datetime) -> int:
        """The ``k`` of the anchored window containing ``instant`` (negative before the
        anchor)."""
        _check_months(months)
        a = self.local(anchor)
        i = self.local(instant)
        k = ((i.year - a.year) * 12 + (i.month - a.month)) // months
        # Compared in UTC: same-tzinfo comparisons ignore fold, wrong in a repeated hour.
        target = i.astimezone(UTC)
        # The month difference is within one window of the answer; settle it exactly.
        while self.add_months(a, k * months).astimezone(UTC) > target:
            k -= 1
        while self.add_months(a, (k + 1) * months).astimezone(UTC) <= target:
            k += 1
        return k

    # ----------------------------------------------------------- working time

    def add_working_time(self, instant: datetime, duration: timedelta) -> datetime:
        """The earliest instant by which ``duration`` of working time has passed since
        ``instant``: only working hours of working days count, and an instant outside
        them starts counting at the next ``work_start``. A zero duration returns the instant
        itself; a duration that ends exactly at ``work_end`` returns ``work_end``."""
        if duration < _ZERO:
            raise CalendarError("duration", duration, "a non-negative timedelta")
        start = self.local(instant).astimezone(UTC)
        core = self._core
        if not duration:
            return start.astimezone(core.tz)
        remaining = duration
        day = start.astimezone(core.tz).date()
        idle = 0
        while idle < _MAX_IDLE_DAYS:
            hours = core.work[day]
            day += _ONE_DAY
            if hours is None:
                idle += 1
                continue
            idle = 0
            begin = hours[0] if hours[0] > start else start
            if begin >= hours[1]:
                continue
            available = hours[1] - begin
            if remaining <= available:
                return (begin + remaining).astimezone(core.tz)
            remaining -= available
        raise CalendarError("calendar", self, f"a working day within {_MAX_IDLE_DAYS} days")

    def working_time_between(self, start: datetime, end: datetime) -> timedelta:
        """Working time from ``start`` to ``end`` (negative if ``end`` is earlier)."""
        s = self.local(start).astimezone(UTC)
        e = self.local(end).astimezone(UTC)
        if e < s:
            return -self.working_time_between(end, start)
        core = self._core
        day = s.astimezone(core.tz).date()
        last = e.astimezone(core.tz).date()
        total = _ZERO
        while day <= last:
            hours = core.work[day]
            if hours is not None:
                lo = hours[0] if hours[0] > s else s
                hi = hours[1] if hours[1] < e else e
                if hi > lo:
                    total += hi - lo
            day += _ONE_DAY
        return total

    def deadline(self, instant: datetime, spec: str, basis: Basis = "wall") -> datetime:
        """The deadline ``spec`` sets for an event at ``instant``.

        ``spec`` is a boundary name (``end_of_day``, ``end_of_working_day``, ``end_of_week``,
        ``end_of_month``, ``end_of_quarter``, ``end_of_half``, ``end_of_year``; ``basis`` does
        not apply) or an ISO-8601 duration. With ``basis="wall"`` calendar units keep the
        local wall time and ``T`` units are elapsed time. With ``basis="working"`` the
        duration is working time: a day is ``work_end - work_start``, a week that many
        working days per week; months and years raise CalendarError.
        """
        boundary = _BOUNDARY_METHODS.get(spec)
        if boundary is not None:
            return boundary(self, instant)
        try:
            dur = parse_calendar_duration(spec)
        except CalendarError:
            if isinstance(spec, str) and _DURATION.fullmatch(spec):
                raise
            raise _deadline_spec_error(spec) from None
        try:
            return self._deadline(instant, spec, dur, basis)
        except (OverflowError, ValueError) as exc:
            if isinstance(exc, PolicyKitError):
                raise
            # Only reachable far beyond any event (durations are at most 100 years):
            # a documented error, never a raw one.
            raise CalendarError(
                "spec", spec, f"a deadline before year 10000 (from {instant.isoformat()})"
            ) from None

    def _deadline(self, instant: datetime, spec: str, dur: CalendarDuration,
                  basis: Basis) -> datetime:
        core = self._core
        if basis == "wall":
            local = self.local(instant)
            if not dur.is_exact:
                day = local.date()
                if dur.months:
                    day = _add_months_date(day, dur.months)
                local = core.at(day + timedelta(days=7 * dur.weeks + dur.days), local.time())
            if not dur.exact:
                return local
            return (local.astimezone(UTC) + dur.exact).astimezone(core.tz)
        if basis == "working":
            if dur.months:
                raise CalendarError(
                    "spec",
                    spec,
                    "a duration without years or months with basis='working' (a month has "
                    "no fixed amount of working time); use basis='wall'",
                )
            amount = dur.exact + (dur.weeks * core.workdays_per_week + dur.days) * (
                core.workday_length
            )
            return self.add_working_time(instant, amount)
        raise CalendarError(
            "basis", basis, "'wall' or 'working'", _nearest(str(basis), get_args(Basis))
        )


def _check_months(months: int) -> None:
    if months < 1:
        raise CalendarError("months", months, "a whole number of months, at least 1")


_BOUNDARY_METHODS: Final[dict[str, Callable[[BusinessCalendar, datetime], datetime]]] = {
    name: getattr(BusinessCalendar, name) for name in BOUNDARIES
}

DEFAULT_CALENDAR: Final = BusinessCalendar()
"""Asia/Shanghai, 08:30-17:30, Monday to Friday, PRC statutory holidays."""
