"""Who and when a rule applies to, shared by the gap, precondition and rate shapes:
fixed subjects, populations kept from events (registered households, customer-service
staff) and active periods (holiday days within 08:00-22:00)."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from ..models.decisions import Subject, SubjectKind
from ..models.events import EventBase
from ._base import Condition, _check_field, _check_types, _compile_condition, event_value

if TYPE_CHECKING:
    from ..calendar import BusinessCalendar

__all__ = [
    "Active",
    "FixedSubject",
    "Population",
    "PopulationTracker",
    "after",
]


class FixedSubject(BaseModel):
    """A subject that does not come from an event: ``{kind: department, id: customer_service}``
    (a team's monitoring duty, a company-wide rate)."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    kind: SubjectKind
    """The subject's kind (department, site, ...)."""
    id: str = Field(min_length=1)
    """The subject's id (``customer_service``)."""

    def subject(self) -> Subject:
        return Subject(kind=self.kind, id=self.id)


class Population(BaseModel):
    """A set of members kept from events. An event of ``type`` makes the value of its
    ``member`` field a member when every ``where`` condition holds, and removes it when one
    fails (an employee's profile changing role); an event of a ``leave`` type removes it.

    ``{type: employee.profile, member: employee_id, where: {role: customer_service}}`` is
    "the customer-service staff"; ``{type: household.registered, member: household_id}``
    is "the registered households"."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    type: tuple[str, ...]
    """Event type(s) that admit a member (when every ``where`` condition holds)."""
    member: str
    """The field of those events holding the member's id."""
    where: dict[str, Condition] = Field(default_factory=dict)
    """Conditions the admitting event must meet; an event of ``type`` failing one removes the
    member."""
    leave: tuple[str, ...] = ()
    """Event type(s) that remove the member they name."""

    @field_validator("type", "leave", mode="before")
    @classmethod
    def _one_or_many(cls, v: Any) -> Any:
        return (v,) if isinstance(v, str) else v

    @model_validator(mode="after")
    def _valid(self) -> Population:
        _check_types(self.type)
        _check_types(self.leave)
        _check_field(self.type, self.member, what="population.member")
        if self.leave:
            _check_field(self.leave, self.member, what="population.member")
        for path, cond in self.where.items():
            _check_field(self.type, path, what="population.where")
            _compile_condition(path, cond)
        return self

    def event_types(self) -> frozenset[str]:
        return frozenset((*self.type, *self.leave))


class PopulationTracker:
    """The compiled form of a :class:`Population`. Members live in the caller's plain-data
    state as ``{member: id of the event that admitted it}`` (the evidence of an obligation
    the population creates)."""

    __slots__ = ("_joins", "_leaves", "_member", "_tests")

    def __init__(self, spec: Population) -> None:
        self._joins = frozenset(spec.type)
        self._leaves = frozenset(spec.leave)
        self._member = spec.member
        self._tests: list[Callable[[EventBase], bool]] = [
            _compile_condition(p, c) for p, c in spec.where.items()
        ]

    def handles(self, event: EventBase) -> bool:
        return event.type in self._joins or event.type in self._leaves

    def apply(self, event: EventBase, members: dict[str, str]) -> int:
        """Update ``members``; return +1 if the population just became non-empty, -1 if it
        just became empty, else 0."""
        value = event_value(event, self._member)
        if value is None:
            return 0
        member = str(value)
        before = bool(members)
        if event.type in self._joins and all(t(event) for t in self._tests):
            members.setdefault(member, event.id)
        else:
            members.pop(member, None)
        after = bool(members)
        return 0 if before == after else (1 if after else -1)


_HHMM = re.compile(r"^([01]\d|2[0-4]):([0-5]\d)$")


def _parse_hhmm(text: str) -> tuple[int, int]:
    m = _HHMM.match(text)
    if m is None or (m.group(1) == "24" and m.group(2) != "00"):
        raise ValueError(f"expected a local time 'HH:MM' (00:00 to 24:00), got {text!r}")
    return int(m.group(1)), int(m.group(2))


# A holiday-only window can be months away; a year and a bit covers any real calendar.
_SCAN_DAYS = 400
# Back-to-back days (00:00-24:00) merge into one interval; a month at a time keeps each
# search short, and the interval's end re-arms the rule as if it continued.
_MERGE_DAYS = 31


class Active(BaseModel):
    """When a rule is in force: which days (``all``, ``holidays`` — every day off of a
    statutory break, weekend days inside it included, make-up working days excluded —,
    ``working_days`` or ``non_working_days``, all in the policy's calendar) and which local
    hours of those days (``["08:00", "22:00"]``; an end before the start runs past midnight;
    ``24:00`` is the end of the day). Intervals are half-open: ``[start, end)``."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    days: Literal["all", "holidays", "working_days", "non_working_days"] = "all"
    """Which days of the policy's calendar the rule is in force: all, holidays, working_days or
    non_working_days."""
    hours: tuple[str, str] = ("00:00", "24:00")
    """The local hours of those days, ``[start, end)``; an end before the start runs past
    midnight, ``24:00`` is the end of the day."""

    @field_validator("hours")
    @classmethod
    def _valid_hours(cls, v: tuple[str, str]) -> tuple[str, str]:
        start, end = (_parse_hhmm(x) for x in v)
        if start == (24, 0):
            raise ValueError("hours: the start cannot be 24:00")
        if start == end:
            raise ValueError("hours: start and end are equal (use 00:00-24:00 for all day)")
        return v

    def _day_ok(self, cal: BusinessCalendar, day: date) -> bool:
        if self.days == "all":
            return True
        if self.days == "holidays":
            return cal.is_holiday(day)
        working = cal.is_working_day(day)
        return working if self.days == "working_days" else not working

    def _interval(self, cal: BusinessCalendar, day: date) -> tuple[datetime, datetime]:
        (sh, sm), (eh, em) = (_parse_hhmm(x) for x in self.hours)
        start = cal.at(day, time(sh, sm))
        if (eh, em) == (24, 0):
            end = cal.start_of_day(day + timedelta(days=1))
        elif (eh, em) <= (sh, sm):
            end = cal.at(day + timedelta(days=1), time(eh, em))
        else:
            end = cal.at(day, time(eh, em))
        return start, end

    def next_interval(
        self, cal: BusinessCalendar, instant: datetime
    ) -> tuple[datetime, datetime] | None:
        """The first active interval ``(start, end_exclusive)`` that ends after ``instant``
        (it may contain it), adjacent intervals merged; None if there is none within about
        a year, or the calendar has no data that far (a year without holiday data ends the
        search rather than guessing)."""
        from ..calendar import CalendarError

        day = cal.local_date(instant) - timedelta(days=1)  # an overnight window of yesterday
        run: tuple[datetime, datetime] | None = None   # the current run of merged intervals
        merged = 0
        try:
            for _ in range(_SCAN_DAYS):
                if self._day_ok(cal, day):
                    s, e = self._interval(cal, day)
                    if run is not None and s <= run[1] and merged < _MERGE_DAYS:
                        run, merged = (run[0], max(run[1], e)), merged + 1
                    elif run is not None and run[1] > instant:
                        return run
                    else:
                        run, merged = (s, e), 0
                elif run is not None:
                    if run[1] > instant:
                        return run
                    run = None
                day += timedelta(days=1)
        except CalendarError:
            pass
        return run if run is not None and run[1] > instant else None


def after(instant: datetime, elapsed: timedelta) -> datetime:
    """``instant`` plus elapsed time, computed in UTC so a DST change cannot shift it; the
    result keeps the instant's time zone. Beyond year 9999 (only reachable far past any
    event: durations are at most 100 years) a CalendarError, never a raw OverflowError."""
    try:
        return (instant.astimezone(UTC) + elapsed).astimezone(instant.tzinfo)
    except OverflowError:
        from ..calendar import CalendarError, format_duration

        raise CalendarError("elapsed", format_duration(elapsed),
                            f"a time before year 10000 after {instant.isoformat()}") from None
