"""Who and when a rule applies to, shared by the gap, precondition and rate shapes:
fixed subjects, populations kept from events (registered households, customer-service
staff) and active periods (holiday days within 08:00-22:00)."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from ..models.decisions import Subject, SubjectKind
from ..models.events import EventBase
from ._base import Match, OneOrMany, _check_field, event_value

if TYPE_CHECKING:
    from ..calendar import BusinessCalendar

__all__ = [
    "Active",
    "FixedSubject",
    "Population",
    "PopulationTracker",
    "after",
    "old_population",
    "respell_population",
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


#: The spelling populations of gap and rate rules had before the one below.
_OLD_KEYS = frozenset({"type", "member", "where", "leave"})
_NEW_KEYS = frozenset({"start", "end", "field", "value"})


def old_population(data: Any) -> bool:
    """True for a population written in the deprecated ``{type, member, where, leave}``
    spelling."""
    return (isinstance(data, dict) and bool(data.keys() & _OLD_KEYS)
            and not data.keys() & _NEW_KEYS)


def _listed(types: Any) -> set[Any]:
    """The type names of a ``type`` value (one name or a list of them)."""
    return {types} if isinstance(types, str) else \
        set(types) if isinstance(types, list | tuple) else set()


def respell_population(data: dict[str, Any]) -> dict[str, Any]:
    """The deprecated ``{type, member, where, leave}`` spelling of a population in the one
    this module reads: ``{start: {type, where}, field: member, end: [{type}, ...]}``.

    A ``leave`` type that is also a ``type`` is left out: such an event already removed
    the member when it failed ``where`` and admitted it otherwise, as it still does."""
    start = {k: data[k] for k in ("type", "where") if k in data}
    new: dict[str, Any] = {"start": start}
    if "member" in data:
        new["field"] = data["member"]
    joins = start.get("type")
    joined = _listed(joins)
    leave = data.get("leave")
    leaves = [leave] if isinstance(leave, str) else list(leave) if isinstance(leave, list | tuple) \
        else [] if leave is None else [leave]
    ends = [{"type": t} for t in leaves if not (isinstance(t, str) and t in joined)]
    if ends:
        # One leave type written alone stays one matcher written alone.
        new["end"] = ends[0] if isinstance(leave, str) else ends
    return new


class Population(BaseModel):
    """A set of members kept from events, one spelling for every shape. An event matching
    ``start`` makes the value of its ``field`` a member; ``start`` events are state, so the
    latest one for an id decides (a profile re-sent with another role, failing ``where``,
    ends the membership); an event matching one of ``end`` ends it.

    ``{start: {type: employee.profile, where: {role: customer_service}}, field: employee_id}``
    is "the customer-service staff"; ``{start: {type: household.registered}, field:
    household_id}`` is "the registered households". The older spelling ``{type, member,
    where, leave}`` is still read, with a DeprecationWarning."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    start: Match
    """Events making an id a member. They are state: the latest of these types for an id
    decides, so one that fails ``where`` (a profile with another role) ends membership."""
    end: OneOrMany[Match] = ()
    """Events ending membership (``customer.deactivated``)."""
    field: str | None = None
    """The id field of the start/end events; default the rule's ``subject.field`` (a
    recurrence); required where the rule has none (gap, rate)."""
    value: str | None = None
    """One fixed subject id for every member (a department, the whole site): it exists while
    any member does, and every occurrence counts for it (a recurrence)."""

    @model_validator(mode="before")
    @classmethod
    def _respell(cls, data: Any) -> Any:
        # The warning naming the file and rule comes from the policy that holds the rule.
        return respell_population(data) if old_population(data) else data

    def matches(self) -> tuple[Match, ...]:
        """``start`` and every ``end``."""
        return (self.start, *self.end)

    def event_types(self) -> frozenset[str]:
        return frozenset(t for m in self.matches() for t in m.type)

    def check_members(self, shape: str) -> None:
        """For a rule with no subject field to default to (a gap, a rate): ``field`` is
        required and ``value`` means nothing."""
        if self.field is None:
            raise ValueError(f"population.field: a {shape} rule needs the field naming the "
                             "member (employee_id)")
        if self.value is not None:
            raise ValueError(f"population.value: a {shape} rule has no per-member subjects "
                             "to replace; leave it out")
        for m in self.matches():
            _check_field(m.type, self.field, what="population.field")


class PopulationTracker:
    """The compiled form of a :class:`Population` whose ``field`` is set. Members live in
    the caller's plain-data state as ``{member: id of the event that admitted it}`` (the
    evidence of an obligation the population creates)."""

    __slots__ = ("_ends", "_member", "_start", "_starts")

    def __init__(self, spec: Population) -> None:
        assert spec.field is not None  # checked by check_members
        self._starts = frozenset(spec.start.type)
        self._start = spec.start.predicate()
        self._ends = [(frozenset(m.type), m.predicate()) for m in spec.end]
        self._member = spec.field

    def handles(self, event: EventBase) -> bool:
        t = event.type
        return t in self._starts or any(t in types for types, _ in self._ends)

    def apply(self, event: EventBase, members: dict[str, str]) -> int:
        """Update ``members``; return +1 if the population just became non-empty, -1 if it
        just became empty, else 0."""
        value = event_value(event, self._member)
        if value is None:
            return 0
        member = str(value)
        before = bool(members)
        t = event.type
        ends = any(t in types and pred(event) for types, pred in self._ends)
        if not ends and t in self._starts and self._start(event):
            members.setdefault(member, event.id)
        elif ends or t in self._starts:
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
